"""Bad input on every endpoint: 4xx with {"error": "..."}, never a 5xx or a hang, nothing written."""

import socket

import pytest

from helpers import assert_error, ok_json

# FIELD stands for a string field the endpoint really reads, so a body is refused for being
# malformed, not merely for missing that field.
BAD_BODIES = [
    pytest.param(b"", id="empty"),
    pytest.param(b"{", id="truncated"),
    pytest.param(b'{"FIELD": "abc"', id="truncated-object"),
    pytest.param(b'{"FIELD": "ab', id="truncated-string"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'"string"', id="string"),
    pytest.param(b"null", id="null"),
    pytest.param(b"123", id="number"),
    pytest.param(b"true", id="bool"),
    pytest.param(b"\xff\xfe\x00{", id="binary"),
    pytest.param(b'{"FIELD": "\xc3\x28"}', id="invalid-utf8"),
    pytest.param(b'{"FIELD": "a\x00b"}', id="raw-nul"),
    pytest.param(b'{"FIELD": "a\\u0000b"}', id="escaped-nul"),
    pytest.param(b'{"FIELD": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b'{"FIELD": "x"} trailing', id="trailing-garbage"),
    pytest.param(b"{'FIELD': 'x'}", id="single-quotes"),
    pytest.param(b'{"FIELD": 1e999999}', id="huge-number"),
    pytest.param(b"[" * 100000 + b"]" * 100000, id="deep-nesting"),
    pytest.param(b'{"a":' * 5000 + b"1" + b"}" * 5000, id="deep-objects"),
]

# method, path, protected, FIELD
JSON_ENDPOINTS = [
    ("POST", "/login", False, "username"),
    ("POST", "/chats/initiate", True, "target_username"),
    ("POST", "/chats", True, "name"),
    ("POST", "/chats/{chat_id}/messages", True, "content"),
    ("POST", "/send", True, "content"),
    ("PATCH", "/users/me", True, "display_name"),
]


@pytest.fixture(scope="module")
def member(api):
    """A user with a direct chat, for paths that need a chat id."""
    user = api.new_user("mal")
    other = api.new_user("mal")
    chat_id = api.initiate(user.token, target_id=other.id)["chat_id"]
    return user, chat_id


@pytest.mark.parametrize("method,path,protected,field", JSON_ENDPOINTS)
@pytest.mark.parametrize("body", BAD_BODIES)
def test_malformed_json_bodies_are_400(api, member, method, path, protected, field, body):
    user, chat_id = member
    response = api.request(
        method,
        path.format(chat_id=chat_id),
        user.token if protected else None,
        data=body.replace(b"FIELD", field.encode()),
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400)


def test_malformed_bodies_wrote_nothing(api, member):
    user, chat_id = member
    assert api.messages(user.token, chat_id) == []
    assert len(ok_json(api.get("/chats", user.token))) == 1
    me = ok_json(api.get(f"/users/{user.id}", user.token))
    assert me["display_name"] is None and me["bio"] is None


@pytest.mark.parametrize(
    "username",
    [
        "",
        "1abc",
        "_abc",
        ".abc",
        "-abc",
        "a" * 33,
        "a" * 5000,
        "a b",
        "a/b",
        "a\u0000b",
        "ü😀",
        "a\nb",
        "abc%",
    ],
)
def test_bad_usernames_are_refused_at_login(api, username):
    assert_error(api.post("/login", json={"username": username}), 400)


@pytest.mark.parametrize("body", [{}, {"username": None}, {"username": 5}, {"username": ["a"]}, {"name": "abc"}])
def test_login_bad_fields_are_400(api, body):
    assert_error(api.post("/login", json=body), 400)


def test_longest_and_shortest_usernames_are_fine(api):
    for name in ("Q", "Q" + "a1_.-" * 6 + "z"):
        assert len(name) in (1, 32)
        api.login(name)


def test_unknown_routes_are_404(api, member):
    user, _ = member
    # (`/` itself is the web client's page, served by nginx: Tests/browser.)
    for path in ("/nope", "/index.html", "/chats/1/nope", "/users/me/extra/x", "/login/x", "/api/chats"):
        assert_error(api.get(path, user.token), 404)


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/login"),
        ("DELETE", "/chats"),
        ("PUT", "/chats/initiate"),
        ("GET", "/send"),
        ("DELETE", "/users/me"),
        ("PUT", "/chats/{chat_id}/messages"),
        ("POST", "/history/someone"),
    ],
)
def test_wrong_methods_are_405(api, member, method, path):
    user, chat_id = member
    assert_error(api.request(method, path.format(chat_id=chat_id), user.token, json={}), 405)


def test_json_body_over_the_limit_is_413_json(api, member):
    user, chat_id = member
    before = api.messages(user.token, chat_id)
    body = b'{"content": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = api.post(
        f"/chats/{chat_id}/messages", user.token, data=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413)
    assert api.messages(user.token, chat_id) == before


def raw_request(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_upload_over_the_limit_is_refused_by_nginx_before_the_body(stack, member):
    """Content-Length above client_max_body_size: nginx answers 413 JSON without reading it."""
    user, _ = member
    request = (
        b"POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Authorization: Bearer " + user.token.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n"
        b"Content-Length: 1000000000\r\n\r\n"
    )
    reply = raw_request(stack.port, request)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), reply[:300]
    assert b"application/json" in head
    assert b'"error"' in body


def test_body_shorter_than_content_length_does_not_hang_the_app(api, stack, member):
    """A client that promises more than it sends: nginx times it out; the API stays up."""
    user, _ = member
    request = (
        b"POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"username\""
    )
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        sock.sendall(request)
        # While that connection waits, the API answers others.
        ok_json(api.get("/chats", user.token))
        sock.shutdown(socket.SHUT_WR)
        reply = sock.recv(65536)
    # Half-closed before the body was complete: nginx answers 400 or just closes.
    assert reply == b"" or reply.startswith(b"HTTP/1.1 400"), reply[:200]


def test_bad_query_strings_are_400(api, member):
    user, chat_id = member
    for query in ("?limit=%FF", "?before_id=%00", "?after_id=%2D1"):
        response = api.get(f"/chats/{chat_id}/messages{query}", user.token)
        assert_error(response, 400)


def test_search_with_bad_query_is_400(api, member):
    user, _ = member
    assert_error(api.get("/users?username=%FF%FE", user.token), 400)
    long_query = api.get("/users?username=" + "a" * 5000, user.token)
    if long_query.status_code == 200:
        assert long_query.json() == []
    else:
        assert_error(long_query, 400)


def test_no_5xx_for_content_type_confusion(api, member):
    """JSON endpoints given a form or multipart body."""
    user, chat_id = member
    for path in ("/login", "/chats/initiate", f"/chats/{chat_id}/messages", "/send"):
        response = api.post(path, user.token, data={"username": "abc"})
        assert response.status_code < 500, (path, response.status_code, response.text[:200])
        response = api.post(path, user.token, files={"file": ("a.txt", b"hello")})
        assert response.status_code < 500, (path, response.status_code, response.text[:200])

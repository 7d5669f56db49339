"""CORS (README, "CORS"): CORS_ORIGINS lists exact origins; nginx answers their preflights
itself and echoes only a listed Origin, never "*"; with CORS_ORIGINS unset there is no CORS
header at all. A bad CORS_ORIGINS stops scripts/run before anything starts."""

from __future__ import annotations

import os
import subprocess

import pytest
import requests

import conftest
from helpers import TIMEOUT, assert_error, ok_json

LISTED = "https://app.example.com"
LOCAL = "http://localhost:5173"
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials",
                "access-control-allow-methods", "access-control-allow-headers",
                "access-control-max-age", "access-control-expose-headers")


def cors_headers(response: requests.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.lower_items() if name.startswith("access-control-")}


@pytest.fixture(scope="module")
def cors_stack():
    # Comma and space separated, with a space after a comma: both forms are accepted.
    running = conftest.start_stack_once("cors", prefix="msgr-e2e-cors-",
                                        CORS_ORIGINS=f"{LISTED}, {LOCAL}", CORS_MAX_AGE="900")
    yield running
    try:
        conftest.stop_stack(running)
    finally:
        conftest.cleanup_stack(running)


def preflight(base_url: str, path: str, origin: str, method: str = "POST", headers: str = "authorization, content-type"):
    return requests.options(base_url + path, timeout=TIMEOUT, headers={
        "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers})


@pytest.mark.parametrize("path", ["/chats", "/chats/1/messages", "/upload", "/login", "/users/me"])
def test_preflight_from_a_listed_origin_is_answered_by_nginx(cors_stack, path):
    response = preflight(cors_stack.base_url, path, LISTED)
    assert response.status_code == 204, response.text
    assert response.content == b""
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == LISTED
    assert headers["access-control-allow-credentials"] == "true"
    methods = {m.strip() for m in headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed
    assert headers["access-control-max-age"] == "900"
    assert "Origin" in response.headers.get("Vary", "")
    # Answered by nginx: the app would have said 405 to OPTIONS, and logged it.
    assert not response.headers.get("Cache-Control")


def test_actual_requests_from_a_listed_origin_get_it_echoed(cors_stack):
    base = cors_stack.base_url
    token = ok_json(requests.post(base + "/login", json={"username": "corsuser"}, timeout=TIMEOUT,
                                  headers={"Origin": LOCAL}))["token"]
    for response in (
        requests.get(base + "/chats", headers={"Origin": LOCAL, "Authorization": f"Bearer {token}"}, timeout=TIMEOUT),
        requests.get(base + "/chats", headers={"Origin": LOCAL}, timeout=TIMEOUT),          # 401 from the app
        requests.get(base + "/no/such/thing", headers={"Origin": LOCAL}, timeout=TIMEOUT),  # 404
        requests.get(base + "/openapi.yaml", headers={"Origin": LOCAL}, timeout=TIMEOUT),
    ):
        headers = cors_headers(response)
        assert headers.get("access-control-allow-origin") == LOCAL, (response.url, response.status_code, headers)
        assert headers.get("access-control-allow-credentials") == "true"
        assert "Origin" in response.headers.get("Vary", "")
        assert "access-control-allow-methods" not in headers  # only on preflights
    upload = ok_json(requests.post(base + "/upload", headers={"Origin": LISTED, "Authorization": f"Bearer {token}"},
                                   files={"file": ("a.png", b"\x89PNG\r\n\x1a\n", "image/png")}, timeout=TIMEOUT))
    served = requests.get(base + upload["url"], headers={"Origin": LISTED}, timeout=TIMEOUT)
    assert served.status_code == 200
    assert cors_headers(served).get("access-control-allow-origin") == LISTED
    # The uploads' own headers are still there beside CORS's.
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]


@pytest.mark.parametrize("origin", ["https://evil.example.com", "https://app.example.com.evil.net",
                                    "http://app.example.com", "https://app.example.com:8443", "null",
                                    "https://app.example.co", "https://localhost:5173"])
def test_unlisted_origins_get_no_cors_headers(cors_stack, origin):
    response = preflight(cors_stack.base_url, "/chats", origin)
    # Not a preflight nginx answers: the app refuses OPTIONS as any other unknown method.
    assert_error(response, 405)
    assert cors_headers(response) == {}
    response = requests.get(cors_stack.base_url + "/chats", headers={"Origin": origin}, timeout=TIMEOUT)
    assert_error(response, 401)
    assert cors_headers(response) == {}


def test_the_answer_is_the_listed_origin_never_the_requests_spelling(cors_stack):
    # nginx's map ignores case; the header still carries exactly the listed origin, which a
    # browser (it sends origins in lower case) compares byte for byte.
    response = requests.get(cors_stack.base_url + "/chats", headers={"Origin": "https://APP.Example.com"}, timeout=TIMEOUT)
    assert response.headers.get("Access-Control-Allow-Origin") in (None, LISTED)


def test_never_a_wildcard(cors_stack):
    for origin in (LISTED, LOCAL, "*", "https://other.example"):
        for response in (preflight(cors_stack.base_url, "/chats", origin),
                         requests.get(cors_stack.base_url + "/chats", headers={"Origin": origin}, timeout=TIMEOUT)):
            assert response.headers.get("Access-Control-Allow-Origin") != "*"


def test_no_cors_headers_by_default(stack):
    # The session stack runs with CORS_ORIGINS unset.
    for origin in (LISTED, "https://evil.example.com"):
        response = preflight(stack.base_url, "/chats", origin)
        assert_error(response, 405)
        assert cors_headers(response) == {}
        assert "Origin" not in response.headers.get("Vary", "")
        response = requests.get(stack.base_url + "/chats", headers={"Origin": origin}, timeout=TIMEOUT)
        assert cors_headers(response) == {} and "Vary" not in response.headers


@pytest.mark.parametrize("value", ["*", "https://app.example.com/path", "app.example.com", "https://a.example.com/",
                                   "ftp://files.example.com", "https://bad host"])
def test_a_bad_cors_origins_stops_scripts_run(tmp_path, value):
    env = conftest.stack_env(tmp_path / "data", conftest.helpers.free_port(), CORS_ORIGINS=value)
    result = subprocess.run([str(conftest.REPO_ROOT / "scripts" / "run")], cwd=conftest.REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "CORS_ORIGINS" in result.stderr, result.stderr[-500:]
    assert not (tmp_path / "data" / "messenger.db").exists()

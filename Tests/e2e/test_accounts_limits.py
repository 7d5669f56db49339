"""Accounts that belong to someone, and limits against abuse (issue 16), through nginx:
optional Argon2id passwords (one 401 for every cause, the same time for an unknown user),
sessions and their revocation in both processes within a second (live sockets closed with
4502), Unicode usernames through every endpoint that takes one, duplicate JSON keys, and the
shared token buckets (a REST + WebSocket send flood held to the limit, exactly the allowed
number stored). The limits run on a stack of their own; the session stack has them off."""

from __future__ import annotations

import asyncio
import statistics
import time
import unicodedata
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import conftest
from helpers import (
    Api,
    User,
    assert_error,
    assert_keys,
    auth,
    decode_token,
    forge_token,
    ok_json,
    unique_username,
)
from ws_helpers import Client, is_message, is_op, open_ws, refused_status, run, ws_url

REFUSED = "wrong username or password"
SESSION_KEYS = {"id", "created_at", "last_used_at", "expires_at", "current"}
PASSWORD = "correct horse battery"


def put_password(api: Api, token: str, **body) -> requests.Response:
    return api.request("PUT", "/users/me/password", token, json=body)


def login(api: Api, username: str, password: str | None = None) -> requests.Response:
    body = {"username": username}
    if password is not None:
        body["password"] = password
    return api.post("/login", json=body)


def login_user(api: Api, username: str, password: str | None = None) -> User:
    token = ok_json(login(api, username, password))["token"]
    claims = decode_token(token)
    return User(username=claims["username"], token=token, id=claims["user_id"], headers=auth(token))


def with_password(api: Api, prefix: str = "pw") -> User:
    user = api.new_user(prefix)
    response = put_password(api, user.token, password=PASSWORD)
    assert response.status_code == 204, response.text
    return user


# --- passwords -------------------------------------------------------------------------------

def test_password_login_with_and_without(api):
    user = with_password(api)
    # The name alone no longer does; nor does a wrong password. One message for both.
    assert assert_error(login(api, user.username), 401)["error"] == REFUSED
    assert assert_error(login(api, user.username, "wrong password!"), 401)["error"] == REFUSED
    # ... nor for a name nobody has, nor for a password given to a user who has none.
    nobody = unique_username("nobody")
    assert assert_error(login(api, nobody, PASSWORD), 401)["error"] == REFUSED
    assert api.get(f"/users/{nobody}").status_code == 404  # and the refused login created no one
    passwordless = api.new_user("nopw")
    assert assert_error(login(api, passwordless.username, PASSWORD), 401)["error"] == REFUSED
    # The right one logs in, as the same user, under any case of the name.
    again = login_user(api, user.username.upper(), PASSWORD)
    assert again.id == user.id
    ok_json(api.get("/chats", again.token))
    # A user without a password keeps the seed's {username} login.
    assert login_user(api, passwordless.username).id == passwordless.id


def test_password_rules_and_change(api):
    user = api.new_user("pwrules")
    for bad in ["short", "x" * 129, 12345678, None, ["longenough"]]:
        assert_error(put_password(api, user.token, password=bad), 400)
    assert_error(put_password(api, None, password=PASSWORD), 401)
    assert put_password(api, user.token, password="a" * 8).status_code == 204
    # 128 characters are fine, however many bytes they take.
    assert put_password(api, user.token, password="é" * 128, current_password="a" * 8).status_code == 204
    assert login_user(api, user.username, "é" * 128).id == user.id
    # Once set, a change needs the current password: missing is 400, wrong is 403.
    user2 = with_password(api, "pwchange")
    assert_error(put_password(api, user2.token, password="another secret"), 400)
    assert_error(put_password(api, user2.token, password="another secret", current_password="nope nope"), 403)
    assert put_password(api, user2.token, password="another secret", current_password=PASSWORD).status_code == 204
    assert_error(login(api, user2.username, PASSWORD), 401)
    assert login_user(api, user2.username, "another secret").id == user2.id


def timed_login(api: Api, username: str, password: str) -> float:
    started = time.perf_counter()
    response = login(api, username, password)
    elapsed = time.perf_counter() - started
    assert response.status_code == 401, response.text
    assert response.json() == {"error": REFUSED}
    return elapsed


def test_wrong_password_takes_as_long_as_an_unknown_user(api):
    user = with_password(api, "timing")
    unknown = unique_username("ghost")
    # Warm-up: enough of each that every FastCGI worker (2 per core, at least 4) has served
    # both kinds, so that no worker's first request (its connection, its statements) lands in
    # one column only.
    for _ in range(12):
        timed_login(api, user.username, "wrong password")
        timed_login(api, unknown, "wrong password")
    wrong, missing, plain = [], [], []
    for _ in range(16):  # interleaved, so that a load change hits all three alike
        wrong.append(timed_login(api, user.username, "wrong password"))
        missing.append(timed_login(api, unknown, "wrong password"))
        started = time.perf_counter()
        ok_json(login(api, user.username + "x"))  # a login without a password: no hash
        plain.append(time.perf_counter() - started)
    wrong_median, unknown_median = statistics.median(wrong), statistics.median(missing)
    assert abs(wrong_median - unknown_median) <= 0.2 * unknown_median, (wrong_median, unknown_median)
    # And both really verify a hash: far slower than a login without a password.
    plain_median = statistics.median(plain)
    assert unknown_median > 2 * plain_median, (unknown_median, plain_median)


# --- sessions and revocation -----------------------------------------------------------------

def get_sessions(api: Api, token: str) -> list[dict]:
    sessions = ok_json(api.get("/users/me/sessions", token))
    assert isinstance(sessions, list)
    for session in sessions:
        assert_keys(session, SESSION_KEYS)
    return sessions


def warm_every_worker(api: Api, token: str) -> None:
    """Enough requests that every FastCGI worker has the token in its cache."""
    for _ in range(24):
        ok_json(api.get("/chats", token))


def refused_within(api: Api, token: str, seconds: float = 1.0) -> float:
    """Seconds until GET /chats with `token` is 401 (at most `seconds`), then checks that
    every following request is refused too (each worker's cache)."""
    started = time.monotonic()
    while api.get("/chats", token).status_code != 401:
        assert time.monotonic() - started < seconds, f"token still accepted after {seconds}s"
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    for _ in range(24):
        assert_error(api.get("/chats", token), 401)
    return elapsed


def test_sessions_are_listed_and_logout_revokes_one(api):
    first = api.new_user("sess")
    second = login_user(api, first.username)
    sessions = get_sessions(api, first.token)
    assert len(sessions) == 2
    assert [s["current"] for s in sessions] == [False, True]  # newest first; this token's is the older
    assert sessions[0]["id"] == decode_token(second.token)["sid"]
    assert api.post("/logout", second.token).status_code == 204
    refused_within(api, second.token)
    assert [s["id"] for s in get_sessions(api, first.token)] == [decode_token(first.token)["sid"]]
    # A second logout with the same token is refused like any other use of it.
    assert_error(api.post("/logout", second.token), 401)


def test_logout_closes_live_sockets_and_refuses_the_token_in_both_processes_within_a_second(api, stack):
    user = api.new_user("revoke")
    other = login_user(api, user.username)  # another device: stays logged in
    warm_every_worker(api, user.token)

    async def scenario():
        by_header = await Client.open(stack, user, "header")
        by_identify = await open_ws(ws_url(stack, query="v=2"))
        await by_identify.send('{"op":"IDENTIFY","d":{"token":"%s"}}' % user.token)
        ready = await asyncio.wait_for(by_identify.recv(), 5)
        assert '"READY"' in ready
        survivor = await Client.open(stack, other, "header")
        await by_header.ping_pong()
        started = time.monotonic()
        response = await asyncio.to_thread(api.post, "/logout", user.token)
        assert response.status_code == 204
        # Both sockets closed, and every FCGIApp worker refusing the token, within 1 s.
        (code, reason, _), (code2, _, _), refused_after = await asyncio.gather(
            by_header.closed(timeout=1.5), Client(by_identify, user).closed(timeout=1.5),
            asyncio.to_thread(refused_within, api, user.token, 1.0))
        assert code == 4502 and code2 == 4502, (code, reason, code2)
        assert reason == "session revoked; log in again"
        assert time.monotonic() - started < 1.0 + 0.3  # + the 24 checks after the first 401
        assert refused_after < 1.0
        # The relay refuses the token at the upgrade and in IDENTIFY.
        status, _ = await refused_status(ws_url(stack), {"Authorization": f"Bearer {user.token}"})
        assert status == 401
        late = await Client.anonymous(stack)
        await late.send({"op": "IDENTIFY", "d": {"token": user.token}})
        code, _, _ = await late.closed()
        assert code == 4502
        # The other session is untouched.
        await survivor.ping_pong()
        await survivor.close()
        return started

    run(scenario())
    ok_json(api.get("/chats", other.token))


def test_logout_all_and_password_change_revoke_other_sessions(api, stack):
    user = with_password(api, "revall")
    a = login_user(api, user.username, PASSWORD)
    b = login_user(api, user.username, PASSWORD)
    for token in (user.token, a.token, b.token):
        warm_every_worker(api, token)

    async def socket_of(session: User):
        return await Client.open(stack, session, "query")

    async def change_password():
        socket_a = await socket_of(a)
        await socket_a.ping_pong()
        started = time.monotonic()
        response = await asyncio.to_thread(put_password, api, user.token, password="new password 2",
                                           current_password=PASSWORD)
        assert response.status_code == 204, response.text
        code, _, _ = await socket_a.closed(timeout=1.5)
        assert code == 4502
        assert time.monotonic() - started < 1.2

    run(change_password())
    refused_within(api, a.token)
    refused_within(api, b.token)
    ok_json(api.get("/chats", user.token))  # the session that changed it stays
    assert [s["current"] for s in get_sessions(api, user.token)] == [True]

    c = login_user(api, user.username, "new password 2")
    assert api.post("/logout/all", c.token).status_code == 204
    refused_within(api, c.token)
    refused_within(api, user.token)


def test_tokens_without_a_session_are_refused(api, stack):
    user = api.new_user("nosid")
    claims = decode_token(user.token)
    del claims["sid"]
    old = forge_token(claims, stack.jwt_secret())
    assert "predates sessions" in assert_error(api.get("/chats", old), 401)["error"]
    status, _ = run(refused_status(ws_url(stack, token=old)))
    assert status == 401
    # A session id that was never issued is refused too.
    forged = forge_token(dict(decode_token(user.token), sid=10**12), stack.jwt_secret())
    assert_error(api.get("/chats", forged), 401)


# --- Unicode usernames -----------------------------------------------------------------------

def unicode_name(base: str) -> str:
    return f"{base}{uuid.uuid4().hex[:8]}"


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def test_unicode_names_round_trip_through_every_endpoint(api, stack):
    me = api.new_user("uni")
    names = [unicode_name("Алиса"), unicode_name("李雷"), unicode_name("josé"), unicode_name("Straße")]
    for name in names:
        # Sent decomposed (NFD); stored and answered composed (NFC).
        created = login_user(api, unicodedata.normalize("NFD", name))
        assert created.username == unicodedata.normalize("NFC", name)
        profile = ok_json(api.get(f"/users/{created.id}", me.token))
        assert profile["username"] == name
        # Other spellings of the same name are the same user: case folding, not lower().
        variants = {name.upper(), name.lower(), unicodedata.normalize("NFD", name.swapcase())}
        if "Straße" in name:
            variants.add(name.replace("Straße", "STRASSE"))
        for variant in variants:
            assert login_user(api, variant).id == created.id, variant
            # path
            assert ok_json(api.get(f"/users/{quoted(variant)}", me.token))["id"] == created.id
        # query: a case-folded fragment
        fragment = name[:4].upper()
        found = ok_json(api.get("/users?username=" + quoted(fragment), me.token))
        assert created.id in [user["id"] for user in found], (fragment, found)
        # body: initiate by name, then the 001 send and history by name
        chat = ok_json(api.post("/chats/initiate", me.token, json={"target_username": name.upper()}))
        assert ok_json(api.post("/send", me.token, json={"receiver_username": name.lower(), "content": "hi"})) == {
            "status": "sent"}
        history = ok_json(api.get(f"/history/{quoted(name.swapcase())}", me.token))
        assert [entry["content"] for entry in history] == ["hi"]
        assert history[0]["receiver_id"] == created.id
        messages = api.messages(me.token, chat["chat_id"])
        assert [m["content"] for m in messages] == ["hi"]

    # 001 frames over the socket, naming the user in another case.
    target = names[0]

    async def frames():
        async with await Client.open(stack, me, "identify") as client:
            await client.send({"receiver_username": target.upper(), "content": "по сокету", "nonce": "u1"})
            ack, _ = await client.recv_until(lambda f: is_op(f, "ACK"))
            assert ack["d"]["nonce"] == "u1"
            await client.send({"receiver_username": "Nobody" + target, "content": "x", "nonce": "u2"})
            error, _ = await client.recv_until(lambda f: is_op(f, "ERROR"))
            assert error["d"]["nonce"] == "u2" and "not found" in error["d"]["message"]
            await client.send({"receiver_username": "😀" + target, "content": "x", "nonce": "u3"})
            error, _ = await client.recv_until(lambda f: is_op(f, "ERROR"))
            assert "start with a letter" in error["d"]["message"]

    run(frames())
    history = ok_json(api.get(f"/history/{quoted(target)}", me.token))
    assert [entry["content"] for entry in history] == ["hi", "по сокету"]


@pytest.mark.parametrize("name,says", [
    ("😀smile", "must start with a letter"),
    ("1Алиса", "must start with a letter"),
    ("12345", "must start with a letter"),
    ("Алиса😀", "'😀' (U+1F600) is not allowed"),
    ("李 雷", "U+0020 is not allowed"),
    ("a\u200bb", "U+200B is not allowed"),
    ("Я" * 33, "at most 32 characters"),
])
def test_bad_unicode_names_say_what_is_wrong(api, name, says):
    message = assert_error(login(api, name), 400)["error"]
    assert says in message, message


def test_existing_ascii_names_stay_valid(api):
    for name in ("Q", "Q" + "a1_.-" * 6 + "z", "Alice_B.c-d"):
        assert login_user(api, name).username == name


# --- duplicate JSON keys ---------------------------------------------------------------------

def test_duplicate_json_keys_are_400(api, stack):
    user = api.new_user("dup")
    peer = api.new_user("duppeer")
    chat_id = api.initiate(user.token, target_username=peer.username)["chat_id"]
    raw = {"Content-Type": "application/json"}
    assert "duplicate key" in assert_error(
        api.post("/login", data='{"username":"a1","username":"b1"}', headers=raw), 400)["error"]
    assert_error(api.post(f"/chats/{chat_id}/messages", user.token,
                          data='{"content":"one","content":"two"}', headers=raw), 400)
    assert_error(api.post(f"/chats/{chat_id}/messages", user.token,
                          data='{"content":"x","files":[{"id":1,"id":2}]}', headers=raw), 400)
    assert api.messages(user.token, chat_id) == []

    async def frame():
        async with await Client.open(stack, user, "header") as client:
            await client.send_text('{"chat_id":%d,"content":"a","content":"b"}' % chat_id)
            error = await client.recv_op("ERROR")
            assert "duplicate key" in error["message"]

    run(frame())
    assert api.messages(user.token, chat_id) == []


# --- rate limits, on a stack of their own ----------------------------------------------------

SEND_RATE, SEND_BURST = 2.0, 20


@pytest.fixture(scope="module")
def limited():
    """A stack with every limit on: sends 2/s burst 20, uploads burst 2, logins 0.05/s burst 3
    per username (per address 1/s burst 60)."""
    own = conftest.start_stack_once("limits", prefix="msgr-e2e-limits-", RATE_SEND=f"{SEND_RATE:g}/{SEND_BURST}",
                                    RATE_UPLOAD="0.01/2", RATE_LOGIN="0.05/3", RATE_SEARCH="0.01/2")
    yield own
    try:
        conftest.stop_stack(own)
    finally:
        conftest.cleanup_stack(own)


def test_a_rest_and_websocket_send_flood_is_held_to_the_limit_in_total(limited):
    api = Api(limited.base_url)
    sender, peer = api.new_user("flood"), api.new_user("floodpeer")
    chat_id = api.initiate(sender.token, target_username=peer.username)["chat_id"]
    per_path = 25

    def rest_send(index: int) -> requests.Response:
        return api.post(f"/chats/{chat_id}/messages", sender.token, json={"content": f"rest {index}"})

    async def ws_flood(client: Client, kind: str) -> dict[str, int]:
        answers = {"ack": 0, "limited": 0}
        for index in range(per_path):
            nonce = f"{kind}-{index}"
            if kind == "000":
                await client.send({"chat_id": chat_id, "content": f"ws {nonce}", "nonce": nonce})
            else:
                await client.send({"receiver_username": peer.username, "content": f"ws {nonce}", "nonce": nonce})
        for _ in range(per_path):
            frame, _ = await client.recv_until(lambda f: is_op(f, "ACK") or is_op(f, "ERROR"), timeout=10)
            if is_op(frame, "ACK"):
                answers["ack"] += 1
            else:
                d = frame["d"]
                assert_keys(d, {"message", "nonce", "retry_after"})
                assert d["nonce"].startswith(kind) and "too many messages" in d["message"], d
                assert isinstance(d["retry_after"], (int, float)) and 0 < d["retry_after"] <= 1 / SEND_RATE + 0.01, d
                answers["limited"] += 1
        return answers

    async def scenario():
        ws000 = await Client.open(limited, sender, "header")
        ws001 = await Client.open(limited, sender, "query")
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            rest = asyncio.gather(*[asyncio.wrap_future(pool.submit(rest_send, i)) for i in range(per_path)])
            results = await asyncio.gather(rest, ws_flood(ws000, "000"), ws_flood(ws001, "001"))
        elapsed = time.monotonic() - started
        await ws000.close()
        await ws001.close()
        return results, elapsed

    (responses, ws000, ws001), elapsed = run(scenario())
    rest_ok = sum(1 for r in responses if r.status_code == 200)
    for response in responses:
        assert response.status_code in (200, 429), response.text
        if response.status_code == 429:
            assert "too many messages" in response.json()["error"]
            assert int(response.headers["Retry-After"]) >= 1
    allowed = rest_ok + ws000["ack"] + ws001["ack"]
    refused = (per_path - rest_ok) + ws000["limited"] + ws001["limited"]
    assert allowed + refused == 3 * per_path
    # The burst, plus what the rate refilled meanwhile: never more, shared by both processes.
    assert SEND_BURST <= allowed <= SEND_BURST + int(SEND_RATE * elapsed) + 1, (allowed, elapsed)
    assert refused >= 3 * per_path - allowed > 0
    # Exactly the allowed sends are stored, nothing of the refused ones.
    stored = api.messages(sender.token, chat_id, "?limit=1000")
    assert len(stored) == allowed, (len(stored), allowed)
    # Later, the bucket has refilled: sending works again.
    time.sleep(1.2 / SEND_RATE)
    ok_json(api.post(f"/chats/{chat_id}/messages", sender.token, json={"content": "after the wait"}))


def test_uploads_are_limited_and_a_refused_upload_stores_nothing(limited):
    api = Api(limited.base_url)
    user = api.new_user("uplim")
    files = lambda: {"file": ("a.txt", b"hello", "text/plain")}  # noqa: E731
    for _ in range(2):
        ok_json(api.post("/upload", user.token, files=files()))
    before = sorted(p.name for p in limited.uploads_dir.iterdir())
    response = api.post("/upload", user.token, files=files())
    assert response.status_code == 429 and "too many uploads" in response.json()["error"]
    assert int(response.headers["Retry-After"]) >= 1
    assert sorted(p.name for p in limited.uploads_dir.iterdir()) == before
    # Another user has a bucket of their own.
    ok_json(api.post("/upload", api.new_user("uplim2").token, files=files()))


def test_searches_are_limited_per_user(limited):
    api = Api(limited.base_url)
    user = api.new_user("srchlim")
    for _ in range(2):
        ok_json(api.get("/search?q=hello", user.token))
    response = api.get("/search?q=hello", user.token)
    assert response.status_code == 429 and "too many searches" in response.json()["error"]
    assert int(response.headers["Retry-After"]) >= 1
    # Before any parsing: a malformed query over the limit is a 429 too, not a 400.
    assert api.get('/search?q="unclosed', user.token).status_code == 429
    ok_json(api.get("/search?q=hello", api.new_user("srchlim2").token))


def test_logins_are_limited_per_username_then_per_address(limited):
    api = Api(limited.base_url)
    name = unique_username("loglim")
    for _ in range(3):
        ok_json(login(api, name))
    response = login(api, name.upper())  # the same user, however it is spelled
    assert response.status_code == 429 and "too many login attempts" in response.json()["error"]
    assert int(response.headers["Retry-After"]) >= 1
    # A password change draws from the same per-username bucket: a wrong current_password is
    # a guess like any other.
    user = login_user(api, unique_username("logpw"))
    # The login and this take two of the burst of 3.
    assert put_password(api, user.token, password=PASSWORD).status_code == 204
    assert_error(put_password(api, user.token, password="other one", current_password="guess 1!"), 403)
    assert "too many login attempts" in assert_error(
        put_password(api, user.token, password="other one", current_password="guess 2!"), 429)["error"]
    # Per address: 60 at once, then refused, whatever the names.
    started = time.monotonic()
    statuses = [login(api, unique_username("addr")).status_code for _ in range(80)]
    elapsed = time.monotonic() - started
    assert set(statuses) == {200, 429}, statuses
    first = statuses.index(429)
    assert first >= 40, statuses  # the per-address burst (60) less what this module used
    # After that, only what the rate (1/s per address) refilled.
    assert statuses[first:].count(200) <= int(elapsed) + 1, (statuses, elapsed)

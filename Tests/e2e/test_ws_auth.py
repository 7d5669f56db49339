"""WebSocket authentication: Bearer header, ?token=, IDENTIFY → READY; forged tokens refused
at the handshake (401) or closed with 4501; an unauthenticated socket closed with 4001."""

import json
import time
import urllib.parse

import pytest

from helpers import assert_keys, decode_token, forge_token
from ws_helpers import (
    Client,
    assert_ready,
    open_ws,
    refused_status,
    run,
    send_and_echo,
    ws_url,
)


def forged(kind: str, stack, user) -> str:
    """A token for `user` that must be refused."""
    claims = decode_token(user.token)
    now = int(time.time())
    if kind == "garbage":
        return "not-a-jwt"
    if kind == "three_garbage_parts":
        return "abc.def.ghi"
    if kind == "wrong_key":
        return forge_token(claims, b"not-the-secret-key-at-all-0123456789")
    if kind == "alg_none":
        return forge_token(claims, b"", alg="none")
    if kind == "alg_hs512_header":
        return forge_token(claims, stack.jwt_secret(), header={"alg": "HS512", "typ": "JWT"})
    if kind == "expired":
        return forge_token(dict(claims, iat=now - 7200, exp=now - 3600), stack.jwt_secret())
    if kind == "tampered_user":
        # A real signature over other claims: someone else's user_id pasted into a valid token.
        header, _, signature = user.token.split(".")
        other = forge_token(dict(claims, user_id=claims["user_id"] + 1, sub=str(claims["user_id"] + 1)), b"x")
        return f"{header}.{other.split('.')[1]}.{signature}"
    raise ValueError(kind)


FORGED_KINDS = ["garbage", "three_garbage_parts", "wrong_key", "alg_none", "alg_hs512_header", "expired",
                "tampered_user"]


def test_forged_tokens_are_really_forged(api, stack, new_user):
    """Sanity check of the forging itself: the real secret signs a token the API accepts, so a
    refusal below is about the token's flaw, not about our signing."""
    user = new_user("wsf")
    claims = decode_token(user.token)
    good = forge_token(dict(claims, exp=int(time.time()) + 600), stack.jwt_secret())
    assert api.get("/chats", good).status_code == 200
    for kind in FORGED_KINDS:
        assert api.get("/chats", forged(kind, stack, user)).status_code == 401, kind


# --- the three ways in -------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["header", "query"])
def test_token_at_handshake_needs_no_identify_and_gets_no_ready(stack, pair, how):
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice, how) as a, await Client.open(stack, bob, how) as b:
            # READY answers IDENTIFY only: a socket authenticated at the handshake gets nothing.
            await a.expect_silence(0.3)
            echo = await send_and_echo(a, chat_id, f"hello via {how}")
            assert echo["sender_id"] == alice.id
            assert await b.recv_message() == echo
            await b.expect_silence(0.2)

    run(scenario())


def test_identify_then_ready_then_send(stack, pair):
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.anonymous(stack) as a, await Client.open(stack, bob, "header") as b:
            await a.send({"op": "IDENTIFY", "d": {"token": alice.token}})
            assert_ready(await a.recv(), alice.id)
            echo = await send_and_echo(a, chat_id, "hello after READY")
            assert await b.recv_message() == echo
            # IDENTIFY again: the same user is answered READY again, another user an ERROR,
            # and the socket stays usable.
            await a.send({"op": "IDENTIFY", "d": {"token": alice.token}})
            assert_ready(await a.recv(), alice.id)
            await a.send({"op": "IDENTIFY", "d": {"token": bob.token}})
            await a.recv_error()
            await send_and_echo(a, chat_id, "still here")

    run(scenario())


def test_token_among_other_query_params_and_bad_header_wins(stack, pair):
    """?token= among other query parameters works; an Authorization header that is not Bearer is 401 even
    when a good ?token= is also given."""
    alice, _, chat_id = pair

    async def scenario():
        quoted = urllib.parse.quote(alice.token, safe="")
        async with Client(await open_ws(ws_url(stack, query=f"foo=1&token={quoted}")), alice) as a:
            await send_and_echo(a, chat_id, "percent-decoded token")
        status, body = await refused_status(ws_url(stack, token=alice.token), {"Authorization": f"Basic {alice.token}"})
        assert status == 401
        assert_keys(json.loads(body), {"error"})

    run(scenario())


# --- forged tokens -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", FORGED_KINDS)
def test_forged_token_in_header_or_query_is_401_at_handshake(stack, new_user, kind):
    user = new_user("wsf")
    token = forged(kind, stack, user)

    async def scenario():
        for url, headers in ((ws_url(stack), {"Authorization": f"Bearer {token}"}),
                             (ws_url(stack, token=urllib.parse.quote(token, safe="")), None)):
            status, body = await refused_status(url, headers)
            assert status == 401, (url, status, body)
            error = json.loads(body)
            assert_keys(error, {"error"})
            assert isinstance(error["error"], str) and error["error"].strip()

    run(scenario())


@pytest.mark.parametrize("kind", FORGED_KINDS)
def test_forged_token_in_identify_closes_4501(stack, new_user, kind):
    user = new_user("wsf")
    token = forged(kind, stack, user)

    async def scenario():
        client = await Client.anonymous(stack)
        await client.send({"op": "IDENTIFY", "d": {"token": token}})
        code, reason, frames = await client.closed()
        assert frames == [], f"no READY or other frame before the close: {frames!r}"
        assert (code, reason) == (4501, "invalid token")

    run(scenario())


def test_identify_without_token_is_an_error_not_a_login(stack):
    async def scenario():
        async with await Client.anonymous(stack) as client:
            for frame in ({"op": "IDENTIFY"}, {"op": "IDENTIFY", "d": {}}, {"op": "IDENTIFY", "d": {"token": ""}},
                          {"op": "IDENTIFY", "d": {"token": 42}}, {"op": "IDENTIFY", "d": "token"}):
                await client.send(frame)
                await client.recv_error()
            await client.ping_pong()

    run(scenario())


def test_unauthenticated_socket_cannot_send_and_is_closed_4001(api, stack, pair):
    """Frames before IDENTIFY get ERROR and store nothing; without IDENTIFY the socket is closed
    with 4001 "identify timeout" (10 s)."""
    alice, _, chat_id = pair
    started = time.monotonic()

    async def scenario():
        client = await Client.anonymous(stack)
        await client.send({"chat_id": chat_id, "content": "before identify", "nonce": "n-early"})
        assert "IDENTIFY" in await client.recv_error(nonce="n-early")
        await client.send({"receiver_username": alice.username, "content": "legacy before identify"})
        await client.recv_error()
        code, reason, frames = await client.closed(timeout=15)
        assert frames == []
        return code, reason

    code, reason = run(scenario())
    elapsed = time.monotonic() - started
    assert (code, reason) == (4001, "identify timeout")
    assert 8 <= elapsed <= 14, f"closed after {elapsed:.1f}s; expected about 10 s"
    assert api.messages(alice.token, chat_id) == []

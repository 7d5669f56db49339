"""Robustness and limits of the relay: malformed, binary, fragmented and oversized frames,
the closing handshake; one bad client never hurts another."""

import asyncio
import json

from websockets.exceptions import ConnectionClosed

from ws_helpers import Client, open_ws, run, send_and_echo, ws_url

MAX_FRAME = 64 * 1024


MALFORMED = [
    "not json",
    "",
    "{",
    '{"chat_id": 1, "content": "x"',
    "[]",
    "[1, 2]",
    "42",
    "null",
    "true",
    '"just a string"',
    "{}",
    '{"content": "no target"}',
    '{"op": "NOPE", "d": {}}',
    '{"op": 42}',
    '{"op": null}',
    '{"op": "identify", "d": {"token": "x"}}',
    '{"chat_id": 1e309, "content": "x"}',
    '{"chat_id": 99999999999999999999999, "content": "x"}',
    '{"chat_id": true, "content": "x"}',
    '{"chat_id": null, "content": "x"}',
    '{"receiver_username": 5, "content": "x"}',
    "[" * 5000 + "]" * 5000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    '{"chat_id": 1, "content": "\\ud800"}',
    '{"chat_id": 1, "content": "x"} trailing',
    "\ufeff{}",
]


def test_malformed_frames_get_one_error_each_and_the_socket_stays_usable(api, stack, pair):
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b:
            for text in MALFORMED:
                await a.send_text(text)
                message = await a.recv_error()
                assert len(message) < 500, message
            await a.expect_silence(0.2)
            await b.expect_silence(0.1)
            echo = await send_and_echo(a, chat_id, "still usable after garbage", nonce="after-garbage")
            assert await b.recv_message() == echo
            return echo

    echo = run(scenario())
    assert api.messages(alice.token, chat_id) == [echo]


def test_binary_frames_are_refused_and_the_socket_stays_usable(api, stack, pair):
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b:
            # Even a binary frame holding a valid send is refused, not stored.
            await a.send_bytes(json.dumps({"chat_id": chat_id, "content": "binary"}).encode())
            await a.recv_error()
            await a.send_bytes(b"\x00\xff\xfe garbage")
            await a.recv_error()
            await b.expect_silence(0.3)
            echo = await send_and_echo(a, chat_id, "text after binary")
            assert await b.recv_message() == echo
            return echo

    echo = run(scenario())
    assert api.messages(bob.token, chat_id) == [echo]


def test_invalid_utf8_text_frame_does_not_break_the_relay(api, stack, pair):
    """A text frame that is not UTF-8: refused with an ERROR or closed with 1007; nothing is
    stored and other clients are unaffected."""
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice) as bad, await Client.open(stack, bob) as b:
            await bad.ws.send(b'{"chat_id": ' + str(chat_id).encode() + b', "content": "\xff\xfe"}', text=True)
            try:
                frame = await bad.recv()
                assert frame.get("op") == "ERROR", frame
            except AssertionError as error:
                if "closed" not in str(error):
                    raise
                assert bad.ws.close_code == 1007, bad.ws.close_code
            await b.expect_silence(0.3)
            async with await Client.open(stack, alice) as a:
                echo = await send_and_echo(a, chat_id, "after invalid utf-8")
                assert await b.recv_message() == echo
                return echo

    echo = run(scenario())
    assert api.messages(alice.token, chat_id) == [echo]


def test_oversized_frame_closes_1009_and_others_are_unaffected(api, stack, pair):
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice) as big, await Client.open(stack, alice) as a2, \
                await Client.open(stack, bob) as b:
            payload = json.dumps({"chat_id": chat_id, "content": "x" * (MAX_FRAME + 1000)})
            assert len(payload) > MAX_FRAME
            await big.send_text(payload)
            code, reason, frames = await big.closed()
            assert frames == []
            assert code == 1009, (code, reason)
            # The same user's other device and the peer carry on; new sockets still open.
            echo = await send_and_echo(a2, chat_id, "after the oversized frame")
            assert await b.recv_message() == echo
            async with await Client.open(stack, bob, "identify") as b2:
                reply = await send_and_echo(b2, chat_id, "new socket after 1009")
                assert await a2.recv_message() == reply
                assert await b.recv_message() == reply
            return [echo, reply]

    sent = run(scenario())
    assert api.messages(alice.token, chat_id) == sent


def test_frame_just_under_the_limit_is_parsed(api, stack, pair):
    """60 KiB is below the frame limit: it is read and refused for its content (over 4000
    characters) with an ERROR, not a close."""
    alice, _, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice) as a:
            payload = json.dumps({"chat_id": chat_id, "content": "x" * (60 * 1024), "nonce": "big-but-ok"})
            assert len(payload) < MAX_FRAME
            await a.send_text(payload)
            assert "4000" in await a.recv_error(nonce="big-but-ok")
            return await send_and_echo(a, chat_id, "fine")

    echo = run(scenario())
    assert api.messages(alice.token, chat_id) == [echo]


def test_fragmented_message_is_reassembled(api, stack, pair):
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b:
            text = json.dumps({"chat_id": chat_id, "content": "in three fragments", "nonce": "frag"})
            await a.ws.send([text[:7], text[7:20], text[20:]])
            echo = await a.recv_message()
            assert echo["content"] == "in three fragments"
            assert await a.recv_ack("frag") == echo["id"]
            assert await b.recv_message() == echo
            return echo

    echo = run(scenario())
    assert api.messages(alice.token, chat_id) == [echo]


def test_fragmented_message_over_the_limit_is_closed_1009(api, stack, pair):
    """The limit holds for the reassembled message too: many small fragments adding up to more
    than 64 KiB close the socket with 1009, like one big frame."""
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b:
            text = json.dumps({"chat_id": chat_id, "content": "y" * (MAX_FRAME + 4096)})
            fragments = [text[i:i + 8192] for i in range(0, len(text), 8192)]
            try:
                await a.ws.send(fragments)
            except ConnectionClosed:
                pass
            code, reason, frames = await a.closed()
            assert frames == []
            echo = await send_and_echo(b, chat_id, "peer unaffected")
            return echo, code, reason

    echo, code, reason = run(scenario())
    assert api.messages(alice.token, chat_id) == [echo]
    # None: the TCP connection was dropped without a close frame (the client reports 1006).
    assert code == 1009, f"closed with {code!r} {reason!r}; expected 1009 like a single oversized frame"


def test_pings_are_answered_and_client_close_is_normal(stack, pair):
    alice, _, chat_id = pair

    async def scenario():
        a = await Client.open(stack, alice)
        for _ in range(3):
            await a.ping_pong()
        await send_and_echo(a, chat_id, "before closing")
        await asyncio.wait_for(a.ws.close(code=1000, reason="done"), 5)
        # The relay answered our close frame with the same code: a clean handshake.
        assert a.ws.close_code == 1000
        assert a.ws.protocol.close_rcvd is not None and a.ws.protocol.close_rcvd.code == 1000

    run(scenario())


def test_many_bad_clients_do_not_disturb_a_good_one(api, stack, pair):
    """Sockets that send garbage, oversized frames or vanish mid-handshake while a good client
    keeps exchanging messages."""
    alice, bob, chat_id = pair

    async def troublemaker(kind: int):
        if kind == 0:
            ws = await open_ws(ws_url(stack))
            await ws.send("x" * (MAX_FRAME + 1))
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except (ConnectionClosed, asyncio.TimeoutError):
                pass
            await ws.close()
        elif kind == 1:
            ws = await open_ws(ws_url(stack), {"Authorization": f"Bearer {alice.token}"})
            for _ in range(20):
                await ws.send("{{{{")
            ws.transport.abort()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.port)
            writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
            await writer.drain()
            writer.close()

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob) as b:
            trouble = asyncio.gather(*(troublemaker(i % 3) for i in range(30)), return_exceptions=True)
            sent = []
            for i in range(10):
                echo = await send_and_echo(a, chat_id, f"good {i}", nonce=f"good-{i}")
                assert await b.recv_message() == echo
                sent.append(echo)
            results = await trouble
            assert not [r for r in results if isinstance(r, AssertionError)], results
            await b.expect_silence(0.2)
            return sent

    sent = run(scenario())
    assert api.messages(alice.token, chat_id) == sent

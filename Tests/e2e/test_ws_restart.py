"""The relay stopped, terminated and killed under load: REST never waits for it, nothing
acknowledged is lost, the supervisor (scripts/run) restarts it, and clients reconnect and
catch up with after_id.

These tests signal the session stack's WSRelay; each leaves a running, accepting relay
behind."""

import asyncio
import os
import signal
import time

from websockets.exceptions import ConnectionClosed

from helpers import ok_json, wait_for
from ws_helpers import (
    Client,
    assert_chat_frame_d,
    is_message,
    process_state,
    relay_pid,
    resume,
    run,
    send_and_echo,
    wait_relay_accepts,
)

RESTART_WITHIN = 6.0  # seconds from the relay's death to a working new connection


def test_relay_sigstopped_while_rest_sends_then_resumed_delivers(api, stack, pair, new_user):
    alice, bob, chat_id = pair
    carol = new_user("wsc")

    async def scenario():
        async with await Client.open(stack, alice) as a, await Client.open(stack, bob, "identify") as b, \
                await Client.open(stack, carol) as c:
            pid = relay_pid(stack)
            os.kill(pid, signal.SIGSTOP)
            try:
                assert wait_for(lambda: process_state(pid) == "T", timeout=5, interval=0.02), process_state(pid)
                timings = []

                def timed(call):
                    started = time.monotonic()
                    result = call()
                    timings.append(time.monotonic() - started)
                    return result

                posted = timed(lambda: ok_json(api.post(f"/chats/{chat_id}/messages", alice.token,
                                                        json={"content": "while stopped 1"})))
                assert timed(lambda: ok_json(api.post("/send", bob.token, json={
                    "receiver_username": alice.username, "content": "while stopped 2"}))) == {"status": "sent"}
                created = timed(lambda: api.initiate(alice.token, target_username=carol.username))
                assert created["status"] == "created"
                third = timed(lambda: ok_json(api.post(f"/chats/{created['chat_id']}/messages", carol.token,
                                                       json={"content": "new chat while stopped"})))
                # More sends while stopped: their notifications queue up (or are dropped); either way
                # every one of them must be delivered after the resume.
                more = [timed(lambda i=i: api.send(alice.token, chat_id, f"burst {i}")) for i in range(30)]
                # FCGIApp never waits for the relay.
                assert max(timings) < 2.0, f"REST calls took up to {max(timings):.2f}s with the relay stopped"
                # Stopped means stopped: nothing was delivered yet.
                await b.expect_silence(0.5)
                assert process_state(pid) == "T"
            finally:
                resume(pid)

            # Resumed: everything arrives exactly once, messages in id order, and the new chat's
            # CHAT frame before its first message.
            frames_a = [await a.recv() for _ in range(3 + len(more) + 1)]
            chat_index = next(i for i, f in enumerate(frames_a) if f.get("op") == "CHAT")
            announced = frames_a.pop(chat_index)["d"]
            assert_chat_frame_d(announced, created["chat_id"], {alice.id, carol.id})
            second = frames_a[1]
            assert (second["sender_id"], second["content"]) == (bob.id, "while stopped 2")
            assert frames_a == [posted, second, third] + more
            assert frames_a.index(third) >= chat_index, "the first message of a chat came before its CHAT"
            assert await c.recv_chat() == announced
            assert await c.recv_message() == third
            for message in [posted, second] + more:
                assert await b.recv_message() == message
            for client in (a, b, c):
                await client.expect_silence(0.3)
            # And the resumed relay works normally.
            echo = await send_and_echo(b, chat_id, "after resume")
            assert await a.recv_message() == echo
            assert relay_pid(stack) == pid, "the stopped relay was replaced instead of resumed"
            return [posted, second] + more + [echo]

    sent = run(scenario())
    assert api.messages(alice.token, chat_id) == sent


def test_relay_sigterm_closes_sockets_1001_and_is_restarted(api, stack, pair):
    alice, bob, chat_id = pair
    output = stack.output_path

    async def scenario():
        a = await Client.open(stack, alice)
        b = await Client.open(stack, bob, "identify")
        old = relay_pid(stack)
        try:
            echo = await send_and_echo(a, chat_id, "before SIGTERM", nonce="term-0")
            assert await b.recv_message() == echo
            os.kill(old, signal.SIGTERM)
            for client in (a, b):
                code, reason, frames = await client.closed(timeout=8)
                assert frames == []
                assert (code, reason) == (1001, "server shutting down")
        finally:
            await a.close()
            await b.close()
        started = time.monotonic()
        a2 = await wait_relay_accepts(stack, alice, timeout=RESTART_WITHIN + 4)
        async with a2, await Client.open(stack, bob) as b2:
            assert relay_pid(stack) != old
            reply = await send_and_echo(b2, chat_id, "after restart")
            assert await a2.recv_message() == reply
            # The retried nonce is still stored once across the restart.
            await a2.send({"chat_id": chat_id, "content": "before SIGTERM", "nonce": "term-0"})
            assert await a2.recv_ack("term-0") == echo["id"]
            await b2.expect_silence(0.3)
        return old, [echo, reply], time.monotonic() - started

    old, sent, _ = run(scenario(), timeout=40)
    assert api.messages(alice.token, chat_id) == sent
    # A clean exit: the supervisor saw status 0 for the terminated relay.
    log = wait_for(lambda: f"WSRelay (pid {old}) exited" in (text := output.read_text()) and text, timeout=5)
    assert log, "scripts/run did not log the relay's exit"
    assert f"WSRelay (pid {old}) exited with status 0" in log


def test_relay_killed_mid_stream_loses_nothing_acknowledged(api, stack, pair):
    """kill -9 while alice streams nonce'd sends: every echo and ACK she got is in history,
    bob's frames were an id-ordered prefix of it, the supervisor restarts the relay, bob
    catches up with after_id, and alice's retries of every nonce store each message once."""
    alice, bob, chat_id = pair
    total = 400

    async def scenario():
        a = await Client.open(stack, alice, "identify")
        b = await Client.open(stack, bob)
        old = relay_pid(stack)
        echoes, acks, bob_seen, sent = [], {}, [], []
        killed_at = None

        async def stream():
            for i in range(total):
                try:
                    await a.send({"chat_id": chat_id, "content": f"stream {i}", "nonce": f"k-{i}"})
                except ConnectionClosed:
                    return
                sent.append(i)
                if i % 20 == 19:  # bursts of 20, so sends are in flight when the relay dies
                    await asyncio.sleep(0.01)

        async def read_alice():
            nonlocal killed_at
            while True:
                try:
                    frame = await a.recv(timeout=10)
                except AssertionError as error:
                    assert "closed" in str(error), error
                    return
                if is_message(frame):
                    echoes.append(frame)
                else:
                    assert frame["op"] == "ACK", frame
                    acks[frame["d"]["nonce"]] = frame["d"]["id"]
                if len(acks) == 25 and killed_at is None:
                    os.kill(old, signal.SIGKILL)
                    killed_at = time.monotonic()

        async def read_bob():
            while True:
                try:
                    bob_seen.append(await b.recv_message(timeout=10))
                except AssertionError as error:
                    assert "closed" in str(error), error
                    return

        try:
            await asyncio.gather(stream(), read_alice(), read_bob())
        finally:
            await a.close()
            await b.close()
        assert killed_at is not None, f"the stream ended before the kill: {len(acks)} ACKs"
        assert len(sent) < total, "the socket survived the relay's death"

        a2 = await wait_relay_accepts(stack, alice, timeout=RESTART_WITHIN + 4)
        restarted_in = time.monotonic() - killed_at
        new = relay_pid(stack)
        assert new != old
        async with a2, await Client.open(stack, bob) as b2:
            history = api.messages(bob.token, chat_id, "?limit=1000")
            by_id = {m["id"]: m for m in history}
            # Nothing acknowledged was lost, and it is exactly what was acknowledged.
            for nonce, message_id in acks.items():
                assert by_id.get(message_id, {}).get("content") == f"stream {nonce[2:]}", (nonce, message_id)
            for echo in echoes:
                assert by_id.get(echo["id"]) == echo
            # Bob's live frames were the history's beginning; after_id gives him the rest.
            assert bob_seen == history[:len(bob_seen)]
            last = bob_seen[-1]["id"] if bob_seen else 0
            caught_up = api.messages(bob.token, chat_id, f"?after_id={last}&limit=1000")
            assert bob_seen + caught_up == history

            # Alice retries every nonce she sent: each ACKs, old ACKs keep their ids, and only
            # the sends that never committed are stored now — delivered live to bob.
            for i in sent:
                await a2.send({"chat_id": chat_id, "content": f"stream {i}", "nonce": f"k-{i}"})
            retried, fresh = {}, []
            while len(retried) < len(sent):
                frame = await a2.recv(timeout=10)
                if is_message(frame):
                    fresh.append(frame)
                else:
                    assert frame["op"] == "ACK", frame
                    retried[frame["d"]["nonce"]] = frame["d"]["id"]
            for nonce, message_id in acks.items():
                assert retried[nonce] == message_id
            bob_live = [await b2.recv_message() for _ in fresh]
            assert bob_live == fresh
            await b2.expect_silence(0.3)
            return history, fresh, sent, restarted_in

    history, fresh, sent, restarted_in = run(scenario(), timeout=60)
    assert restarted_in < RESTART_WITHIN, f"relay accepted again only after {restarted_in:.1f}s"
    final = api.messages(alice.token, chat_id, "?limit=1000")
    assert final == history + fresh
    contents = [m["content"] for m in final]
    assert sorted(contents) == sorted(f"stream {i}" for i in sent), "each sent message stored exactly once"

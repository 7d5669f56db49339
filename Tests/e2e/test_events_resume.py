"""Issue 10: resume exactness under churn, RESYNC for a pruned or future since (socket and
GET /events), and GET /events paging through exactly the frames a socket gets.

The churn test: a sender streams 2,000 messages over REST and WS (seed 000 and 001 forms) into
direct and group chats — some the receiver is not in — with profile changes and new chats
mixed in, while a protocol-2 receiver disconnects and reconnects with since=<last seq it
processed> at 20 random points and once across a kill -9 of the relay. Its seqs are strictly
increasing per socket, none is duplicated, and their union is exactly the set the database
says it may see."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed

import conftest
import helpers

from helpers import assert_keys, is_int, ok_json
from stream_helpers import (
    P2Client,
    assert_event_frame,
    assert_resync,
    backdate_and_wait_pruned,
    head_seq,
    is_ephemeral,
    open_p2_retrying,
    pruned_through,
    query,
    visible_events,
)
from ws_helpers import Client, direct_chat, is_op, relay_pid, run

TOTAL_WS = 1000
TOTAL_REST = 1000
RECONNECTS = 20


def get_events(api, token: str, since: int, limit: int | None = None) -> dict:
    path = f"/events?since={since}" + (f"&limit={limit}" if limit is not None else "")
    body = ok_json(api.get(path, token))
    assert_keys(body, {"events", "seq"})
    assert is_int(body["seq"]) and isinstance(body["events"], list), body
    return body


def page_all(api, token: str, since: int, limit: int) -> tuple[list[dict], int, int]:
    """Every event after since over GET /events in pages of `limit`; (frames, head, pages)."""
    frames, pages = [], 0
    while True:
        body = get_events(api, token, since, limit)
        pages += 1
        for frame in body["events"]:
            assert_event_frame(frame)
            assert frame["seq"] > since, (since, frame)
            since = frame["seq"]
        frames += body["events"]
        assert len(body["events"]) <= limit
        if body["events"]:
            assert body["seq"] >= body["events"][-1]["seq"]
        if len(body["events"]) < limit:
            return frames, body["seq"], pages
        assert body["seq"] == body["events"][-1]["seq"], body["seq"]
        since = body["seq"]


# --- resume under churn ----------------------------------------------------------------------

def test_resume_is_exact_under_churn_with_20_reconnects_and_a_relay_kill(api, stack, new_user):
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    print(f"churn seed {seed}")
    receiver = new_user("chr")
    sender = new_user("chs")
    helper = new_user("chh")       # in the receiver's groups
    outsider = new_user("cho")     # shares a chat with the sender only
    newcomer = new_user("chn")     # starts a direct chat with the receiver mid-stream (REST 001)
    stranger = new_user("chx")     # a WS 001 send of the sender creates a chat with them

    state: dict = {"sockets": [], "kills": 0, "reconnects": 0, "done": False, "killed": False,
                   "connected": False}
    events: dict[int, dict] = {}

    async def scenario():
        # The receiver's first socket, before anything of this test exists.
        first = await P2Client.open(stack, receiver, "query")
        start = first.ready_seq
        direct = api.initiate(sender.token, target_username=receiver.username)["chat_id"]
        group = ok_json(api.post("/chats", sender.token, json={"name": "churn", "participants": [receiver.id, helper.id]}))["id"]
        group2 = ok_json(api.post("/chats", helper.token, json={"name": "churn 2", "participants": [receiver.id]}))["id"]
        hidden = api.initiate(sender.token, target_username=outsider.username)["chat_id"]
        later_group: dict = {}
        # Reconnect points: after this many events processed in total (spread over the stream).
        points = sorted(rng.sample(range(20, 1300), RECONNECTS))
        last = [start]  # the seq of the last event the receiver processed

        async def receive():
            client: P2Client | None = first
            processed = 0
            while True:
                if client is None:
                    how = rng.choice(["query", "header", "identify"])
                    client = await open_p2_retrying(stack, receiver, how, since=last[0], timeout=20)
                    assert client.ready_seq >= last[0], (client.ready_seq, last[0])
                seqs: list[int] = []
                state["sockets"].append(seqs)
                state["connected"] = True
                reason = None
                while reason is None:
                    try:
                        raw = await asyncio.wait_for(client.ws.recv(), 0.5)
                    except asyncio.TimeoutError:
                        if state["done"] and last[0] >= state["target"]:
                            reason = "done"
                        continue
                    except ConnectionClosed:
                        reason = "closed"
                        break
                    frame = json.loads(raw)
                    if is_ephemeral(frame):
                        continue
                    assert not is_op(frame, "RESYNC"), f"RESYNC while resuming from {last[0]}: {frame}"
                    client.check_event(frame)  # strictly after the previous one (or since)
                    seqs.append(frame["seq"])
                    events[frame["seq"]] = frame
                    last[0] = frame["seq"]
                    processed += 1
                    # Once the relay is killed, this socket must die with it: no voluntary
                    # reconnect until the close was seen.
                    crossing = state["killed"] and state["kills"] == 0
                    if points and processed >= points[0] and not crossing:
                        points.pop(0)
                        reason = "reconnect"
                state["connected"] = False
                state.setdefault("reasons", []).append((reason, state["killed"]))
                if reason == "done":
                    await client.close()
                    return
                if reason == "reconnect":
                    state["reconnects"] += 1
                    if rng.random() < 0.5:
                        client.ws.transport.abort()  # gone without a close handshake
                    else:
                        await client.close()
                    await asyncio.sleep(rng.choice([0, 0, 0.05, 0.2]))
                else:
                    assert state["killed"], "the receiver's socket closed without a relay kill"
                    state["kills"] += 1
                client = None

        def ws_frame(i: int) -> dict:
            kind = i % 5
            if kind == 0:
                frame = {"chat_id": direct, "content": f"ws000 d {i}"}
            elif kind == 1:
                frame = {"chat_id": later_group.get("id", group), "content": f"ws000 g {i}"}
            elif kind == 2:
                frame = {"receiver_username": receiver.username, "content": f"ws001 {i}"}
            elif kind == 3:
                frame = {"chat_id": hidden, "content": f"ws000 hidden {i}"}
            elif i % 10 == 4:  # the first creates the sender's direct chat with the stranger
                frame = {"receiver_username": stranger.username, "content": f"ws001 stranger {i}"}
            else:
                frame = {"chat_id": group, "content": f"ws000 g2 {i}", "files": []}
            frame["nonce"] = f"churn-{i}"
            return frame

        async def reopen(user) -> Client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    return await Client.open(stack, user, "identify")
                except Exception:
                    assert time.monotonic() < deadline, "relay did not come back"
                    await asyncio.sleep(0.1)

        async def ws_sender():
            next_i, pending, reopened, errors = 0, {}, 0, 0
            ws = await Client.open(stack, sender, "header")
            try:
                while next_i < TOTAL_WS or pending:
                    try:
                        while next_i < TOTAL_WS and len(pending) < 10:
                            frame = ws_frame(next_i)
                            next_i += 1
                            pending[frame["nonce"]] = frame
                            await ws.send(frame)
                        if not state["killed"] and next_i >= TOTAL_WS // 2:
                            # Killed while the receiver is connected, so its socket dies with it.
                            for _ in range(500):
                                if state["connected"]:
                                    break
                                await asyncio.sleep(0.01)
                            state["killed"] = True
                            os.kill(relay_pid(stack), signal.SIGKILL)
                        f = await ws.recv(timeout=10)
                        if is_op(f, "ACK"):
                            pending.pop(f["d"]["nonce"], None)
                        elif is_op(f, "ERROR"):
                            errors += 1
                            assert errors < 50, f
                            if f["d"].get("nonce") in pending:  # busy: retried, stored once by its nonce
                                await ws.send(pending[f["d"]["nonce"]])
                    except (AssertionError, ConnectionClosed, OSError):
                        if not state["killed"] or reopened >= 3:
                            raise
                        reopened += 1
                        await ws.close()
                        ws = await reopen(sender)
                        for frame in list(pending.values()):
                            await ws.send(frame)
            finally:
                await ws.close()

        def rest_sender():
            for i in range(TOTAL_REST):
                kind = i % 6
                if kind == 0:
                    api.send(sender.token, direct, f"rest d {i}")
                elif kind == 1:
                    api.send(helper.token, group, f"rest g {i}")
                elif kind == 2:
                    assert ok_json(api.post("/send", sender.token, json={
                        "receiver_username": receiver.username, "content": f"rest001 {i}"})) == {"status": "sent"}
                elif kind == 3:
                    api.send(helper.token, group2, f"rest g2 {i}")
                elif kind == 4:
                    api.send(outsider.token, hidden, f"rest hidden {i}")
                else:
                    target = later_group.get("id", group2)
                    api.send(helper.token, target, f"rest late {i}")
                if i % 97 == 50:  # profile changes of contacts, of the receiver, of a non-contact
                    who = [sender, helper, receiver, outsider][(i // 97) % 4]
                    ok_json(api.patch("/users/me", who.token, json={"bio": f"bio {i}"}))
                if i == 400:
                    later_group["id"] = ok_json(api.post("/chats", sender.token, json={
                        "name": "mid-stream", "participants": [receiver.id, helper.id]}))["id"]
                if i == 600:
                    assert ok_json(api.post("/send", newcomer.token, json={
                        "receiver_username": receiver.username, "content": "newcomer"})) == {"status": "sent"}

        started = time.monotonic()
        receiving = asyncio.ensure_future(receive())
        try:
            await asyncio.gather(ws_sender(), asyncio.to_thread(rest_sender))
        except BaseException:
            receiving.cancel()
            raise
        sending_took = time.monotonic() - started
        # Everything is committed: the target is the newest event the receiver may see.
        visible = visible_events(stack, receiver.id, after=start)
        state["target"] = max(visible)
        state["done"] = True
        await asyncio.wait_for(receiving, 30)
        return start, visible, sending_took

    start, visible, took = run(scenario(), timeout=150)
    sockets = state["sockets"]
    all_seqs = [s for seqs in sockets for s in seqs]
    for seqs in sockets:
        assert seqs == sorted(set(seqs)), "seqs not strictly increasing on one socket"
    assert len(all_seqs) == len(set(all_seqs)), "an event was delivered twice"
    assert state["reconnects"] == RECONNECTS, state["reconnects"]
    assert state["kills"] == 1, (state["kills"], [(i, r) for i, r in enumerate(state["reasons"]) if r != ("reconnect", False)])
    missing = sorted(set(visible) - set(all_seqs))
    extra = sorted(set(all_seqs) - set(visible))
    assert not missing and not extra, f"missing {missing[:20]} ({len(missing)}), extra {extra[:20]} ({len(extra)})"
    for seq, (op, _audience, chat_id, user_id, message_id) in visible.items():
        frame = events[seq]
        assert frame["op"] == op, (seq, frame, op)
        if op == "MESSAGE":
            assert frame["d"]["id"] == message_id and frame["d"]["chat_id"] == chat_id, (seq, frame)
        elif op == "USER":
            assert frame["d"]["id"] == user_id
    ops = [f["op"] for f in events.values()]
    assert ops.count("CHAT") >= 5 and ops.count("USER") >= 5, {op: ops.count(op) for op in set(ops)}
    assert ops.count("MESSAGE") >= 1200
    # Every message of the stream was stored once (nonces made the WS retries idempotent).
    stored = query(stack, "SELECT count(*), count(DISTINCT content) FROM messages WHERE sender_id IN (?, ?, ?)",
                   (sender.id, helper.id, outsider.id))[0]
    assert stored[0] == stored[1] == TOTAL_WS + TOTAL_REST, stored
    print(f"sending took {took:.1f}s; {len(sockets)} sockets, {len(all_seqs)} events")


# --- RESYNC ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pruning_stack():
    """A stack of its own for the pruning test: pruned events would turn every other test's
    `since=0` into a RESYNC on the session stack."""
    own = conftest.start_stack_once("pruning", prefix="msgr-e2e-prune-")
    yield own
    try:
        conftest.stop_stack(own)
    finally:
        conftest.cleanup_stack(own)


def test_pruned_or_future_since_gets_resync_on_the_socket_and_get_events(pruning_stack):
    stack = pruning_stack
    api = helpers.Api(stack.base_url)
    alice, bob = api.new_user("pra"), api.new_user("prb")
    chat_id = direct_chat(stack, api, alice, bob)
    sent = [api.send(alice.token, chat_id, f"prunable {i}") for i in range(6)]
    seq_of = {m["id"]: query(stack, "SELECT seq FROM events WHERE op = 'MESSAGE' AND message_id = ?", (m["id"],))[0][0]
              for m in sent}
    cut = seq_of[sent[2]["id"]]  # events up to the third message are made old and pruned
    pruned = backdate_and_wait_pruned(stack, cut)
    assert pruned >= cut
    kept = [seq_of[m["id"]] for m in sent[3:]]
    assert all(s > pruned for s in kept)
    # Pruning never deletes messages.
    assert api.messages(bob.token, chat_id) == sent

    async def scenario():
        head = head_seq(stack)
        # A since from before the pruned events: READY (the head), RESYNC, nothing replayed.
        for since, how in ((cut - 1, "query"), (0, "header"), (cut - 1, "identify"), (head + 1000, "query")):
            async with await P2Client.open(stack, bob, how, since=since) as b:
                assert b.ready_seq <= head_seq(stack)
                resync = assert_resync(await b.recv())
                # Continuing from it skips the pruned range; it is a real stream position.
                assert pruned <= resync <= head_seq(stack), (since, resync, head)
                await b.expect_silence(0.3)
                # Then live events after the RESYNC's seq.
                b.last = resync
                live = api.send(alice.token, chat_id, f"after resync from {since}")
                frame = await b.recv_event()
                assert frame["op"] == "MESSAGE" and frame["d"]["id"] == live["id"] and frame["seq"] > resync
                await b.expect_silence(0.2)
            head = head_seq(stack)
        # since = pruned_through: nothing after it was pruned, so a plain replay.
        async with await P2Client.open(stack, bob, "query", since=pruned) as b:
            expected = visible_events(stack, bob.id, after=pruned)
            frames = await b.events_through(max(expected))
            assert [f["seq"] for f in frames] == sorted(expected)
            assert not any(is_op(f, "RESYNC") for f in frames)
            assert [f["d"]["id"] for f in frames if f["op"] == "MESSAGE"][:3] == [m["id"] for m in sent[3:]]

    run(scenario())

    head = head_seq(stack)
    for since in (cut - 1, 0, head + 1, head + 1000):
        body = get_events(api, bob.token, since)
        assert len(body["events"]) == 1, body
        resync = assert_resync(body["events"][0])
        assert body["seq"] == resync == head, (since, body, head)
    # Continuing from the RESYNC's seq works: nothing new yet, then the next event.
    assert get_events(api, bob.token, head) == {"events": [], "seq": head}
    live = api.send(alice.token, chat_id, "after the GET resync")
    body = get_events(api, bob.token, head)
    assert [f["d"]["id"] for f in body["events"]] == [live["id"]]
    # since = pruned_through pages normally.
    frames, _, _ = page_all(api, bob.token, pruned_through(stack), 100)
    assert [f["seq"] for f in frames] == sorted(visible_events(stack, bob.id, after=pruned_through(stack)))
    assert not api.server_errors, api.server_errors


# --- GET /events is the socket's stream ---------------------------------------------------------

def test_get_events_pages_through_exactly_the_frames_of_the_socket(api, stack, pair, new_user):
    alice, bob, direct = pair
    carol, dave = new_user("gec"), new_user("ged")

    async def scenario():
        async with await P2Client.open(stack, bob, "query") as live, \
                await Client.open(stack, alice, "header") as a:
            start = live.ready_seq
            group = ok_json(api.post("/chats", alice.token, json={"name": "paged", "participants": [bob.id, carol.id]}))["id"]
            receipt = ok_json(api.post("/upload", alice.token, files={"file": ("p.png", b"\x89PNG-paged", "image/png")}))
            api.send(alice.token, direct, "rest 1")
            ok_json(api.post(f"/chats/{group}/messages", alice.token, json={"content": "with file", "files": [receipt]}))
            for i in range(12):
                target = {"chat_id": group} if i % 3 else {"receiver_username": bob.username}
                await a.send({**target, "content": f"ws {i}", "nonce": f"ge-{i}"})
                ack, _ = await a.recv_until(lambda f: is_op(f, "ACK"))
                assert ack["d"]["nonce"] == f"ge-{i}", ack
            ok_json(api.patch("/users/me", carol.token, json={"display_name": "Carol Paged"}))
            ok_json(api.patch("/users/me", bob.token, json={"bio": "paged bob"}))
            ok_json(api.post("/send", dave.token, json={"receiver_username": bob.username, "content": "dave here"}))
            for i in range(5):
                api.send(carol.token, group, f"carol {i}")
            api.send(alice.token, ok_json(api.post("/chats", alice.token, json={"name": "no bob", "participants": [carol.id]}))["id"], "hidden")
            expected = visible_events(stack, bob.id, after=start)
            live_frames = await live.events_through(max(expected))
            await live.expect_silence(0.3)
        # Quiet now: a replaying socket and GET /events render the same state.
        async with await P2Client.open(stack, bob, "identify", since=start) as replay:
            replay_frames = await replay.events_through(max(expected))
            await replay.expect_silence(0.3)
        return start, expected, live_frames, replay_frames

    start, expected, live_frames, replay_frames = run(scenario())
    seqs = sorted(expected)
    assert [f["seq"] for f in live_frames] == seqs
    assert [f["seq"] for f in replay_frames] == seqs
    assert [f["op"] for f in replay_frames] == [expected[s][0] for s in seqs]
    assert {f["op"] for f in replay_frames} == {"CHAT", "MESSAGE", "USER"}
    head = head_seq(stack)
    for limit in (1, 7, 100, 1000, None):
        frames, last_seq, pages = page_all(api, bob.token, start, limit or 100)
        assert frames == replay_frames, f"limit {limit}: GET /events differs from the socket"
        assert last_seq == head
        if limit == 7:
            assert pages == len(seqs) // 7 + 1
    # The default limit is 100.
    assert get_events(api, bob.token, start)["events"] == replay_frames[:100]
    # Live and replayed frames agree; a chat's frame is rendered as it is when delivered, so
    # for CHAT only the chat itself is compared.
    chat_keys = ("id", "name", "chat_type", "created_at", "participants", "my_role")
    for live_frame, replayed in zip(live_frames, replay_frames):
        if live_frame["op"] == "CHAT":
            assert [live_frame["d"][k] for k in chat_keys] == [replayed["d"][k] for k in chat_keys]
        else:
            assert live_frame == replayed
    with_file = next(f for f in replay_frames if f["op"] == "MESSAGE" and f["d"]["content"] == "with file")
    assert [x["filename"] for x in with_file["d"]["files"]] == ["p.png"]
    # Continuing from the head: an empty page at the head.
    assert get_events(api, bob.token, head) == {"events": [], "seq": head}

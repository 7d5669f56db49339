"""Issue 10: protocol 2 on the socket — READY with seq however the socket authenticated,
events {"op","seq","d"} for every send (REST and WS, 000 and 001), chat creation and profile
change, in seq order and exactly the user's visible set; ACK/ERROR as on protocol 1; a client
offline while CHAT, USER and MESSAGE events happened gets them all on resume; IDENTIFY after
a header token; bad v/since at the upgrade, in IDENTIFY and on GET /events; and a commit round
failing on a held write lock answers every send once, stores nothing half, and the socket
stays usable."""

from __future__ import annotations

import asyncio
import time

import pytest

import database
from helpers import (
    MESSAGE_KEYS,
    assert_error,
    assert_keys,
    is_int,
    ok_json,
)
from stream_helpers import (
    P2Client,
    assert_ready_v2,
    head_seq,
    query,
    visible_events,
)
from ws_helpers import (
    ACK_KEYS,
    ERROR_KEYS,
    Client,
    assert_ready,
    is_message,
    is_op,
    refused_status,
    run,
)

BUSY_MESSAGE = "server busy; retry"
# How long the test holds the write lock: past two busy timeouts (5 s), so that the round the
# first sends go to fails even if another write of the relay (its pruner) met the lock first.
HOLD = 12.0


def v2_message(api, token: str, chat_id: int, message_id: int) -> dict:
    page = ok_json(api.get(f"/chats/{chat_id}/messages?v=2&after_id={message_id - 1}&limit=1", token))
    assert page["messages"] and page["messages"][0]["id"] == message_id, page
    return page["messages"][0]


def ops_and_keys(frames: list[dict]) -> list[tuple]:
    return [(f["op"], f["seq"]) for f in frames]


# --- READY ---------------------------------------------------------------------------------

@pytest.mark.parametrize("how,v_in_identify", [("header", True), ("query", True), ("identify", True),
                                              ("identify", False)])
def test_every_protocol_2_socket_gets_ready_with_seq_first(api, stack, new_user, how, v_in_identify):
    user = new_user("p2r")

    async def scenario():
        async with await P2Client.open(stack, user, how, v_in_identify=v_in_identify) as client:
            # READY {user_id, seq} was the first frame (checked by open); seq is a stream
            # position (the relay's, which may trail the database by a notification).
            assert client.ready_seq <= head_seq(stack), client.ready_seq
            await client.expect_silence(0.3)
            # The stream continues from it: the user's own profile change follows.
            ok_json(api.patch("/users/me", user.token, json={"bio": how}))
            frame = await client.recv_event()
            assert frame["op"] == "USER" and frame["d"]["bio"] == how and frame["seq"] > client.ready_seq

    run(scenario())


def test_since_implies_protocol_2_on_the_query_and_in_identify(api, stack, new_user):
    user = new_user("p2s")

    async def scenario():
        await asyncio.sleep(0.2)  # the relay has caught up with whatever came before
        head = head_seq(stack)
        for how in ("header", "query", "identify"):
            # since without v: READY carries seq, so the socket is protocol 2.
            async with await P2Client.open(stack, user, how, since=head) as client:
                assert client.ready_seq >= head
                await client.expect_silence(0.2)
                ok_json(api.patch("/users/me", user.token, json={"bio": how}))
                frame = await client.recv_event()
                assert frame["op"] == "USER" and frame["seq"] > head
            head = frame["seq"]

    run(scenario())


# --- live events ---------------------------------------------------------------------------

def test_live_events_for_every_kind_of_change_in_seq_order_with_full_shapes(api, stack, new_user):
    alice, bob, carol = new_user("p2la"), new_user("p2lb"), new_user("p2lc")
    dave = new_user("p2ld")  # starts a direct chat with bob over 001 at the end
    erin = new_user("p2le")  # shares no chat with bob, ever

    async def scenario():
        async with await P2Client.open(stack, bob, "query") as b, \
                await P2Client.open(stack, alice, "header") as a:
            start = b.ready_seq
            # CHAT: a direct chat by initiate.
            direct = api.initiate(alice.token, target_username=bob.username)["chat_id"]
            chat_event = await b.recv_event()
            assert chat_event["op"] == "CHAT" and chat_event["d"]["id"] == direct, chat_event
            assert chat_event["d"]["chat_type"] == "direct" and chat_event["d"]["my_role"] == "member"
            assert set(chat_event["d"]["participants"]) == {alice.id, bob.id}
            assert chat_event["d"]["last_message"] is None
            a_chat = await a.recv_event()
            assert a_chat["seq"] == chat_event["seq"] and a_chat["d"]["my_role"] == "member"

            # CHAT: a group; the creator is its owner, the others members.
            group = ok_json(api.post("/chats?v=2", alice.token, json={"name": "p2 group", "participants": [bob.id, carol.id]}))
            g_b = await b.recv_event()
            g_a = await a.recv_event()
            assert g_b["op"] == g_a["op"] == "CHAT" and g_b["seq"] == g_a["seq"] > chat_event["seq"]
            assert g_b["d"]["id"] == group["id"] and g_b["d"]["my_role"] == "member"
            assert g_a["d"]["my_role"] == "owner" and g_a["d"] == group

            # MESSAGE: REST 000 send.
            posted = ok_json(api.post(f"/chats/{group['id']}/messages?v=2", alice.token, json={"content": "rest"}))
            for client in (a, b):
                frame = await client.recv_event()
                assert (frame["op"], frame["d"]) == ("MESSAGE", posted), frame

            # MESSAGE: WS 000 send with nonce on a protocol-2 socket: the event, and ACK (no seq).
            await a.send({"chat_id": direct, "content": "ws 000", "nonce": "p2-000"})
            frames = [await a.recv(), await a.recv()]
            acks = [f for f in frames if is_op(f, "ACK")]
            events = [f for f in frames if not is_op(f, "ACK")]
            assert len(acks) == 1 and len(events) == 1, frames
            assert_keys(acks[0], {"op", "d"})
            assert_keys(acks[0]["d"], ACK_KEYS)
            a.check_event(events[0])
            ws000 = events[0]
            assert ws000["op"] == "MESSAGE" and acks[0]["d"] == {"nonce": "p2-000", "id": ws000["d"]["id"]}
            assert await b.recv_event() == ws000
            assert ws000["d"] == v2_message(api, bob.token, direct, ws000["d"]["id"])

            # MESSAGE: WS 001 send into the existing direct chat.
            await b.send({"receiver_username": alice.username, "content": "ws 001", "nonce": "p2-001"})
            frames = [await b.recv(), await b.recv()]
            ws001 = next(f for f in frames if not is_op(f, "ACK"))
            b.check_event(ws001)
            assert ws001["op"] == "MESSAGE" and ws001["d"]["chat_id"] == direct and ws001["d"]["sender_id"] == bob.id
            assert await a.recv_event() == ws001

            # MESSAGE: REST 001 /send.
            assert ok_json(api.post("/send", alice.token, json={"receiver_username": bob.username, "content": "rest 001"})) == {"status": "sent"}
            rest001 = await b.recv_event()
            assert rest001["op"] == "MESSAGE" and rest001["d"]["content"] == "rest 001" and rest001["d"]["chat_id"] == direct
            assert await a.recv_event() == rest001

            # USER: a profile change, to the user and everyone sharing a chat with them.
            profile = ok_json(api.patch("/users/me", alice.token, json={"display_name": "Alice Two", "bio": "p2"}))
            for client in (a, b):
                frame = await client.recv_event()
                assert (frame["op"], frame["d"]) == ("USER", profile), frame
            # A stranger's profile change reaches nobody here.
            ok_json(api.patch("/users/me", erin.token, json={"bio": "stranger"}))
            await b.expect_silence(0.5)

            # CHAT: a direct chat created by a REST 001 send, then its MESSAGE.
            assert ok_json(api.post("/send", dave.token, json={"receiver_username": bob.username, "content": "hi bob"})) == {"status": "sent"}
            created = await b.recv_event()
            first = await b.recv_event()
            assert created["op"] == "CHAT" and created["d"]["chat_type"] == "direct"
            assert set(created["d"]["participants"]) == {bob.id, dave.id}
            assert first["op"] == "MESSAGE" and first["d"]["chat_id"] == created["d"]["id"]

            # CHAT: a direct chat created by a WS 001 send.
            await b.send({"receiver_username": carol.username, "content": "hi carol", "nonce": "p2-new"})
            got = [await b.recv() for _ in range(3)]
            ack = [f for f in got if is_op(f, "ACK")]
            evs = [f for f in got if not is_op(f, "ACK")]
            assert len(ack) == 1 and [f["op"] for f in evs] == ["CHAT", "MESSAGE"], got
            for frame in evs:
                b.check_event(frame)
            assert set(evs[0]["d"]["participants"]) == {bob.id, carol.id}
            assert ack[0]["d"] == {"nonce": "p2-new", "id": evs[1]["d"]["id"]}

            await b.expect_silence(0.3)
            await a.expect_silence(0.1)
            return b.ready_seq, b.seen, a.ready_seq, a.seen

    b_start, b_seen, a_start, a_seen = run(scenario())
    # What each got is exactly what the database says they may see after their READY.
    for start, seen, user in ((b_start, b_seen, bob), (a_start, a_seen, alice)):
        visible = visible_events(stack, user.id, after=start)
        assert [f["seq"] for f in seen] == sorted(visible), user.username
        assert [f["op"] for f in seen] == [visible[s][0] for s in sorted(visible)]


def test_protocol_2_error_frames_are_protocol_1s(api, stack, pair):
    alice, bob, chat_id = pair

    async def scenario():
        async with await P2Client.open(stack, alice, "query") as a:
            await a.send({"chat_id": chat_id, "content": "", "nonce": "p2-bad"})
            frame = await a.recv()
            assert is_op(frame, "ERROR"), frame
            assert_keys(frame, {"op", "d"})
            assert_keys(frame["d"], ERROR_KEYS)
            assert frame["d"]["nonce"] == "p2-bad" and frame["d"]["message"].strip()
            await a.send_text("{not json")
            frame = await a.recv()
            assert is_op(frame, "ERROR") and set(frame) == {"op", "d"}, frame
            await a.expect_silence(0.2)

    run(scenario())


# --- resume after being offline --------------------------------------------------------------

def test_offline_client_gets_chat_user_and_message_events_on_resume(api, stack, pair, new_user):
    """Bob goes offline; meanwhile a group with him is created (CHAT), a contact changes her
    profile (USER) and messages are sent over REST and WS (MESSAGE); on resume with since he
    gets all of them, in seq order, then the live stream."""
    alice, bob, direct = pair
    carol = new_user("p2oc")

    async def scenario():
        async with await P2Client.open(stack, bob, "identify") as b:
            since = b.ready_seq
        # Offline now.
        group = ok_json(api.post("/chats", carol.token, json={"name": "while away", "participants": [alice.id, bob.id]}))
        profile = ok_json(api.patch("/users/me", alice.token, json={"display_name": "Alice Away"}))
        rest = ok_json(api.post(f"/chats/{group['id']}/messages?v=2", carol.token, json={"content": "rest while away"}))
        async with await Client.open(stack, alice) as a:
            await a.send({"chat_id": direct, "content": "ws while away", "nonce": "away-1"})
            ws_echo = await a.recv_message()
            await a.recv_ack("away-1")
            await a.send({"receiver_username": bob.username, "content": "ws 001 while away", "nonce": "away-2"})
            ws001_echo = await a.recv_message()
            await a.recv_ack("away-2")
        ok_json(api.post("/send", carol.token, json={"receiver_username": bob.username, "content": "001 creates"}))
        head = head_seq(stack)
        assert len(visible_events(stack, bob.id, after=since)) >= 7

        contents = ["rest while away", "ws while away", "ws 001 while away", "001 creates"]
        for how in ("query", "header", "identify"):
            expected = visible_events(stack, bob.id, after=since)
            async with await P2Client.open(stack, bob, how, since=since) as b:
                assert since <= b.ready_seq <= head_seq(stack), (b.ready_seq, head)
                frames = await b.events_through(max(expected))
                assert [f["seq"] for f in frames] == sorted(expected), (how, frames)
                assert [f["op"] for f in frames] == [expected[s][0] for s in sorted(expected)]
                by_op = {}
                for frame in frames:
                    by_op.setdefault(frame["op"], []).append(frame["d"])
                assert by_op["CHAT"][0]["id"] == group["id"]
                assert by_op["CHAT"][0]["my_role"] == "member" and by_op["CHAT"][0]["name"] == "while away"
                assert by_op["USER"] == [profile]
                messages = by_op["MESSAGE"]
                assert rest in messages
                assert [m["content"] for m in messages] == contents
                assert {k: messages[1][k] for k in MESSAGE_KEYS} == ws_echo
                assert {k: messages[2][k] for k in MESSAGE_KEYS} == ws001_echo
                created = by_op["CHAT"][1]
                assert created["chat_type"] == "direct" and set(created["participants"]) == {bob.id, carol.id}
                # Then live, with no gap: the next event is the next visible one.
                live = api.send(alice.token, direct, f"live after {how}")
                frame = await b.recv_event()
                assert frame["op"] == "MESSAGE" and frame["d"]["id"] == live["id"]
                assert frame["seq"] > max(expected)
                await b.expect_silence(0.3)
                contents.append(live["content"])
            # The next resume starts from the same since: the live one is owed too.

    run(scenario(), timeout=60)


# --- IDENTIFY after a header token ------------------------------------------------------------

@pytest.mark.parametrize("how", ["header", "query"])
def test_identify_after_a_token_at_the_handshake(stack, pair, how):
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, alice, how) as a:
            await a.send({"op": "IDENTIFY", "d": {"token": alice.token}})
            assert_ready(await a.recv(), alice.id)
            await a.send({"op": "IDENTIFY", "d": {"token": bob.token}})
            frame = await a.recv()
            assert is_op(frame, "ERROR"), frame
            assert_keys(frame["d"], ERROR_KEYS)
            # Still alice's socket, still open.
            await a.send({"chat_id": chat_id, "content": "after identify", "nonce": "idf"})
            echo = await a.recv_message()
            assert echo["sender_id"] == alice.id
            await a.recv_ack("idf")
            # Same user again: READY again.
            await a.send({"op": "IDENTIFY", "d": {"token": alice.token}})
            assert_ready(await a.recv(), alice.id)

    run(scenario())


def test_identify_after_a_header_token_on_protocol_2(stack, pair):
    alice, bob, _ = pair

    async def scenario():
        async with await P2Client.open(stack, alice, "header") as a:
            await a.send({"op": "IDENTIFY", "d": {"token": alice.token}})
            frame = await a.recv()
            assert is_op(frame, "READY") and frame["d"]["user_id"] == alice.id, frame
            assert set(frame["d"]) <= {"user_id", "seq"}, frame
            await a.send({"op": "IDENTIFY", "d": {"token": bob.token}})
            frame = await a.recv()
            assert is_op(frame, "ERROR"), frame
            await a.ping_pong()

    run(scenario())


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("params", ["v=3", "v=0", "v=abc", "v=", "since=-1", "since=abc", "since=1.5",
                                    "since=", "v=2&since=-1", "v=3&since=0", "v=1&since=abc"])
def test_bad_v_or_since_is_400_at_the_upgrade(stack, new_user, params):
    user = new_user("p2bad")

    async def scenario():
        url = f"ws://127.0.0.1:{stack.port}/ws?{params}"
        status, _ = await refused_status(url, {"Authorization": f"Bearer {user.token}"})
        assert status == 400, (params, status)
        status, _ = await refused_status(f"{url}&token={user.token}")
        assert status == 400, (params, status)

    run(scenario())


@pytest.mark.parametrize("extra", [{"v": 3}, {"v": 0}, {"v": "2"}, {"v": "abc"}, {"since": -1}, {"since": "abc"},
                                   {"since": 1.5}, {"v": 2, "since": -5}])
def test_bad_v_or_since_in_identify_is_an_error_frame(stack, new_user, extra):
    user = new_user("p2bi")

    async def scenario():
        async with await Client.anonymous(stack) as c:
            await c.send({"op": "IDENTIFY", "d": {"token": user.token, **extra}})
            frame = await c.recv()
            assert is_op(frame, "ERROR"), (extra, frame)
            assert_keys(frame, {"op", "d"})
            assert_keys(frame["d"], ERROR_KEYS)
            # A bad frame leaves the socket open: a correct IDENTIFY is answered READY.
            await c.send({"op": "IDENTIFY", "d": {"token": user.token, "v": 2}})
            assert_ready_v2(await c.recv(), user.id)

    run(scenario())


def test_get_events_rejects_bad_input(api, new_user):
    user = new_user("p2ge")
    assert_error(api.get("/events?since=0"), 401)
    for query_string in ("", "?limit=10", "?since=", "?since=-1", "?since=abc", "?since=1.5",
                         "?since=0&limit=0", "?since=0&limit=1001", "?since=0&limit=abc", "?since=0&limit=-1",
                         "?since=0&limit="):
        assert_error(api.get("/events" + query_string, user.token), 400)
    for limit in ("1", "1000"):
        body = ok_json(api.get(f"/events?since={0}&limit={limit}", user.token))
        assert set(body) == {"events", "seq"} and is_int(body["seq"])


# --- a failing commit round -------------------------------------------------------------------

def test_commit_round_failing_on_a_held_write_lock_answers_every_send_once(api, stack, pair):
    """Another connection holds BEGIN IMMEDIATE past the relay's busy timeout (5 s) — 12 s, so
    the first round fails even behind another write that met the lock first: every send
    of that window is answered exactly once — ERROR "server busy; retry" with its nonce, or
    ACK if it committed after the lock was released — nothing is stored half, and the socket
    stays usable."""
    alice, bob, chat_id = pair
    nonces = [f"busy-{i}" for i in range(5)]
    late = [f"busy-late-{i}" for i in range(2)]

    async def scenario():
        async with await Client.open(stack, alice, "header") as a, await P2Client.open(stack, bob, "query") as b:
            lock = database.WriteLock(stack)
            lock.hold()
            held_from = time.monotonic()
            try:
                for nonce in nonces:
                    await a.send({"chat_id": chat_id, "content": f"content {nonce}", "nonce": nonce})
                # A socket joining while the lock is held: its registration must not be lost
                # with the failing round (READY may wait for the round to end).
                joining = asyncio.ensure_future(
                    P2Client.open(stack, bob, "query", since=b.ready_seq, ready_timeout=20))
                await asyncio.sleep(2.5)
                for nonce in late:  # queued behind the failing round
                    await a.send({"chat_id": chat_id, "content": f"content {nonce}", "nonce": nonce})
                frames = []
                while time.monotonic() - held_from < HOLD:
                    try:
                        frames.append(await a.recv(timeout=max(0.05, HOLD - (time.monotonic() - held_from))))
                    except AssertionError as error:
                        assert "no frame" in str(error), error
            finally:
                lock.release()
            # After the release: read until every nonce has its answer, then a little more.
            deadline = time.monotonic() + 15
            answered = lambda: {f["d"].get("nonce") for f in frames if is_op(f, "ACK") or is_op(f, "ERROR")}
            while not set(nonces + late) <= answered() and time.monotonic() < deadline:
                frames.append(await a.recv(timeout=deadline - time.monotonic()))
            try:
                while True:
                    frames.append(await a.recv(timeout=1.0))
            except AssertionError as error:
                assert "no frame" in str(error), error
            answers: dict[str, list] = {}
            for frame in frames:
                if is_op(frame, "ACK") or is_op(frame, "ERROR"):
                    answers.setdefault(frame["d"].get("nonce"), []).append(frame)
            assert set(answers) == set(nonces + late), answers
            for nonce, got in answers.items():
                assert len(got) == 1, f"{nonce} answered {len(got)} times: {got}"
            errors = {n for n, (f,) in answers.items() if is_op(f, "ERROR")}
            acked = {n: f["d"]["id"] for n, (f,) in answers.items() if is_op(f, "ACK")}
            for nonce in errors:
                assert_keys(answers[nonce][0]["d"], ERROR_KEYS)
                assert answers[nonce][0]["d"]["message"] == BUSY_MESSAGE, answers[nonce]
            # The first send went to a round that met the held lock for the whole busy timeout: it
            # failed (later ones may have waited in the next round and committed after release).
            assert nonces[0] in errors, answers
            echoes = [f for f in frames if is_message(f)]
            assert sorted(e["id"] for e in echoes) == sorted(acked.values()), (echoes, acked)

            # Nothing half: a refused send has no message and no event; an acknowledged one
            # exactly one of each.
            for nonce in nonces + late:
                rows = query(stack, "SELECT id FROM messages WHERE sender_id = ? AND nonce = ?", (alice.id, nonce))
                if nonce in errors:
                    assert rows == [], (nonce, rows)
                else:
                    assert rows == [(acked[nonce],)], (nonce, rows)
                    assert query(stack, "SELECT count(*) FROM events WHERE op = 'MESSAGE' AND message_id = ?",
                                 (acked[nonce],))[0][0] == 1
            orphans = query(stack, "SELECT count(*) FROM events e WHERE e.op = 'MESSAGE' AND e.chat_id = ? AND "
                                   "NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = e.message_id)", (chat_id,))
            assert orphans == [(0,)]

            # The socket is usable: a new send is ACKed, and every refused nonce retried once.
            await a.send({"chat_id": chat_id, "content": "after the lock", "nonce": "busy-after"})
            after = await a.recv_message()
            assert await a.recv_ack("busy-after") == after["id"]
            for nonce in sorted(errors):
                await a.send({"chat_id": chat_id, "content": f"content {nonce}", "nonce": nonce})
                echo = await a.recv_message()
                assert echo["content"] == f"content {nonce}"
                assert await a.recv_ack(nonce) == echo["id"]
            # And once more: stored once, the same id.
            for nonce in sorted(errors)[:2]:
                await a.send({"chat_id": chat_id, "content": f"content {nonce}", "nonce": nonce})
                ack_id = await a.recv_ack(nonce)
                assert query(stack, "SELECT id FROM messages WHERE sender_id = ? AND nonce = ?",
                             (alice.id, nonce)) == [(ack_id,)]
            await a.expect_silence(0.3)

            # Bob's protocol-2 sockets — the one from before and the one that joined during
            # the failing round — saw each stored message once, in order, nothing else.
            history = api.messages(bob.token, chat_id)
            final = query(stack, "SELECT max(seq) FROM events WHERE chat_id = ?", (chat_id,))[0][0]
            joined = await asyncio.wait_for(joining, 20)
            async with joined:
                for client in (b, joined):
                    got = await client.events_through(final)
                    assert [f["d"]["id"] for f in got if f["op"] == "MESSAGE"] == [m["id"] for m in history], client
                    await client.expect_silence(0.3)
            contents = [m["content"] for m in history]
            assert len(contents) == len(set(contents)), contents
            assert sorted(contents) == sorted([f"content {n}" for n in nonces + late] + ["after the lock"])

    run(scenario(), timeout=60)


# --- protocol 1 and 2 side by side ---------------------------------------------------------

def test_one_user_on_protocol_1_and_2_at_once_gets_each_its_own_frames(api, stack, pair):
    """The same message reaches bob's protocol-1 socket as the bare seed object and his
    protocol-2 socket as a MESSAGE event whose d is the full message; a profile change only
    the protocol-2 socket."""
    alice, bob, chat_id = pair

    async def scenario():
        async with await Client.open(stack, bob, "header") as p1, await P2Client.open(stack, bob, "header") as p2:
            message = api.send(alice.token, chat_id, "both protocols")
            bare = await p1.recv_message()
            event = await p2.recv_event()
            assert bare == message
            assert event["op"] == "MESSAGE"
            assert {k: event["d"][k] for k in MESSAGE_KEYS} == bare
            assert (event["d"]["reply_to_id"], event["d"]["edited_at"], event["d"]["reactions"]) == (None, None, [])
            profile = ok_json(api.patch("/users/me", alice.token, json={"bio": "side by side"}))
            user_event = await p2.recv_event()
            assert (user_event["op"], user_event["d"]) == ("USER", profile)
            await p1.expect_silence(0.5)
            # A send on the protocol-2 socket: its ACK there, the bare object on protocol 1.
            await p2.send({"chat_id": chat_id, "content": "from p2", "nonce": "side"})
            got = [await p2.recv(), await p2.recv()]
            ack = next(f for f in got if is_op(f, "ACK"))
            ev = next(f for f in got if not is_op(f, "ACK"))
            p2.check_event(ev)
            assert ack["d"] == {"nonce": "side", "id": ev["d"]["id"]}
            assert await p1.recv_message() == {k: ev["d"][k] for k in MESSAGE_KEYS}
            await p1.expect_silence(0.3)
            await p2.expect_silence(0.2)

    run(scenario())

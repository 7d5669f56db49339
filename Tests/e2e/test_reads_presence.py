"""Issue 14, end to end through nginx: read markers and receipts (`POST /chats/:id/read`, the
WS op READ, the READ event, `GET /chats/:id/receipts`), unread counts (`GET /chats?v=2`),
typing (the WS op TYPING, forwarded to the other members' protocol-2 sockets, throttled, never
stored) and presence (PRESENCE frames to contacts at most once per user per 5 s,
`GET /presence`, `last_seen` stored across a relay restart).

Every socket here is read through `Reader`, which checks each frame it sees (events strictly
in seq order with their shapes, ephemeral frames without a seq and with exact keys) and lets
a test wait for the frame it is about while frames it is not about go by; the "never
arrives" checks read everything for a while and fail on the first frame that matches.

Chats are made over REST only (no announcing socket), so that presence starts from a clean
slate: a user's first PRESENCE goes out at once, the next one at most 5 s after it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

from helpers import Api, assert_error, assert_keys, assert_timestamp, is_int, ok_json
from stream_helpers import assert_chat_v2, assert_event_frame, assert_message_v2, assert_ready_v2, p2_url, query
from ws_helpers import RECV_TIMEOUT, Client, open_ws, relay_pid, run

READ_KEYS = {"chat_id", "user_id", "last_read_id"}
MARK_KEYS = {"chat_id", "last_read_id", "unread_count"}
RECEIPT_KEYS = {"user_id", "last_read_id"}
TYPING_KEYS = {"chat_id", "user_id"}
PRESENCE_KEYS = {"user_id", "online", "last_seen"}
EPHEMERAL = ("TYPING", "PRESENCE")
PRESENCE_WINDOW = 5.0
PRESENCE_WAIT = 7.5  # a deferred PRESENCE goes out when the 5 s window ends
TYPING_WINDOW = 2.0
NEVER_READ = (0, None)  # a marker that never moved


# --- sockets -----------------------------------------------------------------------------------

class Reader:
    """One socket (protocol 1 or 2) and every frame it received, each checked on arrival."""

    def __init__(self, client: Client, v2: bool, ready_seq: int = 0, label: str = ""):
        self.client = client
        self.v2 = v2
        self.ready_seq = ready_seq
        self.last = ready_seq
        self.frames: list = []
        self.label = label or client.label

    @classmethod
    async def p2(cls, stack, user, how: str = "query", since: int | None = None, label: str = "") -> "Reader":
        if how == "query":
            ws = await open_ws(p2_url(stack, token=user.token, v=2 if since is None else None, since=since))
        elif how == "header":
            ws = await open_ws(p2_url(stack, v=2 if since is None else None, since=since),
                               {"Authorization": f"Bearer {user.token}"})
        elif how == "identify":
            ws = await open_ws(p2_url(stack, v=None))
        else:
            raise ValueError(how)
        client = Client(ws, user, label or f"{user.username}/p2-{how}")
        if how == "identify":
            d: dict[str, Any] = {"token": user.token, "v": 2}
            if since is not None:
                d["since"] = since
            await client.send({"op": "IDENTIFY", "d": d})
        seq = assert_ready_v2(await client.recv(), user.id)
        reader = cls(client, True, seq, client.label)
        if since is not None:
            reader.last = since
        return reader

    @classmethod
    async def p1(cls, stack, user, label: str = "") -> "Reader":
        client = await Client.open(stack, user, "header")
        client.label = label or f"{user.username}/p1"
        return cls(client, False, 0, client.label)

    def check(self, frame: Any) -> None:
        assert isinstance(frame, dict), f"{self.label}: not an object: {frame!r:.300}"
        if not self.v2:
            # Protocol 1 never gets the new kinds: bare messages, ACK, CHAT, ERROR, READY only.
            assert "seq" not in frame and frame.get("op") in (None, "ACK", "CHAT", "ERROR", "READY"), (
                f"{self.label}: a protocol-2 frame on a protocol-1 socket: {frame!r:.300}")
            return
        op = frame.get("op")
        if "seq" in frame:
            assert_event_frame(frame)
            assert op not in EPHEMERAL, f"{self.label}: an ephemeral frame with a seq: {frame!r:.300}"
            assert frame["seq"] > self.last, f"{self.label}: seq {frame['seq']} after {self.last}: {frame!r:.300}"
            self.last = frame["seq"]
            if op == "READ":
                assert_keys(frame["d"], READ_KEYS)
                assert all(is_int(frame["d"][k]) for k in READ_KEYS), frame
        else:
            assert op in EPHEMERAL + ("ACK", "ERROR"), f"{self.label}: unexpected frame without seq: {frame!r:.300}"
            assert_keys(frame, {"op", "d"})
            if op == "TYPING":
                assert_keys(frame["d"], TYPING_KEYS)
                assert is_int(frame["d"]["chat_id"]) and is_int(frame["d"]["user_id"]), frame
            elif op == "PRESENCE":
                assert_presence_entry(frame["d"])

    async def until(self, predicate: Callable[[dict], bool], timeout: float = RECV_TIMEOUT, what: str = "") -> dict:
        """Reads until a frame matches; the frames before it are kept in `frames`."""
        deadline = time.monotonic() + timeout
        start = len(self.frames)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.label}: no {what or 'matching frame'} within {timeout}s; "
                                     f"got {self.frames[start:]!r:.1500}")
            try:
                raw = await asyncio.wait_for(self.client.ws.recv(), remaining)
            except asyncio.TimeoutError:
                continue
            frame = json.loads(raw)
            self.check(frame)
            self.frames.append(frame)
            if predicate(frame):
                return frame

    async def never(self, predicate: Callable[[dict], bool], seconds: float, what: str = "",
                    start: int | None = None) -> None:
        """Reads every frame for `seconds`; none of them matches (nor, with `start`, any frame
        received from index `start` on)."""
        for frame in self.frames[len(self.frames) if start is None else start:]:
            assert not predicate(frame), f"{self.label}: got {what or 'a frame it must not get'}: {frame!r:.500}"
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(self.client.ws.recv(), remaining)
            except asyncio.TimeoutError:
                break
            frame = json.loads(raw)
            self.check(frame)
            self.frames.append(frame)
            assert not predicate(frame), f"{self.label}: got {what or 'a frame it must not get'}: {frame!r:.500}"

    def matching(self, predicate: Callable[[dict], bool]) -> list[dict]:
        return [f for f in self.frames if predicate(f)]

    async def send(self, obj: Any) -> None:
        await self.client.send(obj)

    async def close(self) -> None:
        await self.client.close()


def is_read(chat_id: int, user_id: int | None = None, last_read_id: int | None = None):
    def match(frame: dict) -> bool:
        if frame.get("op") != "READ" or "seq" not in frame:
            return False
        d = frame["d"]
        return (d.get("chat_id") == chat_id and (user_id is None or d.get("user_id") == user_id)
                and (last_read_id is None or d.get("last_read_id") == last_read_id))
    return match


def is_typing(chat_id: int | None = None, user_id: int | None = None):
    def match(frame: dict) -> bool:
        return (frame.get("op") == "TYPING" and (chat_id is None or frame["d"].get("chat_id") == chat_id)
                and (user_id is None or frame["d"].get("user_id") == user_id))
    return match


def is_presence(user_id: int | None = None, online: bool | None = None):
    def match(frame: dict) -> bool:
        return (frame.get("op") == "PRESENCE" and (user_id is None or frame["d"].get("user_id") == user_id)
                and (online is None or frame["d"].get("online") is online))
    return match


def is_error(frame: dict) -> bool:
    return frame.get("op") == "ERROR" and "seq" not in frame


def assert_error_frame(frame: dict) -> None:
    assert_keys(frame, {"op", "d"})
    assert_keys(frame["d"], {"message", "nonce"})
    assert isinstance(frame["d"]["message"], str) and frame["d"]["message"].strip(), frame
    assert frame["d"]["nonce"] is None, frame


# --- REST ---------------------------------------------------------------------------------------

def assert_presence_entry(d: Any) -> None:
    assert_keys(d, PRESENCE_KEYS)
    assert is_int(d["user_id"]), d
    assert isinstance(d["online"], bool), d
    if d["last_seen"] is not None:
        assert_timestamp(d["last_seen"])


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def group(api, owner, members, name: str = "reads") -> int:
    chat = ok_json(api.post("/chats", owner.token, json={"name": name, "participants": [m.id for m in members]}))
    return chat["id"]


def direct(api, a, b) -> int:
    return api.initiate(a.token, target_username=b.username)["chat_id"]


def mark_read(api, user, chat_id: int, message_id: int) -> dict:
    body = ok_json(api.post(f"/chats/{chat_id}/read", user.token, json={"message_id": message_id}))
    assert_keys(body, MARK_KEYS)
    assert body["chat_id"] == chat_id and is_int(body["last_read_id"]) and is_int(body["unread_count"]), body
    return body


def chats_v2(api, user) -> list[dict]:
    chats = ok_json(api.get("/chats?v=2", user.token))
    assert isinstance(chats, list)
    for chat in chats:
        assert_chat_v2(chat)
    return chats


def chat_v2(api, user, chat_id: int) -> dict:
    found = [c for c in chats_v2(api, user) if c["id"] == chat_id]
    assert len(found) == 1, f"chat {chat_id} listed {len(found)} times for {user.username}"
    return found[0]


def receipts(api, user, chat_id: int) -> list[dict]:
    body = ok_json(api.get(f"/chats/{chat_id}/receipts", user.token))
    assert isinstance(body, list)
    for entry in body:
        assert_keys(entry, RECEIPT_KEYS)
        assert is_int(entry["user_id"]), entry
    assert [e["user_id"] for e in body] == sorted(e["user_id"] for e in body), f"receipts not sorted: {body}"
    return body


def presence(api, user, ids) -> list[dict]:
    body = ok_json(api.get("/presence?user_ids=" + ",".join(str(i) for i in ids), user.token))
    assert isinstance(body, list)
    for entry in body:
        assert_presence_entry(entry)
    return body


def presence_of(api, viewer, user_id: int) -> dict:
    entries = presence(api, viewer, [user_id])
    assert len(entries) == 1 and entries[0]["user_id"] == user_id, entries
    return entries[0]


def events_since(api, user, since: int) -> list[dict]:
    frames, seq = [], since
    while True:
        page = ok_json(api.get(f"/events?since={seq}&limit=1000", user.token))
        assert_keys(page, {"events", "seq"})
        frames += page["events"]
        if len(page["events"]) < 1000:
            return frames
        seq = page["seq"]


def db_unread(stack, chat_id: int, user_id: int) -> tuple[int, int]:
    """(marker, unread) as the database says: live messages from others after the marker."""
    marker = query(stack, "SELECT last_read_id FROM chat_members WHERE chat_id = ? AND user_id = ?",
                   (chat_id, user_id))[0][0]
    unread = query(stack, "SELECT count(*) FROM messages WHERE chat_id = ? AND id > ? AND sender_id <> ? "
                          "AND deleted_at IS NULL", (chat_id, marker, user_id))[0][0]
    return marker, unread


# --- read markers, receipts and badges ------------------------------------------------------------

def test_receipts_and_badges_across_two_devices_and_three_users(api, stack, new_user):
    alice, bob, carol, dave = new_user("ra"), new_user("rb"), new_user("rc"), new_user("rd")
    chat_id = group(api, alice, [bob, carol], "receipts")
    other_chat = direct(api, alice, bob)
    other_message = api.send(bob.token, other_chat, "elsewhere")["id"]
    dave_chat = direct(api, dave, carol)

    async def scenario():
        a1 = await Reader.p2(stack, alice, "query", label="alice/dev1")
        a2 = await Reader.p2(stack, alice, "identify", label="alice/dev2")
        b = await Reader.p2(stack, bob, "header")
        c = await Reader.p2(stack, carol, "query")
        c1 = await Reader.p1(stack, carol)
        d = await Reader.p2(stack, dave, "query")
        sockets = [a1, a2, b, c]
        try:
            m1 = api.send(bob.token, chat_id, "one")["id"]
            m2 = api.send(bob.token, chat_id, "two")["id"]
            m3 = api.send(carol.token, chat_id, "three")["id"]
            m4 = api.send(bob.token, chat_id, "four")["id"]
            for s in sockets:
                await s.until(lambda f: f.get("op") == "MESSAGE" and f["d"]["id"] == m4, what="MESSAGE four")

            # Badges before any read: others' messages after the marker; own sends move it.
            alice_view = chat_v2(api, alice, chat_id)
            assert (alice_view["unread_count"], alice_view["my_role"]) == (4, "owner"), alice_view
            assert alice_view["last_read_id"] in NEVER_READ, alice_view
            assert alice_view["last_message"]["id"] == m4 and alice_view["last_message"]["content"] == "four"
            assert_message_v2(alice_view["last_message"])
            bob_view = chat_v2(api, bob, chat_id)
            assert (bob_view["last_read_id"], bob_view["unread_count"], bob_view["my_role"]) == (m4, 0, "member")
            carol_view = chat_v2(api, carol, chat_id)
            assert (carol_view["last_read_id"], carol_view["unread_count"]) == (m3, 1), carol_view
            before = receipts(api, carol, chat_id)
            assert [e["user_id"] for e in before] == sorted([alice.id, bob.id, carol.id])
            by_user = {e["user_id"]: e["last_read_id"] for e in before}
            assert by_user[alice.id] in NEVER_READ and (by_user[bob.id], by_user[carol.id]) == (m4, m3), before

            # Alice reads up to m2 on device 1 (REST): every member's protocol-2 socket gets the
            # READ event, her other device included; protocol 1 and non-members get nothing.
            assert mark_read(api, alice, chat_id, m2) == {"chat_id": chat_id, "last_read_id": m2, "unread_count": 2}
            read_frames = [await s.until(is_read(chat_id, alice.id, m2), what="READ m2") for s in sockets]
            assert all(f["d"] == {"chat_id": chat_id, "user_id": alice.id, "last_read_id": m2} for f in read_frames)
            assert len({f["seq"] for f in read_frames}) == 1, "one event, one seq on every socket"
            assert chat_v2(api, alice, chat_id)["unread_count"] == 2
            assert {e["user_id"]: e["last_read_id"] for e in receipts(api, bob, chat_id)} == {
                alice.id: m2, bob.id: m4, carol.id: m3}

            # Only forward: an older id, or the same one, is accepted and changes nothing.
            assert mark_read(api, alice, chat_id, m1) == {"chat_id": chat_id, "last_read_id": m2, "unread_count": 2}
            assert mark_read(api, alice, chat_id, m2) == {"chat_id": chat_id, "last_read_id": m2, "unread_count": 2}
            # A message of another chat, an unknown one, non-members and unknown chats.
            assert_error(api.post(f"/chats/{chat_id}/read", alice.token, json={"message_id": other_message}), 400)
            assert_error(api.post(f"/chats/{chat_id}/read", alice.token, json={"message_id": 10 ** 9}), 400)
            assert_error(api.post(f"/chats/{chat_id}/read", alice.token, json={}), 400)
            assert_error(api.post(f"/chats/{chat_id}/read", alice.token, json={"message_id": "x"}), 400)
            assert_error(api.post(f"/chats/{chat_id}/read", dave.token, json={"message_id": m4}), 403)
            assert_error(api.post(f"/chats/{10 ** 9}/read", alice.token, json={"message_id": m4}), 404)
            assert_error(api.post(f"/chats/{chat_id}/read", json={"message_id": m4}), 401)
            assert_error(api.get(f"/chats/{chat_id}/receipts", dave.token), 403)
            assert_error(api.get(f"/chats/{10 ** 9}/receipts", alice.token), 404)
            assert mark_read(api, alice, chat_id, m3)["last_read_id"] == m3  # a marker that moves again
            for s in sockets:
                await s.until(is_read(chat_id, alice.id, m3), what="READ m3")
            for s in sockets:  # the no-ops of before made no event
                assert len(s.matching(is_read(chat_id, alice.id))) == 2, s.matching(is_read(chat_id))

            # The WS op READ on device 2 (no ACK: the READ event is the answer) clears the badge
            # on device 1 too; carol reads via her socket as well.
            await a2.send({"op": "READ", "d": {"chat_id": chat_id, "message_id": m4}})
            for s in sockets:
                await s.until(is_read(chat_id, alice.id, m4), what="READ m4 (WS)")
            await c.send({"op": "READ", "d": {"chat_id": chat_id, "message_id": m4}})
            for s in sockets:
                await s.until(is_read(chat_id, carol.id, m4), what="carol's READ m4")
            assert chat_v2(api, alice, chat_id)["unread_count"] == 0
            assert chat_v2(api, carol, chat_id)["unread_count"] == 0
            assert receipts(api, alice, chat_id) == sorted(
                [{"user_id": u, "last_read_id": m4} for u in (alice.id, bob.id, carol.id)], key=lambda e: e["user_id"])
            # An older id over WS: nothing; a bad one: ERROR, the socket stays open.
            await a2.send({"op": "READ", "d": {"chat_id": chat_id, "message_id": m1}})
            await a2.send({"op": "READ", "d": {"chat_id": chat_id, "message_id": other_message}})
            assert_error_frame(await a2.until(is_error, what="ERROR for a message of another chat"))
            await d.send({"op": "READ", "d": {"chat_id": chat_id, "message_id": m4}})
            assert_error_frame(await d.until(is_error, what="ERROR for a non-member's READ"))
            await a2.send({"op": "READ", "d": {"chat_id": 10 ** 9, "message_id": m4}})
            assert_error_frame(await a2.until(is_error, what="ERROR for an unknown chat"))
            for s in sockets:
                await s.never(lambda f: f.get("op") == "READ" and f["d"].get("last_read_id") == m1, 0.3)
                assert not s.matching(is_error) or s is a2, s.matching(is_error)
            assert len(a2.matching(is_error)) == 2
            # Nobody outside the chat, and no protocol-1 socket, saw any of it.
            await d.never(lambda f: f.get("op") == "READ" and f["d"].get("chat_id") == chat_id, 0.3)
            await c1.never(lambda f: f.get("op") is not None, 0.2)
            assert [f["content"] for f in c1.frames if f.get("op") is None] == ["one", "two", "three", "four"]

            # The pull stream has the same READ events, in the same frames.
            pulled = [f for f in events_since(api, alice, a1.ready_seq) if f.get("op") == "READ"]
            assert pulled == a1.matching(is_read(chat_id)), (pulled, a1.matching(is_read(chat_id)))
            assert pulled == a2.matching(is_read(chat_id))
            # READ is persistent: a device resuming from before gets the same frames again.
            again = await Reader.p2(stack, alice, "identify", since=a1.ready_seq, label="alice/resumed")
            try:
                for frame in pulled:
                    assert await again.until(lambda f: "seq" in f and f["seq"] == frame["seq"],
                                             what=f"READ seq {frame['seq']}") == frame
            finally:
                await again.close()
            # Carol's (never moved again) marker still reads m4 as she sees the chat.
            assert chat_v2(api, carol, chat_id)["last_read_id"] == m4
        finally:
            for s in sockets + [c1, d]:
                await s.close()

    run(scenario(), timeout=60)
    assert dave_chat  # dave has chats, just not this one


def test_unread_counts_skip_deleted_own_sends_move_marker_and_order(api, stack, new_user):
    alice, bob = new_user("ua"), new_user("ub")
    older = direct(api, alice, bob)
    time.sleep(1.1)  # creation times have second resolution
    newer = group(api, bob, [alice], "newer")
    assert [c["id"] for c in chats_v2(api, alice)][:2] == [newer, older]
    for chat in chats_v2(api, alice):
        assert chat["unread_count"] == 0 and chat["last_message"] is None, chat

    time.sleep(1.1)  # the sends come a second after the newer chat's creation (second resolution)
    sent = [api.send(bob.token, older, f"b{i}")["id"] for i in range(4)]
    view = chat_v2(api, alice, older)
    assert view["unread_count"] == 4 and view["last_message"]["id"] == sent[-1]
    # The older chat has the newest activity now.
    assert [c["id"] for c in chats_v2(api, alice)][:2] == [older, newer]

    # A deleted message is no longer unread, and no longer the last message.
    assert api.request("DELETE", f"/chats/{older}/messages/{sent[1]}", bob.token).status_code == 204
    assert api.request("DELETE", f"/chats/{older}/messages/{sent[3]}", bob.token).status_code == 204
    view = chat_v2(api, alice, older)
    assert view["unread_count"] == 2 and view["last_message"]["id"] == sent[2], view
    assert mark_read(api, alice, older, sent[0]) == {"chat_id": older, "last_read_id": sent[0], "unread_count": 1}

    # Alice's own send moves her marker to it: nothing before it is unread any more.
    mine = api.send(alice.token, older, "mine")["id"]
    view = chat_v2(api, alice, older)
    assert (view["last_read_id"], view["unread_count"]) == (mine, 0), view
    assert {e["user_id"]: e["last_read_id"] for e in receipts(api, alice, older)}[alice.id] == mine
    # Her own messages never count for her, and count for bob.
    bob_view = chat_v2(api, bob, older)
    assert (bob_view["last_read_id"], bob_view["unread_count"]) == (sent[3], 1), bob_view
    # The database agrees.
    assert db_unread(stack, older, alice.id) == (mine, 0)
    assert db_unread(stack, older, bob.id) == (sent[3], 1)


def test_unread_counts_exact_after_200_concurrent_sends_and_reads(api, stack, new_user):
    """bob sends 100 over REST from 4 threads while carol sends 100 over her protocol-2 socket
    with nonces; alice reads over REST as fast as she can, bob reads carol's messages over REST
    and carol bob's over the WS op. Afterwards every marker is the highest id its owner read or
    sent, and every count is the number of live messages from others after it — in
    GET /chats?v=2, the receipts, the database and a final read's answer alike."""
    alice, bob, carol = new_user("ca"), new_user("cb"), new_user("cc")
    chat_id = group(api, alice, [bob, carol], "concurrent")
    per_sender = 100
    lock = threading.Lock()
    sent: dict[int, int] = {}  # message id -> sender id
    reads: dict[int, list[int]] = {alice.id: [], bob.id: [], carol.id: []}
    done = threading.Event()
    problems: list[str] = []

    def latest(sender_id: int | None = None) -> int | None:
        with lock:
            ids = [m for m, s in sent.items() if sender_id is None or s == sender_id]
        return max(ids) if ids else None

    def bob_sender(worker: int) -> None:
        client = Api(stack.base_url)
        for i in range(per_sender // 4):
            response = client.post(f"/chats/{chat_id}/messages", bob.token, json={"content": f"bob {worker}.{i}"})
            if response.status_code != 200:
                problems.append(f"bob send {response.status_code} {response.text[:200]}")
                continue
            with lock:
                sent[response.json()["id"]] = bob.id
            if i % 5 == 4 and (target := latest(carol.id)) is not None:
                answer = client.post(f"/chats/{chat_id}/read", bob.token, json={"message_id": target})
                if answer.status_code != 200:
                    problems.append(f"bob read {answer.status_code} {answer.text[:200]}")
                else:
                    with lock:
                        reads[bob.id].append(target)

    def alice_reader() -> None:
        client = Api(stack.base_url)
        previous = 0
        n = 0
        while not done.is_set():
            target = latest()
            if target is None:
                time.sleep(0.005)
                continue
            n += 1
            if n % 4 == 0:  # now and then an older id: accepted, changes nothing
                with lock:
                    target = min(sent)
            answer = client.post(f"/chats/{chat_id}/read", alice.token, json={"message_id": target})
            if answer.status_code != 200:
                problems.append(f"alice read {answer.status_code} {answer.text[:200]}")
                continue
            body = answer.json()
            reads[alice.id].append(target)
            if body["last_read_id"] < max(previous, target) or body["unread_count"] < 0:
                problems.append(f"alice's marker went from {previous} to {body} after reading {target}")
            previous = body["last_read_id"]

    async def carol_socket() -> None:
        s = await Reader.p2(stack, carol, "query")
        try:
            acks: dict[str, int] = {}
            for burst in range(per_sender // 10):
                for i in range(10):
                    n = burst * 10 + i
                    await s.send({"chat_id": chat_id, "content": f"carol {n}", "nonce": f"c-{n}"})
                if (target := latest(bob.id)) is not None:
                    await s.send({"op": "READ", "d": {"chat_id": chat_id, "message_id": target}})
                    with lock:
                        reads[carol.id].append(target)
                while len(acks) < (burst + 1) * 10:
                    frame = await s.until(lambda f: f.get("op") in ("ACK", "ERROR") and "seq" not in f,
                                          timeout=15, what="ACK")
                    assert frame["op"] == "ACK", frame
                    acks[frame["d"]["nonce"]] = frame["d"]["id"]
                    with lock:
                        sent[frame["d"]["id"]] = carol.id
            assert len(set(acks.values())) == per_sender
        finally:
            await s.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        reader = pool.submit(alice_reader)
        senders = [pool.submit(bob_sender, w) for w in range(4)]
        carol_future = pool.submit(lambda: run(carol_socket(), timeout=60))
        try:
            for future in senders + [carol_future]:
                future.result(timeout=90)
        finally:
            done.set()
            reader.result(timeout=30)
    assert not problems, problems[:10]
    assert len(reads[alice.id]) >= 10 and reads[bob.id] and reads[carol.id], {u: len(r) for u, r in reads.items()}
    assert len(sent) == 2 * per_sender and sum(1 for s in sent.values() if s == bob.id) == per_sender
    history = api.messages(alice.token, chat_id, "?after_id=0&limit=1000")
    assert {m["id"]: m["sender_id"] for m in history} == sent

    def expected(user_id: int) -> tuple[int, int]:
        marker = max([m for m, s in sent.items() if s == user_id] + reads[user_id] + [0])
        return marker, sum(1 for m, s in sent.items() if s != user_id and m > marker)

    # Carol's last READ op was handled by the time her last ACK came, but wait a moment anyway.
    members = {alice.id: alice, bob.id: bob, carol.id: carol}
    def settled():
        got = {e["user_id"]: e["last_read_id"] for e in receipts(api, alice, chat_id)}
        return got if got == {u: expected(u)[0] for u in members} else None
    got = settled() or (time.sleep(1.0) or settled())
    assert got, (f"receipts {receipts(api, alice, chat_id)} != expected markers "
                 f"{ {u: expected(u)[0] for u in members} }")
    for user_id, user in members.items():
        marker, unread = expected(user_id)
        view = chat_v2(api, user, chat_id)
        assert (view["last_read_id"], view["unread_count"]) == (marker, unread), (user.username, view, marker, unread)
        assert view["last_message"]["id"] == max(sent)
        assert db_unread(stack, chat_id, user_id) == (marker, unread), user.username
    # A final read of the newest message: the answer counts nothing (alice never sent).
    newest = max(sent)
    assert mark_read(api, alice, chat_id, newest) == {"chat_id": chat_id, "last_read_id": newest, "unread_count": 0}
    bob_answer = mark_read(api, bob, chat_id, newest)
    assert bob_answer == {"chat_id": chat_id, "last_read_id": newest, "unread_count": 0}
    assert chat_v2(api, carol, chat_id)["unread_count"] == expected(carol.id)[1]


# --- typing -----------------------------------------------------------------------------------------

def test_typing_reaches_only_the_other_members_and_never_replays(api, stack, new_user):
    alice, bob, carol, dave = new_user("ta"), new_user("tb"), new_user("tc"), new_user("td")
    chat_id = group(api, alice, [bob, carol], "typing")
    dave_chat = direct(api, dave, alice)  # dave shares a chat with alice, not this one

    async def scenario():
        # bob's first socket goes away before anyone types: he resumes later with since.
        gone = await Reader.p2(stack, bob, "query", label="bob/gone")
        resume_from = gone.ready_seq
        await gone.close()
        a1 = await Reader.p2(stack, alice, "query", label="alice/typer")
        a2 = await Reader.p2(stack, alice, "header", label="alice/other")
        b = await Reader.p2(stack, bob, "identify")
        b1 = await Reader.p1(stack, bob)
        c = await Reader.p2(stack, carol, "query")
        d = await Reader.p2(stack, dave, "query")
        try:
            await a1.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            want = {"op": "TYPING", "d": {"chat_id": chat_id, "user_id": alice.id}}
            assert await b.until(is_typing(chat_id), what="TYPING") == want
            assert await c.until(is_typing(chat_id), what="TYPING") == want
            # Not the typer's own sockets, not protocol 1, not a non-member; no answer to the typer.
            for s in (a1, a2, d):
                await s.never(is_typing(), 0.6, "a TYPING frame", start=0)
            await b1.never(lambda f: f.get("op") is not None, 0.1)
            assert not a1.matching(is_error)
            # A non-member typing, or typing into an unknown chat: ERROR, nothing forwarded.
            await d.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            assert_error_frame(await d.until(is_error, what="ERROR for a non-member's TYPING"))
            await d.send({"op": "TYPING", "d": {"chat_id": 10 ** 9}})
            assert_error_frame(await d.until(is_error, what="ERROR for an unknown chat"))
            # carol types too: alice's two sockets and bob get it.
            await c.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            for s in (a1, a2, b):
                await s.until(is_typing(chat_id, carol.id), what="carol's TYPING")
            for s in (a1, a2, b, c):
                await s.never(is_typing(chat_id, dave.id), 0.5, "dave's TYPING")
            await c.never(is_typing(chat_id, carol.id), 0.1, "her own TYPING")
            # Something persistent after the typing, so that the resume has events to replay.
            message = api.send(alice.token, chat_id, "after typing")
            await b.until(lambda f: f.get("op") == "MESSAGE" and f["d"]["id"] == message["id"])

            # Resume with since: the MESSAGE is replayed, the TYPING frames are not.
            back = await Reader.p2(stack, bob, "query", since=resume_from, label="bob/resumed")
            try:
                await back.until(lambda f: f.get("op") == "MESSAGE" and f["d"]["id"] == message["id"],
                                 what="the replayed MESSAGE")
                await back.never(is_typing(), 0.8, "a replayed TYPING")
            finally:
                await back.close()
            await b1.never(lambda f: f.get("op") is not None, 0.1)
        finally:
            for s in (a1, a2, b, b1, c, d):
                await s.close()
        return resume_from

    resume_from = run(scenario(), timeout=40)
    # Never stored: neither in the pull stream nor in the events table.
    for user in (bob, alice):
        ops = {f.get("op") for f in events_since(api, user, resume_from)}
        assert not ops & {"TYPING", "PRESENCE"}, ops
    assert query(stack, "SELECT count(*) FROM events WHERE op IN ('TYPING', 'PRESENCE')")[0][0] == 0
    assert dave_chat


def test_typing_is_throttled_per_user_and_chat(api, stack, new_user):
    alice, bob, carol = new_user("tta"), new_user("ttb"), new_user("ttc")
    chat_id = group(api, alice, [bob, carol], "throttle")
    second_chat = direct(api, alice, bob)

    async def scenario():
        a = await Reader.p2(stack, alice, "query")
        a2 = await Reader.p2(stack, alice, "identify", label="alice/other device")
        b = await Reader.p2(stack, bob, "query")
        c = await Reader.p2(stack, carol, "query")
        try:
            started = time.monotonic()
            for _ in range(5):  # 5 in one second: one is forwarded
                await a.send({"op": "TYPING", "d": {"chat_id": chat_id}})
                await asyncio.sleep(0.2)
            first = await b.until(is_typing(chat_id, alice.id), what="the first TYPING")
            assert first == {"op": "TYPING", "d": {"chat_id": chat_id, "user_id": alice.id}}
            assert await c.until(is_typing(chat_id, alice.id), what="the first TYPING") == first
            # The window is the user's, not the socket's: her other device is dropped too.
            await a2.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            # Another chat of alice's and another user in the same chat have their own windows.
            await a.send({"op": "TYPING", "d": {"chat_id": second_chat}})
            await b.until(is_typing(second_chat, alice.id), what="TYPING in the second chat")
            await c.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            await b.until(is_typing(chat_id, carol.id), what="carol's TYPING")
            # Nothing more of alice in this chat until 2 s after the forwarded one.
            await b.never(is_typing(chat_id, alice.id), TYPING_WINDOW + 0.1 - (time.monotonic() - started) - 0.1,
                          "a second TYPING inside 2 s")
            assert len(b.matching(is_typing(chat_id, alice.id))) == 1
            assert len(c.matching(is_typing(chat_id, alice.id))) == 1
            await asyncio.sleep(max(0.0, started + TYPING_WINDOW + 0.3 - time.monotonic()))
            await a.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            await b.until(lambda f: is_typing(chat_id, alice.id)(f) and f is not first
                          and len(b.matching(is_typing(chat_id, alice.id))) == 2, what="TYPING after 2 s")
            await c.until(lambda f: is_typing(chat_id, alice.id)(f)
                          and len(c.matching(is_typing(chat_id, alice.id))) == 2, what="TYPING after 2 s")
            await b.never(is_typing(chat_id, alice.id), 0.4, "a third TYPING")
            assert len(b.matching(is_typing(chat_id, alice.id))) == 2
            # Dropped silently: the typer got no ERROR.
            await a.never(is_error, 0.1, "an ERROR for throttled TYPING", start=0)
            await a2.never(is_error, 0.1, "an ERROR for throttled TYPING", start=0)
            # Malformed ops are refused with ERROR (and forward nothing).
            for bad in ({"op": "TYPING", "d": {}}, {"op": "TYPING", "d": {"chat_id": "x"}},
                        {"op": "READ", "d": {"chat_id": chat_id}}, {"op": "READ", "d": {"message_id": 1}}):
                await a2.send(bad)
                assert_error_frame(await a2.until(is_error, what=f"ERROR for {bad}"))
            await b.never(is_typing(), 0.3, "TYPING from a malformed op")
        finally:
            for s in (a, a2, b, c):
                await s.close()

    run(scenario(), timeout=30)


# --- presence ---------------------------------------------------------------------------------------

def test_presence_online_then_offline_when_the_last_of_two_sockets_closes(api, stack, new_user):
    alice, bob = new_user("pa"), new_user("pb")
    chat_id = direct(api, alice, bob)
    assert presence_of(api, bob, alice.id) == {"user_id": alice.id, "online": False, "last_seen": None}

    async def scenario():
        b = await Reader.p2(stack, bob, "query")
        b1 = await Reader.p1(stack, bob)
        try:
            before_online = utc_now().replace(microsecond=0)
            a1 = await Reader.p2(stack, alice, "query", label="alice/1")
            online = await b.until(is_presence(alice.id), timeout=3, what="alice online")
            online_at = time.monotonic()
            assert online["d"]["online"] is True and online["d"]["last_seen"] is not None, online
            seen_online = parse_time(online["d"]["last_seen"])
            assert before_online <= seen_online <= utc_now(), online
            a2 = await Reader.p1(stack, alice, label="alice/2 (protocol 1)")
            assert presence_of(api, bob, alice.id) == online["d"]
            assert presence_of(api, alice, alice.id) == online["d"]  # yourself

            # Not to herself: her first socket hears nothing about her as the second one opens.
            await a1.never(is_presence(alice.id), 0.3, "PRESENCE about herself", start=0)
            # One socket of two closes: still online, no frame.
            await a1.close()
            await b.never(is_presence(alice.id), 1.0, "a PRESENCE while a socket is still open")
            assert presence_of(api, bob, alice.id)["online"] is True
            # The last one closes: offline, last_seen when it closed — the frame waits for the
            # end of the 5 s window after the online one.
            closed_at = utc_now().replace(microsecond=0)
            await a2.close()
            offline = await b.until(is_presence(alice.id), timeout=PRESENCE_WAIT, what="alice offline")
            gap = time.monotonic() - online_at
            assert gap >= PRESENCE_WINDOW - 0.5, f"two PRESENCE frames about alice {gap:.2f}s apart"
            assert offline["d"]["online"] is False and offline["d"]["last_seen"] is not None, offline
            last_seen = parse_time(offline["d"]["last_seen"])
            assert closed_at <= last_seen <= utc_now() and last_seen >= seen_online, (offline, closed_at)
            assert presence_of(api, bob, alice.id) == offline["d"]
            # Exactly one frame per change; none to protocol 1, none about bob himself.
            await b.never(is_presence(alice.id, True), 0.3)
            assert len(b.matching(is_presence(alice.id))) == 2
            assert not b.matching(is_presence(bob.id))
            await b1.never(lambda f: f.get("op") is not None, 0.1)
        finally:
            await b.close()
            await b1.close()

    run(scenario(), timeout=30)
    assert query(stack, "SELECT online FROM presence WHERE user_id = ?", (alice.id,)) == [(0,)]
    assert chat_id


def test_presence_last_seen_and_offline_survive_a_relay_restart(api, stack, new_user):
    alice, bob, carol = new_user("sa"), new_user("sb"), new_user("sc")
    direct(api, alice, bob)
    direct(api, carol, bob)

    async def scenario():
        a = await Reader.p2(stack, alice, "query")
        await a.close()
        offline = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            entry = presence_of(api, bob, alice.id)
            if entry["online"] is False and entry["last_seen"] is not None:
                offline = entry
                break
            await asyncio.sleep(0.1)
        assert offline, f"alice not recorded offline with a last_seen: {presence_of(api, bob, alice.id)}"

        c = await Reader.p2(stack, carol, "query")
        deadline = time.monotonic() + 5
        while not (carol_online := presence_of(api, bob, carol.id))["online"]:
            assert time.monotonic() < deadline, carol_online
            await asyncio.sleep(0.1)
        assert carol_online["last_seen"] is not None
        await asyncio.sleep(1.1)  # second resolution: the restart's time differs

        old = relay_pid(stack)
        killed_at = utc_now().replace(microsecond=0)
        os.kill(old, signal.SIGKILL)
        await c.close()
        # Until the relay is back, bob's socket attempts fail; then one is accepted.
        deadline = time.monotonic() + 15
        b = None
        while b is None:
            try:
                b = await Reader.p2(stack, bob, "query")
            except Exception as error:  # refused, reset, 502 from nginx, closed before READY
                assert time.monotonic() < deadline, f"the relay was not back within 15 s: {error!r}"
                await asyncio.sleep(0.1)
        try:
            assert relay_pid(stack) != old
            # alice's stored offline and last_seen are unchanged; carol, online when the relay
            # died, is offline now, last seen no earlier than when she was online.
            assert presence_of(api, bob, alice.id) == offline
            after = presence_of(api, bob, carol.id)
            assert after["online"] is False, after
            assert parse_time(carol_online["last_seen"]) <= parse_time(after["last_seen"]) <= utc_now(), after
            assert parse_time(after["last_seen"]) >= killed_at, (after, killed_at)
            # The restarted relay records presence again: bob is online.
            assert presence_of(api, carol, bob.id)["online"] is True
        finally:
            await b.close()

    run(scenario(), timeout=40)


def test_no_presence_of_a_stranger_leaks(api, stack, new_user):
    alice, bob, eve, never_seen = new_user("la"), new_user("lb"), new_user("le"), new_user("ln")
    direct(api, alice, bob)
    direct(api, never_seen, alice)

    async def scenario():
        a = await Reader.p2(stack, alice, "query")
        try:
            e = await Reader.p2(stack, eve, "query")
            e1 = await Reader.p1(stack, eve)
            bob_socket = await Reader.p2(stack, bob, "query")
            # bob's first PRESENCE goes out at once; eve's never reaches alice.
            await a.until(is_presence(bob.id, True), timeout=3, what="bob online")
            await e.never(is_presence(), 0.3, "PRESENCE to a user with no contacts", start=0)
            await e.close()
            await e1.close()
            await a.never(is_presence(eve.id), 1.5, "PRESENCE of a stranger", start=0)
            await bob_socket.close()
        finally:
            await a.close()

    run(scenario(), timeout=30)
    ids = [alice.id, bob.id, eve.id, never_seen.id, 10 ** 9]
    entries = presence(api, alice, ids)
    assert [x["user_id"] for x in entries] == [alice.id, bob.id, never_seen.id], entries
    assert entries[2] == {"user_id": never_seen.id, "online": False, "last_seen": None}
    assert entries[1]["last_seen"] is not None
    # Eve sees only herself; she shares no chat with anyone.
    assert [x["user_id"] for x in presence(api, eve, ids)] == [eve.id]
    assert presence(api, eve, [alice.id, bob.id]) == []
    # Duplicates are answered once; exactly 100 ids are fine.
    assert [x["user_id"] for x in presence(api, alice, [bob.id, bob.id])] == [bob.id]
    assert [x["user_id"] for x in presence(api, alice, [bob.id] + list(range(10 ** 8, 10 ** 8 + 99)))] == [bob.id]
    # More than 100, an empty or non-numeric list, or none at all: 400; no token: 401.
    too_many = ",".join(str(i) for i in range(10 ** 8, 10 ** 8 + 101))
    for raw in (too_many, "", "abc", "1,x", "1,,2", "-1", "1.5"):
        assert_error(api.get(f"/presence?user_ids={raw}", alice.token), 400)
    assert_error(api.get("/presence", alice.token), 400)
    assert_error(api.get(f"/presence?user_ids={bob.id}"), 401)


def test_presence_flapping_inside_the_window_sends_only_what_still_differs(api, stack, new_user):
    """alice comes online (one frame at once), then flaps off and on three times within a
    second, ending online: when the 5 s window ends her state is what was last sent, so nothing
    goes out. Her closing later (the window long over) goes out at once."""
    alice, bob = new_user("fa"), new_user("fb")
    group(api, bob, [alice], "flap")

    async def scenario():
        b = await Reader.p2(stack, bob, "query")
        a = None
        try:
            a = await Reader.p2(stack, alice, "query")
            await b.until(is_presence(alice.id, True), timeout=3, what="alice online")
            online_at = time.monotonic()
            for _ in range(3):
                await a.close()
                await asyncio.sleep(0.1)
                a = await Reader.p2(stack, alice, "query")
                await asyncio.sleep(0.1)
            await b.never(is_presence(alice.id), max(0.5, online_at + PRESENCE_WINDOW + 1.5 - time.monotonic()),
                          "PRESENCE for a flap that ended where it began")
            assert presence_of(api, bob, alice.id)["online"] is True
            await a.close()
            a = None
            offline = await b.until(is_presence(alice.id), timeout=2, what="alice offline at once")
            assert offline["d"]["online"] is False
            assert presence_of(api, bob, alice.id) == offline["d"]
            assert len(b.matching(is_presence(alice.id))) == 2
        finally:
            if a is not None:
                await a.close()
            await b.close()

    run(scenario(), timeout=30)


def test_a_removed_member_gets_no_typing_no_presence_no_receipts(api, stack, new_user):
    """Membership is checked as it is now: once carol is removed from the group (her only chat
    with alice and bob), she neither gets nor sends TYPING there, hears no PRESENCE of them,
    cannot read or see the receipts, and GET /presence leaves them out for her."""
    alice, bob, carol = new_user("xa"), new_user("xb"), new_user("xc")
    chat_id = group(api, alice, [bob, carol], "removal")
    message = api.send(alice.token, chat_id, "before")["id"]

    async def scenario():
        c = await Reader.p2(stack, carol, "query")
        b = await Reader.p2(stack, bob, "query")
        a = None
        try:
            assert api.request("DELETE", f"/chats/{chat_id}/members/{carol.id}", alice.token).status_code == 204
            await c.until(lambda f: f.get("op") == "CHAT_REMOVED" and f["d"].get("chat_id") == chat_id,
                          what="CHAT_REMOVED")
            removed_at = len(c.frames)  # what came before was from her time as a member
            assert [x["user_id"] for x in presence(api, carol, [alice.id, bob.id, carol.id])] == [carol.id]
            a = await Reader.p2(stack, alice, "query")
            await b.until(is_presence(alice.id, True), timeout=3, what="alice online (bob)")
            await a.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            await b.until(is_typing(chat_id, alice.id), what="alice's TYPING (bob)")
            await c.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            assert_error_frame(await c.until(is_error, what="ERROR for a removed member's TYPING"))
            await c.send({"op": "READ", "d": {"chat_id": chat_id, "message_id": message}})
            assert_error_frame(await c.until(is_error, what="ERROR for a removed member's READ"))
            mark_read(api, bob, chat_id, message)
            await a.until(is_read(chat_id, bob.id, message), what="bob's READ (alice)")
            await c.never(lambda f: f.get("op") in ("TYPING", "PRESENCE", "READ"), 0.8,
                          "a frame of a chat she left", start=removed_at)
            await b.never(is_typing(chat_id, carol.id), 0.1, start=0)
            assert_error(api.post(f"/chats/{chat_id}/read", carol.token, json={"message_id": message}), 403)
            assert_error(api.get(f"/chats/{chat_id}/receipts", carol.token), 403)
            assert carol.id not in {e["user_id"] for e in receipts(api, alice, chat_id)}
        finally:
            for s in (a, b, c):
                if s is not None:
                    await s.close()

    run(scenario(), timeout=30)

"""Protocol-2 helpers for the end-to-end tests of message changes (edits, deletions, replies,
reactions): sockets on `/ws?v=2` that check READY and every event frame, full-shape
assertions, a strict protocol-1 decoder, read-only SQLite look-ups, and group set-up.

Additive only: nothing here changes helpers.py or ws_helpers.py."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from typing import Any, Callable, Iterable

import database
from helpers import (
    CHAT_KEYS,
    FILE_KEYS,
    HISTORY_KEYS,
    MESSAGE_KEYS,
    assert_keys,
    assert_timestamp,
    is_int,
    ok_json,
)
from ws_helpers import RECV_TIMEOUT, Client, is_op, open_ws

FULL_MESSAGE_KEYS = MESSAGE_KEYS | {"reply_to_id", "edited_at", "reactions"}
REACTION_KEYS = {"emoji", "count", "user_ids"}
EVENT_KEYS = {"op", "seq", "d"}
P2_READY_KEYS = {"user_id", "seq"}
DELETED_KEYS = {"chat_id", "message_id"}
REACTION_EVENT_KEYS = {"chat_id", "message_id", "user_id", "emoji", "added"}
EPHEMERAL_OPS = ("PRESENCE", "TYPING")
MESSAGE_OPS = ("MESSAGE", "MESSAGE_EDITED", "MESSAGE_DELETED", "REACTION")


# --- shapes ----------------------------------------------------------------------------------

def assert_full_message(obj: Any) -> None:
    """A protocol-2 message: the seed fields plus reply_to_id, edited_at, reactions."""
    assert_keys(obj, FULL_MESSAGE_KEYS)
    for key in ("id", "chat_id", "sender_id"):
        assert is_int(obj[key]) and obj[key] > 0, obj
    assert obj["content"] is None or isinstance(obj["content"], str), obj
    assert_timestamp(obj["timestamp"])
    assert isinstance(obj["files"], list), obj
    for item in obj["files"]:
        assert_keys(item, FILE_KEYS)
    assert obj["reply_to_id"] is None or (is_int(obj["reply_to_id"]) and obj["reply_to_id"] > 0), obj
    if obj["edited_at"] is not None:
        assert_timestamp(obj["edited_at"])
    assert isinstance(obj["reactions"], list), obj
    for reaction in obj["reactions"]:
        assert_keys(reaction, REACTION_KEYS)
        assert isinstance(reaction["emoji"], str) and reaction["emoji"], reaction
        assert is_int(reaction["count"]) and reaction["count"] >= 1, reaction
        assert isinstance(reaction["user_ids"], list) and all(is_int(u) for u in reaction["user_ids"]), reaction
        assert len(reaction["user_ids"]) == min(20, reaction["count"]), reaction
        assert len(set(reaction["user_ids"])) == len(reaction["user_ids"]), reaction


def assert_event_frame(frame: Any) -> None:
    """{"op", "seq", "d"} with the d of its op checked."""
    assert isinstance(frame, dict) and "op" in frame, f"not an event frame: {frame!r:.500}"
    assert_keys(frame, EVENT_KEYS)
    assert is_int(frame["seq"]) and frame["seq"] > 0, frame
    op, d = frame["op"], frame["d"]
    if op in ("MESSAGE", "MESSAGE_EDITED"):
        assert_full_message(d)
        if op == "MESSAGE_EDITED":
            assert d["edited_at"] is not None, frame
    elif op == "MESSAGE_DELETED":
        assert_keys(d, DELETED_KEYS)
        assert is_int(d["chat_id"]) and is_int(d["message_id"]), frame
    elif op == "REACTION":
        assert_keys(d, REACTION_EVENT_KEYS)
        assert is_int(d["chat_id"]) and is_int(d["message_id"]) and is_int(d["user_id"]), frame
        assert isinstance(d["emoji"], str) and isinstance(d["added"], bool), frame


def message_id_of(frame: dict) -> int | None:
    """The message an event is about (None for events about something else)."""
    op, d = frame.get("op"), frame.get("d") or {}
    if op in ("MESSAGE", "MESSAGE_EDITED"):
        return d.get("id")
    if op in ("MESSAGE_DELETED", "REACTION"):
        return d.get("message_id")
    return None


def chat_id_of(frame: dict) -> int | None:
    d = frame.get("d") or {}
    if frame.get("op") in MESSAGE_OPS:
        return d.get("chat_id")
    if frame.get("op") == "CHAT":
        return d.get("id")
    return d.get("chat_id")


def quote_emoji(emoji: str) -> str:
    return urllib.parse.quote(emoji, safe="")


def reaction_path(chat_id: int, message_id: int, emoji: str, raw: bool = False) -> str:
    part = emoji if raw else quote_emoji(emoji)
    return f"/chats/{chat_id}/messages/{message_id}/reactions/{part}"


# --- a strict protocol-1 decoder -------------------------------------------------------------

def strict_p1_frame(frame: Any) -> str:
    """What the strict desktop client accepts on a protocol-1 socket, exact key sets: a bare
    seed message, ACK, CHAT (seed chat), ERROR, READY {user_id}. Returns its kind."""
    assert isinstance(frame, dict), f"protocol 1: not an object: {frame!r:.300}"
    if "op" not in frame:
        assert_keys(frame, MESSAGE_KEYS)
        for item in frame["files"]:
            assert_keys(item, FILE_KEYS)
        return "message"
    assert_keys(frame, {"op", "d"})
    op, d = frame["op"], frame["d"]
    if op == "ACK":
        assert_keys(d, {"nonce", "id"})
    elif op == "CHAT":
        assert_keys(d, CHAT_KEYS)
    elif op == "ERROR":
        assert_keys(d, {"message", "nonce"})
    elif op == "READY":
        assert_keys(d, {"user_id"})
    else:
        raise AssertionError(f"protocol 1 socket got a frame of op {op!r}: {frame!r:.500}")
    return op


def strict_seed_history(messages: list) -> None:
    for message in messages:
        assert_keys(message, MESSAGE_KEYS)
        for item in message["files"]:
            assert_keys(item, FILE_KEYS)


def strict_legacy_history(entries: list) -> None:
    for entry in entries:
        assert_keys(entry, HISTORY_KEYS)


# --- protocol-2 sockets ----------------------------------------------------------------------

def p2_url(stack, query: str = "v=2") -> str:
    return f"ws://127.0.0.1:{stack.port}/ws?{query}"


class P2Client(Client):
    """A protocol-2 socket: READY {user_id, seq} first, then events in strictly increasing
    seq order; every event received is kept in `events`."""

    ready_seq: int = 0
    last_seq: int = 0

    @classmethod
    async def open_p2(cls, stack, user, how: str = "query", since: int | None = None,
                      label: str = "") -> "P2Client":
        """how: "query" (?v=2&token=), "header" (Bearer with ?v=2) or "identify" (IDENTIFY with
        "v": 2). With `since`, the socket resumes (in the query, or in IDENTIFY)."""
        if how == "query":
            query = f"v=2&token={user.token}" + (f"&since={since}" if since is not None else "")
            ws = await open_ws(p2_url(stack, query))
        elif how == "header":
            query = "v=2" + (f"&since={since}" if since is not None else "")
            ws = await open_ws(p2_url(stack, query), {"Authorization": f"Bearer {user.token}"})
        elif how == "identify":
            ws = await open_ws(f"ws://127.0.0.1:{stack.port}/ws")
        else:
            raise ValueError(how)
        client = cls(ws, user, label or f"{user.username}/{how}")
        client.events = []
        client.ephemeral = []
        if how == "identify":
            d: dict[str, Any] = {"token": user.token, "v": 2}
            if since is not None:
                d["since"] = since
            await client.send({"op": "IDENTIFY", "d": d})
        ready = await Client.recv(client)
        assert is_op(ready, "READY"), f"{client.label}: expected READY first, got {ready!r:.300}"
        assert_keys(ready, {"op", "d"})
        assert_keys(ready["d"], P2_READY_KEYS)
        assert ready["d"]["user_id"] == user.id, ready
        assert is_int(ready["d"]["seq"]) and ready["d"]["seq"] >= 0, ready
        client.ready_seq = ready["d"]["seq"]
        client.last_seq = since if since is not None else client.ready_seq
        return client

    async def recv(self, timeout: float = RECV_TIMEOUT) -> Any:
        """The next frame that is not ephemeral (PRESENCE and TYPING carry no seq, are never
        replayed and are no concern of these tests: they are kept in `ephemeral`)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await super().recv(max(0.001, deadline - time.monotonic()))
            if isinstance(frame, dict) and frame.get("op") in EPHEMERAL_OPS and "seq" not in frame:
                self.ephemeral.append(frame)
                continue
            break
        if isinstance(frame, dict) and "seq" in frame:
            assert_event_frame(frame)
            assert frame["seq"] > self.last_seq, (
                f"{self.label}: seq {frame['seq']} after {self.last_seq} (not strictly increasing): {frame!r:.300}")
            self.last_seq = frame["seq"]
            self.events.append(frame)
        return frame

    async def recv_event(self, op: str | None = None, timeout: float = RECV_TIMEOUT) -> dict:
        """The next frame, which must be an event (of this op)."""
        frame = await self.recv(timeout)
        assert isinstance(frame, dict) and "seq" in frame, f"{self.label}: expected an event, got {frame!r:.500}"
        if op is not None:
            assert frame["op"] == op, f"{self.label}: expected {op}, got {frame!r:.500}"
        return frame

    async def expect_silence(self, seconds: float = 0.5) -> None:
        """No event or other non-ephemeral frame within `seconds`."""
        frames = await self.drain(seconds)
        assert not frames, f"{self.label}: expected no frame, got {frames!r:.500}"

    async def recv_events(self, count: int, timeout: float = RECV_TIMEOUT) -> list[dict]:
        return [await self.recv_event(timeout=timeout) for _ in range(count)]

    async def drain(self, quiet: float = 0.5) -> list:
        """Every non-ephemeral frame until `quiet` seconds pass with none."""
        frames = []
        deadline = time.monotonic() + quiet
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return frames
            try:
                raw = await asyncio.wait_for(self.ws.recv(), remaining)
            except asyncio.TimeoutError:
                return frames
            frame = json.loads(raw)
            if isinstance(frame, dict) and frame.get("op") in EPHEMERAL_OPS and "seq" not in frame:
                self.ephemeral.append(frame)
                continue
            deadline = time.monotonic() + quiet
            if isinstance(frame, dict) and "seq" in frame:
                assert_event_frame(frame)
                assert frame["seq"] > self.last_seq, (self.label, frame, self.last_seq)
                self.last_seq = frame["seq"]
                self.events.append(frame)
            frames.append(frame)


# --- the database (read-only) ----------------------------------------------------------------

def db_rows(stack, sql: str, params: Iterable = ()) -> list[tuple]:
    return database.rows(stack, sql, params)


def db_value(stack, sql: str, params: tuple = ()):
    rows = db_rows(stack, sql, params)
    return rows[0][0] if rows else None


def head_seq(stack) -> int:
    return db_value(stack, "SELECT coalesce(max(seq), 0) FROM events")


def visible_seqs(stack, user_id: int, since: int, skip_deleted: bool = True) -> list[int]:
    """The seqs after `since` the user may see, by the audience rule; without the MESSAGE and
    MESSAGE_EDITED events of messages deleted since (a replay leaves them out)."""
    sql = """
        SELECT e.seq FROM events e
        WHERE e.seq > ?
          AND (
            (e.audience = 'chat' AND EXISTS (
                SELECT 1 FROM chat_members m
                WHERE m.chat_id = e.chat_id AND m.user_id = ? AND m.joined_seq <= e.seq))
            OR (e.audience = 'user' AND e.user_id = ?)
            OR (e.audience = 'contacts' AND (e.user_id = ? OR EXISTS (
                SELECT 1 FROM chat_members a JOIN chat_members b ON a.chat_id = b.chat_id
                WHERE a.user_id = ? AND b.user_id = e.user_id)))
          )
    """
    if skip_deleted:
        sql += """
          AND NOT (e.op IN ('MESSAGE', 'MESSAGE_EDITED') AND e.message_id IS NOT NULL AND EXISTS (
                SELECT 1 FROM messages x WHERE x.id = e.message_id AND x.deleted_at IS NOT NULL))
        """
    sql += " ORDER BY e.seq"
    return [row[0] for row in db_rows(stack, sql, (since, user_id, user_id, user_id, user_id))]


def message_events(stack, message_id: int) -> list[tuple[int, str]]:
    return db_rows(stack, "SELECT seq, op FROM events WHERE message_id = ? ORDER BY seq", (message_id,))


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --- REST ------------------------------------------------------------------------------------

def create_group(api, owner, members: list, name: str = "group") -> int:
    chat = ok_json(api.post("/chats", owner.token, json={"name": name, "participants": [m.id for m in members]}))
    return chat["id"]


def full_history(api, token: str, chat_id: int, query: str = "") -> list[dict]:
    sep = "&" if query else ""
    page = ok_json(api.get(f"/chats/{chat_id}/messages?v=2{sep}{query}", token))
    assert_keys(page, {"chat_id", "messages"})
    for message in page["messages"]:
        assert_full_message(message)
    return page["messages"]


def send_full(api, token: str, chat_id: int, content: str | None, **extra) -> dict:
    body: dict[str, Any] = {"content": content} if content is not None else {}
    body.update(extra)
    message = ok_json(api.post(f"/chats/{chat_id}/messages?v=2", token, json=body))
    assert_full_message(message)
    return message


def all_events(api, token: str, since: int, limit: int = 1000) -> tuple[list[dict], int]:
    """GET /events from `since` to the head, page by page; returns (frames, final seq)."""
    frames: list[dict] = []
    while True:
        page = ok_json(api.get(f"/events?since={since}&limit={limit}", token))
        assert_keys(page, {"events", "seq"})
        for frame in page["events"]:
            assert_event_frame(frame)
        frames += page["events"]
        since = page["seq"]
        if len(page["events"]) < limit:
            return frames, since

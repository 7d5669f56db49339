"""Helpers for the event-stream tests of issue 10 (protocol 2, resume, RESYNC): full shapes,
protocol-2 sockets (READY with seq, event frames, RESYNC), and views of the event stream in
the database — the set of events a user may see, computed independently of the apps.

Visibility, as the schema (migrations/sqlite/002_events.sql) defines it:
  audience 'chat'     -> the user is in chat_members of chat_id with joined_seq <= seq;
  audience 'user'     -> user_id is the user;
  audience 'contacts' -> user_id is the user, or the user shares a chat with user_id.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Iterable

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

import database
from helpers import (
    CHAT_KEYS,
    FILE_KEYS,
    MESSAGE_KEYS,
    USER_KEYS,
    assert_keys,
    assert_timestamp,
    is_int,
)
from ws_helpers import RECV_TIMEOUT, Client, is_op, open_ws

MESSAGE_V2_KEYS = MESSAGE_KEYS | {"reply_to_id", "edited_at", "reactions"}
CHAT_V2_KEYS = CHAT_KEYS | {"last_message", "unread_count", "last_read_id", "my_role"}
REACTION_KEYS = {"emoji", "count", "user_ids"}
SEED_UPLOAD_KEYS = {"url", "filename", "mime_type", "size_bytes"}
READY_V2_KEYS = {"user_id", "seq"}
EVENT_FRAME_KEYS = {"op", "seq", "d"}
CONTROL_OPS = {"READY", "RESYNC", "ACK", "ERROR"}
# Ephemeral protocol-2 frames (no seq, never replayed) that later issues add: the event-stream
# tests set them aside wherever they arrive.
EPHEMERAL_OPS = {"TYPING", "PRESENCE"}


def is_ephemeral(frame: Any) -> bool:
    return isinstance(frame, dict) and frame.get("op") in EPHEMERAL_OPS and "seq" not in frame

VISIBLE_SQL = """
SELECT e.seq, e.op, e.audience, e.chat_id, e.user_id, e.message_id
FROM events e
WHERE e.seq > :after AND (
    (e.audience = 'chat' AND EXISTS (
        SELECT 1 FROM chat_members m
        WHERE m.chat_id = e.chat_id AND m.user_id = :user AND m.joined_seq <= e.seq))
 OR (e.audience = 'user' AND e.user_id = :user)
 OR (e.audience = 'contacts' AND (e.user_id = :user OR EXISTS (
        SELECT 1 FROM chat_members a JOIN chat_members b ON a.chat_id = b.chat_id
        WHERE a.user_id = :user AND b.user_id = e.user_id)))
)
ORDER BY e.seq
"""


# --- shapes ------------------------------------------------------------------------------------

def assert_file_v2(obj: Any) -> None:
    assert_keys(obj, FILE_KEYS)
    assert is_int(obj["id"]) and obj["id"] > 0, obj
    assert obj["type"] in ("picture", "video", "audio", "file"), obj
    assert isinstance(obj["url"], str) and obj["url"].startswith("/uploads/"), obj
    assert is_int(obj["size_bytes"]), obj
    assert_timestamp(obj["created_at"])


def assert_message_v2(obj: Any) -> None:
    """The full message of protocol 2 (today: no replies, edits or reactions yet)."""
    assert_keys(obj, MESSAGE_V2_KEYS)
    for key in ("id", "chat_id", "sender_id"):
        assert is_int(obj[key]) and obj[key] > 0, obj
    assert obj["content"] is None or isinstance(obj["content"], str), obj
    assert_timestamp(obj["timestamp"])
    assert isinstance(obj["files"], list), obj
    for item in obj["files"]:
        assert_file_v2(item)
    assert obj["reply_to_id"] is None or is_int(obj["reply_to_id"]), obj
    assert obj["edited_at"] is None or isinstance(obj["edited_at"], str), obj
    assert isinstance(obj["reactions"], list), obj
    for reaction in obj["reactions"]:
        assert_keys(reaction, REACTION_KEYS)


def assert_chat_v2(obj: Any) -> None:
    assert_keys(obj, CHAT_V2_KEYS)
    assert is_int(obj["id"]) and obj["id"] > 0, obj
    assert obj["name"] is None or isinstance(obj["name"], str), obj
    assert obj["chat_type"] in ("direct", "group"), obj
    assert_timestamp(obj["created_at"])
    assert isinstance(obj["participants"], list) and all(is_int(p) for p in obj["participants"]), obj
    if obj["last_message"] is not None:
        assert_message_v2(obj["last_message"])
    assert is_int(obj["unread_count"]) and obj["unread_count"] >= 0, obj
    assert obj["last_read_id"] is None or is_int(obj["last_read_id"]), obj
    assert obj["my_role"] in ("owner", "admin", "member"), obj


def assert_user_d(obj: Any) -> None:
    assert_keys(obj, USER_KEYS)
    assert is_int(obj["id"]) and obj["id"] > 0, obj


def assert_event_frame(frame: Any) -> None:
    """{"op": OP, "seq": N, "d": {...}} with d in the full shape of its op."""
    assert isinstance(frame, dict), frame
    assert_keys(frame, EVENT_FRAME_KEYS)
    assert is_int(frame["seq"]) and frame["seq"] > 0, frame
    op, d = frame["op"], frame["d"]
    if op == "MESSAGE":
        assert_message_v2(d)
    elif op == "CHAT":
        assert_chat_v2(d)
    elif op == "USER":
        assert_user_d(d)
    else:
        assert isinstance(op, str) and op not in CONTROL_OPS, frame
        assert isinstance(d, dict), frame


def assert_ready_v2(frame: Any, user_id: int) -> int:
    assert is_op(frame, "READY"), f"expected READY, got {frame!r:.300}"
    assert_keys(frame, {"op", "d"})
    assert_keys(frame["d"], READY_V2_KEYS)
    assert frame["d"]["user_id"] == user_id, frame
    assert is_int(frame["d"]["seq"]) and frame["d"]["seq"] >= 0, frame
    return frame["d"]["seq"]


def assert_resync(frame: Any) -> int:
    assert is_op(frame, "RESYNC"), f"expected RESYNC, got {frame!r:.300}"
    assert_keys(frame, {"op", "d"})
    assert_keys(frame["d"], {"seq"})
    assert is_int(frame["d"]["seq"]) and frame["d"]["seq"] >= 0, frame
    return frame["d"]["seq"]


# --- protocol-2 sockets ------------------------------------------------------------------------

def p2_url(stack, *, token: str | None = None, v: Any = 2, since: Any = None) -> str:
    params = []
    if token is not None:
        params.append(f"token={token}")
    if v is not None:
        params.append(f"v={v}")
    if since is not None:
        params.append(f"since={since}")
    url = f"ws://127.0.0.1:{stack.port}/ws"
    return url + ("?" + "&".join(params) if params else "")


class P2Client(Client):
    """A protocol-2 socket: READY (with seq) was read by open(); `last` is the seq of the
    last event read, and every event read is checked to come after it."""

    ready_seq: int = 0
    last: int = 0
    seen: list

    def __init__(self, ws, user=None, label: str = ""):
        super().__init__(ws, user, label)
        self.seen = []
        self.ephemeral: list = []

    async def recv(self, timeout: float = RECV_TIMEOUT) -> Any:
        """The next frame that is not an ephemeral one (TYPING, PRESENCE: set aside)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await super().recv(max(0.001, deadline - time.monotonic()))
            if not is_ephemeral(frame):
                return frame
            self.ephemeral.append(frame)

    async def expect_silence(self, seconds: float = 0.5) -> None:
        """Nothing but ephemeral frames arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), remaining)
            except asyncio.TimeoutError:
                return
            except ConnectionClosed as closed:
                raise AssertionError(f"{self.label}: socket closed unexpectedly: {closed!r}") from None
            frame = json.loads(raw)
            assert is_ephemeral(frame), f"{self.label}: expected no frame, got {raw!r:.500}"
            self.ephemeral.append(frame)

    @classmethod
    async def open(cls, stack, user, how: str = "query", since: int | None = None,
                   v_in_identify: bool = True, ready_timeout: float = RECV_TIMEOUT) -> "P2Client":
        """how: "header", "query" or "identify". With "identify", `v`/`since` go in IDENTIFY's
        d (or, with v_in_identify=False, `v=2` on the URL and since in d)."""
        if how == "header":
            ws = await open_ws(p2_url(stack, v=2 if since is None else None, since=since),
                               {"Authorization": f"Bearer {user.token}"})
        elif how == "query":
            ws = await open_ws(p2_url(stack, token=user.token, v=2 if since is None else None, since=since))
        elif how == "identify":
            ws = await open_ws(p2_url(stack, v=None if v_in_identify else 2))
        else:
            raise ValueError(how)
        client = cls(ws, user)
        if how == "identify":
            d: dict[str, Any] = {"token": user.token}
            if v_in_identify:
                d["v"] = 2
            if since is not None:
                d["since"] = since
            await client.send({"op": "IDENTIFY", "d": d})
        client.ready_seq = assert_ready_v2(await client.recv(ready_timeout), user.id)
        client.last = client.ready_seq if since is None else since
        return client

    async def recv_event(self, timeout: float = RECV_TIMEOUT) -> dict:
        """The next frame, which must be an event after the last one read."""
        frame = await self.recv(timeout)
        self.check_event(frame)
        return frame

    def check_event(self, frame: Any) -> None:
        assert_event_frame(frame)
        assert frame["seq"] > self.last, f"{self.label}: seq {frame['seq']} after {self.last}: {frame!r:.300}"
        self.last = frame["seq"]
        self.seen.append(frame)

    async def events_through(self, seq: int, timeout: float = 10.0) -> list[dict]:
        """Events until one with seq >= `seq` (none if already there); checked in order."""
        frames = []
        deadline = time.monotonic() + timeout
        while self.last < seq:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{self.label}: stream stopped at {self.last}, expected {seq}; got {frames!r:.1500}"
            frames.append(await self.recv_event(remaining))
        return frames


async def open_p2_retrying(stack, user, how: str = "query", since: int | None = None,
                           timeout: float = 15.0) -> P2Client:
    """P2Client.open, retried while the relay is down (restarting after a kill)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return await P2Client.open(stack, user, how, since)
        except (OSError, InvalidStatus, InvalidHandshake, ConnectionClosed, AssertionError,
                asyncio.TimeoutError) as error:
            last_error = error
            await asyncio.sleep(0.1)
    raise AssertionError(f"relay did not accept a protocol-2 socket within {timeout}s: {last_error!r}")


# --- the database ------------------------------------------------------------------------------

def db_path(stack):
    """The SQLite file (sqlite_only tests)."""
    return stack.data_dir / "messenger.db"


def query(stack, sql: str, params: Iterable | dict = ()) -> list[tuple]:
    return database.rows(stack, sql, params)


def visible_events(stack, user_id: int, after: int = 0) -> dict[int, tuple]:
    """seq -> (op, audience, chat_id, user_id, message_id) of every event after `after` that
    the user may see, as the database says."""
    rows = query(stack, VISIBLE_SQL, {"user": user_id, "after": after})
    return {row[0]: row[1:] for row in rows}


def head_seq(stack) -> int:
    """The newest seq ever handed out (pruning never lowers it)."""
    return database.head_seq(stack)


def pruned_through(stack) -> int:
    return query(stack, "SELECT pruned_through FROM event_log WHERE id = 1")[0][0]


def backdate_and_wait_pruned(stack, through: int, timeout: float = 10.0) -> int:
    """Makes every event up to `through` 26 years old and waits until the relay's pruner
    (every second in the test stack) has removed them; returns pruned_through."""
    database.execute(stack, "UPDATE events SET created_at = '2000-01-01T00:00:00Z' WHERE seq <= ?", (through,))
    deadline = time.monotonic() + timeout
    while True:
        value = pruned_through(stack)
        left = query(stack, "SELECT count(*) FROM events WHERE seq <= ?", (through,))[0][0]
        if value >= through and left == 0:
            return value
        assert time.monotonic() < deadline, (
            f"events through {through} not pruned within {timeout}s: pruned_through {value}, {left} left")
        time.sleep(0.1)


def frames_by_seq(frames: Iterable[dict]) -> dict[int, dict]:
    return {frame["seq"]: frame for frame in frames}


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)

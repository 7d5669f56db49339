"""Helpers for the end-to-end tests of issue 15 (running groups: members, roles, rename,
leave — and blocks): REST wrappers for the new endpoints with exact-shape checks, a
protocol-2 socket that checks every event (CHAT in the full shape, CHAT_REMOVED) and skips
ephemeral frames, a strict protocol-1 decoder, and read-only database look-ups.

Additive only: nothing here changes the other helper modules."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Iterable

import requests

import database
from helpers import (
    CHAT_KEYS,
    FILE_KEYS,
    MESSAGE_KEYS,
    assert_keys,
    assert_timestamp,
    assert_user,
    is_int,
    ok_json,
)
from stream_helpers import assert_chat_v2, assert_message_v2
from ws_helpers import RECV_TIMEOUT, Client, is_op, open_ws

ROLES = ("owner", "admin", "member")
MEMBER_KEYS = {"user_id", "role", "joined_at"}
EVENT_KEYS = {"op", "seq", "d"}
EPHEMERAL_OPS = ("PRESENCE", "TYPING")
CHAT_EVENT_OPS = ("MESSAGE", "MESSAGE_EDITED", "MESSAGE_DELETED", "REACTION", "READ", "CHAT")


# --- REST ------------------------------------------------------------------------------------

def no_content(response: requests.Response) -> None:
    assert response.status_code == 204, (
        f"{response.request.method} {response.request.url}: expected 204, got "
        f"{response.status_code} {response.text[:300]!r}")
    assert response.content == b"", response.content[:200]


def assert_member(obj: Any) -> None:
    assert_keys(obj, MEMBER_KEYS)
    assert is_int(obj["user_id"]) and obj["user_id"] > 0, obj
    assert obj["role"] in ROLES, obj
    assert_timestamp(obj["joined_at"])


def assert_member_list(body: Any, ordered: bool = True) -> list[dict]:
    """[{user_id, role, joined_at}] ordered by joined_at then user_id (unless `ordered` is
    False), one owner at most, no user twice."""
    assert isinstance(body, list), f"{body!r:.300}"
    for member in body:
        assert_member(member)
    keys = [(m["joined_at"], m["user_id"]) for m in body]
    if ordered:
        wrong = [(keys[i], keys[i + 1]) for i in range(len(keys) - 1) if keys[i] > keys[i + 1]]
        assert not wrong, (f"members not ordered by joined_at, user_id ({len(keys)} members): "
                           f"{len(wrong)} pair(s) out of order, e.g. {wrong[:3]}")
    ids = [m["user_id"] for m in body]
    assert len(set(ids)) == len(ids), f"a user listed twice: {ids}"
    assert sum(1 for m in body if m["role"] == "owner") <= 1, body
    return body


def get_members(api, token: str, chat_id: int) -> requests.Response:
    return api.get(f"/chats/{chat_id}/members", token)


def members(api, token: str, chat_id: int, ordered: bool = True) -> list[dict]:
    return assert_member_list(ok_json(get_members(api, token, chat_id)), ordered)


def roles(api, token: str, chat_id: int) -> dict[int, str]:
    """user_id -> role, as `token`'s user sees it."""
    return {m["user_id"]: m["role"] for m in members(api, token, chat_id)}


def add_members(api, token: str, chat_id: int, user_ids: Any) -> requests.Response:
    return api.post(f"/chats/{chat_id}/members", token, json={"user_ids": user_ids})


def remove_member(api, token: str, chat_id: int, user_id: Any) -> requests.Response:
    return api.request("DELETE", f"/chats/{chat_id}/members/{user_id}", token)


def set_role(api, token: str, chat_id: int, user_id: Any, role: Any) -> requests.Response:
    return api.patch(f"/chats/{chat_id}/members/{user_id}", token, json={"role": role})


def rename(api, token: str, chat_id: int, name: Any) -> requests.Response:
    return api.patch(f"/chats/{chat_id}", token, json={"name": name})


def block(api, token: str, user_id: Any) -> requests.Response:
    return api.request("PUT", f"/users/me/blocks/{user_id}", token)


def unblock(api, token: str, user_id: Any) -> requests.Response:
    return api.request("DELETE", f"/users/me/blocks/{user_id}", token)


def blocks(api, token: str) -> list[dict]:
    body = ok_json(api.get("/users/me/blocks", token))
    assert isinstance(body, list), body
    for user in body:
        assert_user(user)
    return body


def create_group(api, owner, others: Iterable, name: str = "group") -> int:
    chat = ok_json(api.post("/chats", owner.token, json={"name": name, "participants": [u.id for u in others]}))
    return chat["id"]


def chat_v2(api, token: str, chat_id: int) -> dict:
    chat = ok_json(api.get(f"/chats/{chat_id}?v=2", token))
    assert_chat_v2(chat)
    return chat


def send_rest(api, token: str, chat_id: int, content: str) -> requests.Response:
    return api.post(f"/chats/{chat_id}/messages", token, json={"content": content})


def history_contents(api, token: str, chat_id: int) -> list[str]:
    page = ok_json(api.get(f"/chats/{chat_id}/messages?after_id=0&limit=1000", token))
    return [m["content"] for m in page["messages"]]


# --- frames ----------------------------------------------------------------------------------

def assert_event(frame: Any) -> None:
    """{"op", "seq", "d"}; CHAT in the full shape, CHAT_REMOVED {chat_id}, MESSAGE full."""
    assert isinstance(frame, dict), frame
    assert_keys(frame, EVENT_KEYS)
    assert is_int(frame["seq"]) and frame["seq"] > 0, frame
    op, d = frame["op"], frame["d"]
    assert isinstance(d, dict), frame
    if op == "CHAT":
        assert_chat_v2(d)
    elif op == "CHAT_REMOVED":
        assert_keys(d, {"chat_id"})
        assert is_int(d["chat_id"]), frame
    elif op in ("MESSAGE", "MESSAGE_EDITED"):
        assert_message_v2(d)


def event_chat_id(frame: dict) -> int | None:
    """The chat an event belongs to (CHAT: d.id; others: d.chat_id)."""
    d = frame.get("d") or {}
    if frame.get("op") == "CHAT":
        return d.get("id")
    return d.get("chat_id")


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


class StrictP1(Client):
    """A protocol-1 socket whose every frame is checked by the strict decoder and kept."""

    @classmethod
    async def open_strict(cls, stack, user, how: str = "identify", label: str = "") -> "StrictP1":
        inner = await Client.open(stack, user, how)
        client = cls(inner.ws, user, label or f"{user.username}/p1-{how}")
        client.frames = []
        return client

    async def recv(self, timeout: float = RECV_TIMEOUT) -> Any:
        frame = await super().recv(timeout)
        strict_p1_frame(frame)
        self.frames.append(frame)
        return frame

    async def drain(self, quiet: float = 0.5) -> list:
        frames = []
        while True:
            try:
                frames.append(await self.recv(quiet))
            except AssertionError as error:
                if "no frame within" in str(error):
                    return frames
                raise


# --- protocol-2 sockets ----------------------------------------------------------------------

class P2(Client):
    """A protocol-2 socket: READY {user_id, seq} first; then events in strictly increasing
    seq, each checked (`events` keeps them); ephemeral frames (PRESENCE, TYPING) are set aside;
    ACK and ERROR frames are returned like any other (and kept in `control`)."""

    ready_seq: int = 0
    last_seq: int = 0

    @classmethod
    async def open_p2(cls, stack, user, how: str = "query", since: int | None = None,
                      label: str = "") -> "P2":
        base = f"ws://127.0.0.1:{stack.port}/ws"
        if how == "query":
            ws = await open_ws(f"{base}?v=2&token={user.token}" + (f"&since={since}" if since is not None else ""))
        elif how == "header":
            ws = await open_ws(f"{base}?v=2" + (f"&since={since}" if since is not None else ""),
                               {"Authorization": f"Bearer {user.token}"})
        elif how == "identify":
            ws = await open_ws(base)
        else:
            raise ValueError(how)
        client = cls(ws, user, label or f"{user.username}/p2-{how}")
        client.events, client.ephemeral, client.control = [], [], []
        if how == "identify":
            d: dict[str, Any] = {"token": user.token, "v": 2}
            if since is not None:
                d["since"] = since
            await client.send({"op": "IDENTIFY", "d": d})
        ready = await Client.recv(client)
        assert is_op(ready, "READY"), f"{client.label}: expected READY first, got {ready!r:.300}"
        assert_keys(ready, {"op", "d"})
        assert_keys(ready["d"], {"user_id", "seq"})
        assert ready["d"]["user_id"] == user.id, ready
        assert is_int(ready["d"]["seq"]) and ready["d"]["seq"] >= 0, ready
        client.ready_seq = ready["d"]["seq"]
        client.last_seq = since if since is not None else client.ready_seq
        return client

    def _take(self, frame: Any) -> bool:
        """Checks and records a frame; False for an ephemeral one (skipped)."""
        if isinstance(frame, dict) and frame.get("op") in EPHEMERAL_OPS and "seq" not in frame:
            self.ephemeral.append(frame)
            return False
        if isinstance(frame, dict) and "seq" in frame:
            assert_event(frame)
            assert frame["seq"] > self.last_seq, (
                f"{self.label}: seq {frame['seq']} after {self.last_seq} (not strictly increasing): {frame!r:.300}")
            self.last_seq = frame["seq"]
            self.events.append(frame)
        else:
            assert is_op(frame, "ACK") or is_op(frame, "ERROR") or is_op(frame, "RESYNC"), (
                f"{self.label}: protocol 2 frame that is neither an event nor ACK/ERROR: {frame!r:.300}")
            self.control.append(frame)
        return True

    async def recv(self, timeout: float = RECV_TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            frame = await super().recv(max(0.001, deadline - time.monotonic()))
            if self._take(frame):
                return frame

    async def recv_event(self, op: str | None = None, timeout: float = RECV_TIMEOUT) -> dict:
        frame = await self.recv(timeout)
        assert isinstance(frame, dict) and "seq" in frame, f"{self.label}: expected an event, got {frame!r:.500}"
        if op is not None:
            assert frame["op"] == op, f"{self.label}: expected {op}, got {frame!r:.500}"
        return frame

    async def until(self, predicate, timeout: float = RECV_TIMEOUT) -> tuple[dict, list]:
        """Reads until a frame matches; returns (it, the frames before it)."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.label}: no matching frame within {timeout}s; got {skipped!r:.2000}")
            try:
                frame = await self.recv(remaining)
            except AssertionError as error:
                if "no frame within" in str(error):
                    raise AssertionError(
                        f"{self.label}: no matching frame within {timeout}s; got {skipped!r:.2000}") from None
                raise
            if predicate(frame):
                return frame, skipped
            skipped.append(frame)

    async def chat_event(self, chat_id: int, predicate=lambda d: True, timeout: float = RECV_TIMEOUT) -> dict:
        """The next CHAT event of this chat whose d matches; returns the frame."""
        frame, _ = await self.until(
            lambda f: is_op(f, "CHAT") and "seq" in f and f["d"]["id"] == chat_id and predicate(f["d"]), timeout)
        return frame

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
            if self._take(frame):
                frames.append(frame)
                deadline = time.monotonic() + quiet

    async def expect_silence(self, seconds: float = 0.5) -> None:
        frames = await self.drain(seconds)
        assert not frames, f"{self.label}: expected no frame, got {frames!r:.800}"


# --- the database (read-only) ----------------------------------------------------------------

def db_rows(stack, sql: str, params: Iterable = ()) -> list[tuple]:
    return database.rows(stack, sql, params)


def head_seq(stack) -> int:
    rows = db_rows(stack, "SELECT coalesce(max(seq), 0) FROM events")
    return rows[0][0] if rows else 0


def message_seq(stack, message_id: int) -> int | None:
    rows = db_rows(stack, "SELECT min(seq) FROM events WHERE op = 'MESSAGE' AND message_id = ?", (message_id,))
    return rows[0][0] if rows else None


def all_events(api, token: str, since: int, limit: int = 1000) -> tuple[list[dict], int]:
    """GET /events from `since` to the head, page by page; returns (frames, final seq)."""
    frames: list[dict] = []
    while True:
        page = ok_json(api.get(f"/events?since={since}&limit={limit}", token))
        assert_keys(page, {"events", "seq"})
        for frame in page["events"]:
            assert_event(frame)
        frames += page["events"]
        since = page["seq"]
        if len(page["events"]) < limit:
            return frames, since

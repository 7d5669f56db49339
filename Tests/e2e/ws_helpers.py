"""WebSocket helpers for the end-to-end tests: an asyncio client around `websockets` with a
timeout on every receive, frame-shape assertions, and the relay process.

Tests stay plain synchronous pytest functions and run their coroutine with ``run()``, so no
asyncio plugin is needed and a stuck test fails after ``run``'s overall timeout instead of
hanging the suite.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any, Callable

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from helpers import (
    CHAT_KEYS,
    assert_chat,
    assert_keys,
    assert_message,
    is_int,
)

RECV_TIMEOUT = 5.0  # seconds for any single frame we expect
QUIET = 0.5  # seconds of silence that count as "nothing more arrives"

READY_KEYS = {"user_id"}
ACK_KEYS = {"nonce", "id"}
ERROR_KEYS = {"message", "nonce"}


def run(coro, timeout: float = 60.0):
    """Runs one test's coroutine with an overall deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def ws_url(stack, token: str | None = None, query: str | None = None) -> str:
    url = f"ws://127.0.0.1:{stack.port}/ws"
    if token is not None:
        url += "?token=" + token
    elif query is not None:
        url += "?" + query
    return url


async def open_ws(url: str, headers: dict[str, str] | None = None) -> ClientConnection:
    """A raw connection: no proxy, no compression, a bounded handshake."""
    return await connect(
        url,
        additional_headers=headers,
        proxy=None,
        compression=None,
        open_timeout=RECV_TIMEOUT,
        close_timeout=RECV_TIMEOUT,
        max_queue=4096,
        max_size=4 * 1024 * 1024,
    )


async def refused_status(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Opens a socket that must be refused at the handshake; returns (status, body)."""
    try:
        ws = await open_ws(url, headers)
    except InvalidStatus as error:
        return error.response.status_code, bytes(error.response.body or b"")
    await ws.close()
    raise AssertionError(f"the handshake for {url} succeeded; expected it to be refused")


def is_op(frame: Any, op: str) -> bool:
    return isinstance(frame, dict) and frame.get("op") == op


def is_message(frame: Any) -> bool:
    return isinstance(frame, dict) and "op" not in frame and "chat_id" in frame


class Client:
    """One WebSocket connection of one user."""

    def __init__(self, ws: ClientConnection, user=None, label: str = ""):
        self.ws = ws
        self.user = user
        self.label = label or (user.username if user else "anonymous")

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    async def open(cls, stack, user, how: str = "header") -> "Client":
        """Authenticated by `how`: "header" (Bearer), "query" (?token=) or "identify"
        (IDENTIFY, then READY is awaited and checked).

        With a token at the handshake there is no READY: every message committed after the
        upgrade was accepted must reach the socket anyway (the relay replays what it fanned out
        between the handshake and the socket's registration), so nothing is awaited here and
        the suite checks that guarantee everywhere."""
        if how == "header":
            ws = await open_ws(ws_url(stack), {"Authorization": f"Bearer {user.token}"})
        elif how == "query":
            ws = await open_ws(ws_url(stack, token=user.token))
        elif how == "identify":
            ws = await open_ws(ws_url(stack))
        else:
            raise ValueError(how)
        client = cls(ws, user)
        if how == "identify":
            await client.send({"op": "IDENTIFY", "d": {"token": user.token}})
            ready = await client.recv()
            assert_ready(ready, user.id)
        return client

    @classmethod
    async def anonymous(cls, stack) -> "Client":
        return cls(await open_ws(ws_url(stack)))

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ws.close(), RECV_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionClosed, OSError):
            pass

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # --- sending ---------------------------------------------------------------------------

    async def send(self, obj: Any) -> None:
        await self.ws.send(json.dumps(obj))

    async def send_text(self, text: str) -> None:
        await self.ws.send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send(data)

    # --- receiving -------------------------------------------------------------------------

    async def recv(self, timeout: float = RECV_TIMEOUT) -> Any:
        """The next frame, which must be a JSON text frame, within `timeout`."""
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.label}: no frame within {timeout}s") from None
        except ConnectionClosed as closed:
            raise AssertionError(f"{self.label}: socket closed while a frame was expected: {closed!r}") from None
        assert isinstance(raw, str), f"{self.label}: expected a text frame, got {raw!r:.200}"
        try:
            return json.loads(raw)
        except ValueError:
            raise AssertionError(f"{self.label}: frame is not JSON: {raw!r:.300}") from None

    async def recv_until(self, predicate: Callable[[Any], bool], timeout: float = RECV_TIMEOUT) -> tuple[Any, list]:
        """Reads until a frame matches; returns (that frame, the frames skipped before it)."""
        deadline = time.monotonic() + timeout
        skipped = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.label}: no matching frame within {timeout}s; got {skipped!r:.1500}")
            frame = await self.recv(remaining)
            if predicate(frame):
                return frame, skipped
            skipped.append(frame)

    async def recv_message(self, timeout: float = RECV_TIMEOUT) -> dict:
        """The next frame, which must be a seed message object."""
        frame = await self.recv(timeout)
        assert is_message(frame), f"{self.label}: expected a message frame, got {frame!r:.500}"
        assert_message(frame)
        return frame

    async def recv_op(self, op: str, timeout: float = RECV_TIMEOUT) -> dict:
        """The next frame, which must be {"op": op, "d": …}; returns d."""
        frame = await self.recv(timeout)
        assert is_op(frame, op), f"{self.label}: expected op {op}, got {frame!r:.500}"
        assert_keys(frame, {"op", "d"})
        return frame["d"]

    async def recv_error(self, nonce: str | None = None, timeout: float = RECV_TIMEOUT) -> str:
        """The next frame, which must be an ERROR (with this nonce); returns its message."""
        d = await self.recv_op("ERROR", timeout)
        assert_keys(d, ERROR_KEYS)
        assert isinstance(d["message"], str) and d["message"].strip(), d
        assert d["nonce"] == nonce, d
        return d["message"]

    async def recv_ack(self, nonce: str, timeout: float = RECV_TIMEOUT) -> int:
        d = await self.recv_op("ACK", timeout)
        assert_keys(d, ACK_KEYS)
        assert d["nonce"] == nonce, d
        assert is_int(d["id"]) and d["id"] > 0, d
        return d["id"]

    async def recv_chat(self, timeout: float = RECV_TIMEOUT) -> dict:
        d = await self.recv_op("CHAT", timeout)
        assert_chat(d)
        return d

    async def expect_silence(self, seconds: float = QUIET) -> None:
        """Nothing arrives within `seconds` (and the socket stays open)."""
        try:
            raw = await asyncio.wait_for(self.ws.recv(), seconds)
        except asyncio.TimeoutError:
            return
        except ConnectionClosed as closed:
            raise AssertionError(f"{self.label}: socket closed unexpectedly: {closed!r}") from None
        raise AssertionError(f"{self.label}: expected no frame, got {raw!r:.500}")

    async def closed(self, timeout: float = RECV_TIMEOUT) -> tuple[int | None, str, list]:
        """Waits for the server to close the socket; returns (code, reason, frames before)."""
        frames = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.label}: socket still open after {timeout}s; frames {frames!r:.500}")
            try:
                raw = await asyncio.wait_for(self.ws.recv(), remaining)
            except asyncio.TimeoutError:
                continue
            except ConnectionClosed as closed:
                received = closed.rcvd
                if received is None:
                    return None, "", frames
                return received.code, received.reason, frames
            frames.append(raw)

    # --- round trips -----------------------------------------------------------------------

    async def ping_pong(self) -> None:
        """The socket is open and the relay answers: a WebSocket ping gets its pong."""
        waiter = await self.ws.ping()
        try:
            await asyncio.wait_for(waiter, RECV_TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.label}: no pong within {RECV_TIMEOUT}s") from None


def assert_ready(frame: Any, user_id: int) -> None:
    assert is_op(frame, "READY"), f"expected READY, got {frame!r:.300}"
    assert_keys(frame, {"op", "d"})
    assert_keys(frame["d"], READY_KEYS)
    assert frame["d"]["user_id"] == user_id, frame


def assert_chat_frame_d(d: dict, chat_id: int, participants: set[int]) -> None:
    assert_keys(d, CHAT_KEYS)
    assert d["id"] == chat_id, d
    assert set(d["participants"]) == participants, d


async def send_and_echo(client: Client, chat_id: int, content: str, nonce: str | None = None) -> dict:
    """Sends to a chat and waits for the sender's echo (and ACK, when a nonce is given)."""
    frame: dict[str, Any] = {"chat_id": chat_id, "content": content}
    if nonce is not None:
        frame["nonce"] = nonce
    await client.send(frame)
    echo = await client.recv_message()
    assert echo["chat_id"] == chat_id and echo["content"] == content, echo
    assert client.user is None or echo["sender_id"] == client.user.id, echo
    if nonce is not None:
        assert await client.recv_ack(nonce) == echo["id"]
    return echo


# --- the relay process -----------------------------------------------------------------------

def relay_pid(stack) -> int:
    """The running WSRelay of this stack (a direct child of its scripts/run)."""
    pid = stack.child_pids().get("WSRelay")
    assert pid, f"no WSRelay child of scripts/run {stack.proc.pid}: {stack.child_pids()}"
    environ = b""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environ = handle.read()
    except OSError:
        pass
    if environ:
        assert f"DATA_DIR={stack.data_dir}".encode() in environ.split(b"\0"), "WSRelay of another stack"
    return pid


def process_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            raw = handle.read()
    except OSError:
        return "gone"
    return raw[raw.rindex(")") + 2:].split()[0]


def resume(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


async def wait_relay_accepts(stack, user, timeout: float = 10.0) -> Client:
    """Retries until a new authenticated connection succeeds and is answered."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = await Client.open(stack, user, how="identify")
            return client
        except (OSError, InvalidStatus, ConnectionClosed, AssertionError, asyncio.TimeoutError,
                websockets.exceptions.InvalidHandshake) as error:
            last = error
            await asyncio.sleep(0.1)
    raise AssertionError(f"relay did not accept a connection within {timeout}s: {last!r}")


# --- chats created before a test's sockets open ------------------------------------------------

async def announce_chat(stack, user, create: Callable[[], int]) -> int:
    """Runs `create()` (a REST call that creates a chat with `user` in it and returns its id)
    while a socket of `user` listens, and returns once the relay has announced the chat.

    The relay learns about REST writes asynchronously, so a socket opened right after the REST
    call may still get that chat's CHAT frame. Waiting for the announcement here makes the
    frames a test's own sockets receive deterministic."""
    async with await Client.open(stack, user, "identify") as listener:
        chat_id = create()
        await listener.recv_until(lambda f: is_op(f, "CHAT") and f["d"].get("id") == chat_id)
        return chat_id


def create_chat_announced(stack, user, create: Callable[[], int]) -> int:
    """`announce_chat` from synchronous code (fixtures)."""
    return run(announce_chat(stack, user, create), timeout=2 * RECV_TIMEOUT)


def direct_chat(stack, api, alice, bob) -> int:
    """A new direct chat of alice and bob, already announced by the relay."""
    return create_chat_announced(
        stack, alice, lambda: api.initiate(alice.token, target_username=bob.username)["chat_id"])

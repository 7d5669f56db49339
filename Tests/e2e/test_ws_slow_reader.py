"""A socket that stops reading is closed with 4008 instead of being buffered without bound.
Its user loses nothing (the rest is fetched with after_id), and the sender never notices."""

import asyncio
import base64
import json
import os
import socket
import struct
import time

from ws_helpers import Client, run

CONTENT = "x" * 3900          # near the 4,000-character limit: ~4 KB per frame
MESSAGES = 3000               # ~12 MB: past the relay's 4 MiB queue plus nginx's and the kernel's buffers
CLOSE_4008 = 4008


def open_raw_ws(stack, token: str) -> tuple[socket.socket, bytes]:
    """A WebSocket handshake by hand on a socket with a small receive buffer, so that the
    client stops taking data as soon as it stops reading. Returns the socket and whatever
    arrived after the 101's headers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", stack.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{stack.port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "connection closed during the handshake"
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, rest


def read_frames(sock: socket.socket, buffered: bytes, deadline: float):
    """Yields (opcode, payload) for each server frame (unmasked) until the connection ends."""
    data = buffered
    while True:
        while True:
            if len(data) < 2:
                break
            opcode, length, offset = data[0] & 0x0F, data[1] & 0x7F, 2
            if length == 126:
                if len(data) < 4:
                    break
                length, offset = struct.unpack("!H", data[2:4])[0], 4
            elif length == 127:
                if len(data) < 10:
                    break
                length, offset = struct.unpack("!Q", data[2:10])[0], 10
            if len(data) < offset + length:
                break
            yield opcode, data[offset:offset + length]
            data = data[offset + length:]
        assert time.monotonic() < deadline, "the slow socket was never closed"
        try:
            chunk = sock.recv(1 << 16)
        except (ConnectionResetError, socket.timeout):
            return
        if not chunk:
            return
        data += chunk


def test_a_socket_that_stops_reading_is_closed_4008_and_catches_up_over_rest(api, stack, pair):
    alice, bob, chat_id = pair
    bob_socket, bob_buffered = open_raw_ws(stack, bob.token)

    async def flood() -> dict[str, int]:
        """Alice sends MESSAGES messages while reading her echoes and ACKs; returns nonce -> id."""
        acks: dict[str, int] = {}
        async with await Client.open(stack, alice) as sender:
            async def read_acks():
                while len(acks) < MESSAGES:
                    frame = await sender.recv(timeout=30)
                    if frame.get("op") == "ACK":
                        acks[frame["d"]["nonce"]] = frame["d"]["id"]

            reader = asyncio.create_task(read_acks())
            for index in range(MESSAGES):
                await sender.send({"chat_id": chat_id, "content": CONTENT, "nonce": f"slow-{index}"})
            await asyncio.wait_for(reader, 60)
        return acks

    # Bob's socket is open (its handshake answered) but never read while Alice sends.
    acks = run(flood(), timeout=90)
    assert len(acks) == MESSAGES
    sent_ids = sorted(acks.values())

    # Now Bob reads: what was queued for him, then a close frame with 4008.
    seen: list[int] = []
    close_code = None
    for opcode, payload in read_frames(bob_socket, bob_buffered, time.monotonic() + 30):
        if opcode == 0x1:
            frame = json.loads(payload)
            if "id" in frame:
                seen.append(frame["id"])
        elif opcode == 0x8:
            close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            break
    bob_socket.close()
    assert close_code == CLOSE_4008, close_code
    assert len(seen) < MESSAGES, "the relay buffered everything: the socket was never too slow"
    assert seen == sent_ids[:len(seen)], "what did arrive came in order, without gaps"

    # The close reason's advice works: everything after the last id Bob saw is in the history.
    after, fetched = (seen[-1] if seen else 0), []
    while True:
        page = api.messages(bob.token, chat_id, f"?after_id={after}&limit=1000")
        if not page:
            break
        fetched += [message["id"] for message in page]
        after = page[-1]["id"]
    assert seen + fetched == sent_ids

    # The relay is fine: Bob reconnects and gets live messages again.
    async def reconnect():
        async with await Client.open(stack, bob) as again, await Client.open(stack, alice) as sender:
            await sender.send({"chat_id": chat_id, "content": "after the slow reader", "nonce": "slow-after"})
            return await again.recv_message()

    assert run(reconnect())["content"] == "after the slow reader"

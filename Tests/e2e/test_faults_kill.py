"""kill -9 mid-write for every write kind (issue 19). Wave 1 showed it for messages; here:

- FCGIApp is killed while one client thread per REST write kind writes flat out — message,
  edit, delete, reaction, read marker, membership change, upload — and they keep writing
  through the restart. Every acknowledged write is in the database with its event; nothing
  unacknowledged is half there (each change has exactly its event, each upload row its whole
  file, and no partial or orphan file remains in uploads/); a protocol-2 client resuming from
  before the load gets exactly the events the database says it may see: no gap, no duplicate.
- WSRelay is killed while sockets send messages (with nonces) and READ ops: every ACKed send
  is stored with its event, and the same resume check holds after the relay is back.

A stack of its own; ~40 s."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed

import helpers
from events_helpers import reaction_path
import database
from faults_helpers import integrity, new_user, own_stack, request
from stream_helpers import P2Client, head_seq, open_p2_retrying, visible_events
from ws_helpers import run

EMOJI = ["👍", "❤", "😂", "🎉", "👀", "🔥", "✅", "🙏"]
GATEWAY = (502, 503, 504)


@pytest.fixture(scope="module")
def stack():
    yield from own_stack("msgr-kill-")


def rows(stack, sql: str, params=()) -> list[tuple]:
    return database.rows(stack, sql, params)


def attempt(call):
    """The response, or None when the request failed at the transport (the kill)."""
    try:
        return call()
    except Exception:  # requests' ConnectionError, ReadTimeout, ChunkedEncodingError …
        return None


async def resume_has_no_gap(stack, user, since: int) -> None:
    """A protocol-2 socket with `since` gets exactly the visible events after it, in order."""
    head = head_seq(stack)
    expected = [seq for seq in visible_events(stack, user.id, since) if seq <= head]
    assert expected, "no events to resume"
    client = await open_p2_retrying(stack, user, since=since)
    try:
        seen = []
        while client.last < expected[-1]:
            frame = await client.recv_event(timeout=20)
            seen.append(frame["seq"])
        assert seen == expected, (f"resume from {since}: {len(seen)} events, the database has "
                                  f"{len(expected)}; missing {sorted(set(expected) - set(seen))[:20]}, "
                                  f"extra {sorted(set(seen) - set(expected))[:20]}")
    finally:
        await client.close()


def check_events_match_changes(stack, chat_id: int) -> None:
    """Each change in the database has its event, and each event its change: no transaction
    was cut in half."""
    messages = rows(stack, "SELECT id, deleted_at IS NOT NULL FROM messages WHERE chat_id = ?", (chat_id,))
    created = {row[0] for row in rows(stack, "SELECT message_id FROM events WHERE op = 'MESSAGE' AND chat_id = ?", (chat_id,))}
    assert {m for m, _ in messages} == created
    deleted_events = {row[0] for row in rows(stack, "SELECT message_id FROM events WHERE op = 'MESSAGE_DELETED' AND chat_id = ?", (chat_id,))}
    assert {m for m, gone in messages if gone} == deleted_events
    edited = {row[0] for row in rows(stack, "SELECT id FROM messages WHERE chat_id = ? AND edited_at IS NOT NULL", (chat_id,))}
    edit_events = {row[0] for row in rows(stack, "SELECT message_id FROM events WHERE op = 'MESSAGE_EDITED' AND chat_id = ?", (chat_id,))}
    assert edited == edit_events
    # Every reaction row carries the seq of its REACTION event.
    orphans = rows(stack, """SELECT r.message_id, r.emoji FROM reactions r JOIN messages m ON m.id = r.message_id
                             WHERE m.chat_id = ? AND NOT EXISTS (
                                 SELECT 1 FROM events e WHERE e.seq = r.seq AND e.op = 'REACTION')""", (chat_id,))
    assert orphans == []
    # Every member joined at the seq of a CHAT event of this chat.
    joined = rows(stack, """SELECT user_id, joined_seq FROM chat_members WHERE chat_id = ? AND joined_seq > 0
                            AND NOT EXISTS (SELECT 1 FROM events e WHERE e.seq = joined_seq AND e.op = 'CHAT')""",
                  (chat_id,))
    assert joined == []


def test_kill_9_of_fcgiapp_mid_write_for_every_rest_write_kind(stack):
    owner, member = new_user(stack, "ko"), new_user(stack, "km")
    extras = [new_user(stack, "kx") for _ in range(60)]
    chat = helpers.ok_json(request(stack, "POST", "/chats", owner.token,
                                   json={"name": "kill", "participants": [member.id]}))
    chat_id = chat["id"]
    targets = [helpers.ok_json(request(stack, "POST", f"/chats/{chat_id}/messages", owner.token,
                                       json={"content": f"target {n}"}))["id"] for n in range(120)]
    edit_targets, delete_targets, react_targets = targets[:20], targets[20:80], targets[80:]
    since = head_seq(stack)
    old_pid = stack.child_pids()["FCGIApp"]

    stop = threading.Event()
    acked: dict[str, list] = {kind: [] for kind in
                              ("message", "edit", "delete", "reaction", "read", "member", "upload")}
    tried: dict[str, list] = {kind: [] for kind in acked}
    unexpected: list = []

    def writer(kind: str, calls) -> None:
        for index, (key, call, ok) in enumerate(calls):
            if stop.is_set():
                return
            tried[kind].append(key)
            response = attempt(call)
            if response is not None and response.status_code in ok:
                acked[kind].append((key, response))
            elif response is not None and response.status_code not in GATEWAY:
                unexpected.append((kind, key, response.status_code, response.text[:200]))

    def go(method, path, token, **kwargs):
        return lambda: request(stack, method, path, token, timeout=10, **kwargs)

    plans = {
        "message": ((f"kill-msg-{n}", go("POST", f"/chats/{chat_id}/messages", owner.token,
                                         json={"content": f"kill-msg-{n}", "nonce": f"kn-{n}"}), (200,))
                    for n in range(100_000)),
        "edit": (((edit_targets[n % 20], f"edit-{n}"),
                  go("PATCH", f"/chats/{chat_id}/messages/{edit_targets[n % 20]}", owner.token,
                     json={"content": f"edit-{n}"}), (200,)) for n in range(100_000)),
        "delete": [(mid, go("DELETE", f"/chats/{chat_id}/messages/{mid}", owner.token), (204,))
                   for mid in delete_targets],
        "reaction": [((react_targets[n // len(EMOJI)], EMOJI[n % len(EMOJI)]),
                      go("PUT", reaction_path(chat_id, react_targets[n // len(EMOJI)], EMOJI[n % len(EMOJI)]),
                         member.token), (204,)) for n in range(len(react_targets) * len(EMOJI))],
        "read": [(mid, go("POST", f"/chats/{chat_id}/read", member.token, json={"message_id": mid}), (200,))
                 for mid in edit_targets + react_targets],
        "member": [(user.id, go("POST", f"/chats/{chat_id}/members", owner.token, json={"user_ids": [user.id]}),
                    (200,)) for user in extras],
        "upload": ((n, go("POST", "/upload?v=2", owner.token,
                          files={"file": (f"k{n}.bin", os.urandom(64 * 1024 + n), "application/octet-stream")}),
                    (200,)) for n in range(100_000)),
    }
    # Spread the finite plans over the run: a short pause between their writes.
    def paced(calls, pause):
        for item in calls:
            yield item
            time.sleep(pause)
    pauses = {"delete": 0.05, "member": 0.05, "read": 0.05, "reaction": 0.01}
    threads = [threading.Thread(target=writer, args=(kind, paced(calls, pauses.get(kind, 0))))
               for kind, calls in plans.items()]
    for thread in threads:
        thread.start()
    assert helpers.wait_for(lambda: all(acked[kind] for kind in acked), timeout=20), \
        {kind: len(v) for kind, v in acked.items()}
    time.sleep(0.3)
    os.kill(old_pid, signal.SIGKILL)
    assert helpers.wait_for(lambda: stack.child_pids().get("FCGIApp") not in (None, old_pid), timeout=10)
    back = lambda: (r := attempt(go("GET", "/chats", owner.token))) is not None and r.status_code == 200
    assert helpers.wait_for(back, timeout=15)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert unexpected == [], unexpected[:10]
    print("\nacknowledged / tried: " + ", ".join(f"{k} {len(acked[k])}/{len(tried[k])}" for k in acked))

    # Messages: every 200 stored once, with its id; an unacknowledged one stored at most once.
    stored = dict(rows(stack, "SELECT content, id FROM messages WHERE chat_id = ? AND content LIKE 'kill-msg-%'", (chat_id,)))
    for content, response in acked["message"]:
        assert stored.get(content) == response.json()["id"], content
    assert len(stored) == len(set(stored))
    # Edits: each target holds its last acknowledged edit or a later attempt.
    contents = dict(rows(stack, "SELECT id, content FROM messages WHERE id IN (%s)" % ",".join("?" * 20), edit_targets))
    for mid in edit_targets:
        attempts = [text for target, text in tried["edit"] if target == mid]
        acks = [text for (target, text), _ in acked["edit"] if target == mid]
        if acks:
            assert contents[mid] in attempts[attempts.index(acks[-1]):], (mid, contents[mid], acks[-1])
    # Deletes: every 204 is gone from history.
    gone = {row[0] for row in rows(stack, "SELECT id FROM messages WHERE deleted_at IS NOT NULL AND chat_id = ?", (chat_id,))}
    assert {mid for mid, _ in acked["delete"]} <= gone
    assert gone <= set(tried["delete"])
    # Reactions: every 204 is a row.
    reacted = set(rows(stack, "SELECT message_id, emoji FROM reactions WHERE user_id = ?", (member.id,)))
    assert {key for key, _ in acked["reaction"]} <= reacted
    # Read marker: at least the highest acknowledged.
    marker = rows(stack, "SELECT last_read_id FROM chat_members WHERE chat_id = ? AND user_id = ?", (chat_id, member.id))[0][0]
    assert marker >= max(mid for mid, _ in acked["read"])
    # Members: every 200 is a member.
    members = {row[0] for row in rows(stack, "SELECT user_id FROM chat_members WHERE chat_id = ?", (chat_id,))}
    assert {uid for uid, _ in acked["member"]} <= members
    # Uploads: every 200 has its row and its whole file; every file has a row; no partial file.
    files = dict(rows(stack, "SELECT stored_name, size_bytes FROM files"))
    for n, response in acked["upload"]:
        name = response.json()["url"].removeprefix("/uploads/")
        assert files.get(name) == 64 * 1024 + n
    on_disk = {name: (stack.uploads_dir / name).stat().st_size for name in os.listdir(stack.uploads_dir)}
    assert on_disk == files, (set(on_disk) ^ set(files))

    check_events_match_changes(stack, chat_id)
    assert integrity(stack) == ("ok", [])
    run(resume_has_no_gap(stack, member, since), timeout=60)
    run(resume_has_no_gap(stack, owner, since), timeout=60)


def test_kill_9_of_wsrelay_mid_write_for_sends_and_read_ops(stack):
    owner, member = new_user(stack, "wo"), new_user(stack, "wm")
    chat = helpers.ok_json(request(stack, "POST", "/chats", owner.token,
                                   json={"name": "relay kill", "participants": [member.id]}))
    chat_id = chat["id"]
    since = head_seq(stack)
    old_pid = stack.child_pids()["WSRelay"]

    async def scenario():
        acked: dict[str, int] = {}
        sent: list[str] = []
        read_acked: list[int] = []
        owner_ids: list[int] = []

        stop_at: list[float | None] = [None]

        def running() -> bool:
            return stop_at[0] is None or time.monotonic() < stop_at[0]

        async def sender(user, label):
            n = 0
            while running():
                client = await open_p2_retrying(stack, user)
                try:
                    while running():
                        nonce = f"{label}-{n}"
                        n += 1
                        sent.append(nonce)
                        await client.send({"chat_id": chat_id, "content": nonce, "nonce": nonce})
                        frame, _ = await client.recv_until(
                            lambda f: f.get("op") in ("ACK", "ERROR") and f.get("d", {}).get("nonce") == nonce, timeout=10)
                        if frame["op"] != "ACK":
                            continue
                        acked[nonce] = frame["d"]["id"]
                        owner_ids.append(frame["d"]["id"])
                except (AssertionError, ConnectionClosed, OSError):
                    await asyncio.sleep(0.05)  # the relay went away: reconnect
                finally:
                    await client.close()

        async def reader():
            """The member moves its marker to the owner's newest message with READ ops; its own
            READ event answers each."""
            tried: list[int] = [0]
            while running():
                client = await open_p2_retrying(stack, member)
                try:
                    while running():
                        if not owner_ids or owner_ids[-1] <= tried[-1]:
                            await asyncio.sleep(0.01)
                            continue
                        target = owner_ids[-1]
                        tried.append(target)
                        await client.send({"op": "READ", "d": {"chat_id": chat_id, "message_id": target}})
                        await client.recv_until(lambda f: f.get("op") == "READ" and
                                                f["d"].get("user_id") == member.id and
                                                f["d"].get("last_read_id") == target, timeout=10)
                        read_acked.append(target)
                except (AssertionError, ConnectionClosed, OSError):
                    await asyncio.sleep(0.05)
                finally:
                    await client.close()

        tasks = [asyncio.create_task(sender(owner, "wso")), asyncio.create_task(sender(owner, "wsp")),
                 asyncio.create_task(reader())]
        deadline = time.monotonic() + 20
        while len(acked) < 30 or len(read_acked) < 5:
            assert time.monotonic() < deadline, (len(acked), len(read_acked))
            await asyncio.sleep(0.05)
        os.kill(old_pid, signal.SIGKILL)
        stop_at[0] = time.monotonic() + 4
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        return acked, read_acked

    acked, read_acked = run(scenario(), timeout=90)
    assert stack.child_pids().get("WSRelay") not in (None, old_pid)
    stored = dict(rows(stack, "SELECT nonce, id FROM messages WHERE chat_id = ?", (chat_id,)))
    for nonce, message_id in acked.items():
        assert stored.get(nonce) == message_id, nonce
    marker = rows(stack, "SELECT last_read_id FROM chat_members WHERE chat_id = ? AND user_id = ?", (chat_id, member.id))[0][0]
    assert read_acked and marker >= max(read_acked)
    print(f"\nrelay kill: {len(acked)} sends ACKed, {len(read_acked)} READ ops answered")
    check_events_match_changes(stack, chat_id)
    assert integrity(stack) == ("ok", [])
    run(resume_has_no_gap(stack, member, since), timeout=60)
    run(resume_has_no_gap(stack, owner, since), timeout=60)

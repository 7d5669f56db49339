"""A full disk (issue 19): DATA_DIR is a 48 MB tmpfs (mounted by the test, as root), filled to
the last byte by a file of the test's own.

Uploads that no longer fit answer 507 {"error"} and leave no file behind (not even the hidden
partial one), and once the space is freed they are taken again — on either backend. On
SQLite, whose database is in DATA_DIR, message writes answer 503 {"error"} over REST and an
ERROR with the nonce over the WebSocket; reads keep answering; the database passes PRAGMA
integrity_check; and once the space is freed every write succeeds again on the same processes.
On PostgreSQL the database is elsewhere, so messages are still stored while DATA_DIR is full;
test_faults_disk_postgres.py fills the database's own disk. The mount is removed afterwards
whatever happens. ~20 s."""

from __future__ import annotations

import os
import sqlite3

import pytest

import database
import helpers
from faults_helpers import (db_file, fill, group_with_messages, integrity, new_user, own_stack, request,
                           small_filesystem, writes_succeed_again)
from stream_helpers import P2Client
from ws_helpers import run

SIZE = "48m"


@pytest.fixture(scope="module")
def small_disk():
    yield from small_filesystem(SIZE, "msgr-disk-")


@pytest.fixture(scope="module")
def stack(small_disk):
    yield from own_stack(data_dir=small_disk)


def all_upload_files(stack) -> list[str]:
    return sorted(os.listdir(stack.uploads_dir))


def upload(stack, user):
    return request(stack, "POST", "/upload?v=2", user.token,
                   files={"file": ("big.bin", os.urandom(2 << 20), "application/octet-stream")})


def test_full_disk_refuses_uploads_without_leftovers_and_takes_them_when_space_is_freed(stack):
    owner, member = new_user(stack, "uo"), new_user(stack, "um")
    chat_id, _ = group_with_messages(stack, owner, member)
    pids = stack.child_pids()
    uploads_before = all_upload_files(stack)
    filler = stack.data_dir / "filler.bin"
    fill(filler)
    try:
        # An upload that does not fit: 507, nothing left in uploads/ (hidden files included).
        helpers.assert_error(upload(stack, owner), 507, 413)
        assert all_upload_files(stack) == uploads_before
        if database.ON_POSTGRES:
            # The database is not on this disk: messages are still stored.
            helpers.ok_json(request(stack, "POST", f"/chats/{chat_id}/messages", owner.token,
                                    json={"content": "the database has room"}))
    finally:
        filler.unlink()

    receipt = helpers.ok_json(upload(stack, owner))
    assert receipt["size_bytes"] == 2 << 20
    assert len(all_upload_files(stack)) == len(uploads_before) + 1
    assert stack.child_pids() == pids, "a process was restarted"


@database.sqlite_only
def test_full_disk_refuses_writes_cleanly_and_recovers_when_space_is_freed(stack):
    owner, member = new_user(stack, "do"), new_user(stack, "dm")
    chat_id, _ = group_with_messages(stack, owner, member)
    pids = stack.child_pids()

    async def scenario():
        ws = await P2Client.open(stack, owner)
        # An empty WAL: the first commit after the fill needs new blocks at once.
        connection = sqlite3.connect(str(db_file(stack)), timeout=10)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
        filler = stack.data_dir / "filler.bin"
        fill(filler)
        try:
            # REST message writes: 503 {"error"} (none half there: checked below).
            refused = []
            for index in range(20):
                response = request(stack, "POST", f"/chats/{chat_id}/messages", owner.token,
                                   json={"content": f"on a full disk {index}"})
                assert response.status_code in (200, 503), (response.status_code, response.text[:300])
                if response.status_code == 503:
                    body = helpers.assert_error(response, 503)
                    assert "disk" in body["error"], body
                    refused.append(index)
            assert refused == list(range(20)), f"only {refused} of 20 refused on a full disk"
            # Other write kinds too.
            response = request(stack, "PATCH", "/users/me", member.token, json={"display_name": "full"})
            helpers.assert_error(response, 503)

            # WebSocket sends: an ERROR with each nonce.
            nonces = [f"disk-{n}" for n in range(3)]
            for nonce in nonces:
                await ws.send({"chat_id": chat_id, "content": f"ws {nonce}", "nonce": nonce})
            answers = {}
            while len(answers) < len(nonces):
                frame = await ws.recv(timeout=15)
                assert frame.get("op") == "ERROR", frame
                answers[frame["d"]["nonce"]] = frame["d"]["message"]
            assert sorted(answers) == sorted(nonces)
            assert all("disk" in message for message in answers.values()), answers

            # Reads still answer.
            page = helpers.ok_json(request(stack, "GET", f"/chats/{chat_id}/messages?v=2", member.token))
            assert [m["content"] for m in page["messages"]] == ["seed 0", "seed 1"]
            assert integrity(stack) == ("ok", [])
        finally:
            filler.unlink()

        # Space is back: every write kind succeeds, on the same processes.
        message, _ = await writes_succeed_again(stack, owner, member, chat_id, ws, "disk-after")
        await ws.close()
        return message

    message = run(scenario(), timeout=120)
    assert stack.child_pids() == pids, "a process was restarted"
    page = helpers.ok_json(request(stack, "GET", f"/chats/{chat_id}/messages?v=2", member.token))
    assert [m["content"] for m in page["messages"]] == ["seed 0", "seed 1", "after the disk was freed", "ws after"]
    assert page["messages"][2]["id"] == message["id"]
    assert integrity(stack) == ("ok", [])

"""A full disk on PostgreSQL (issues 19 and 20, the PostgreSQL pass only): the stack's tables
and indexes are in a tablespace on a 24 MB tmpfs (mounted by the test, as root, and given to
the cluster's user), filled to the last byte by a file of the test's own. The catalogs and
the WAL stay on the cluster's own disk: PostgreSQL stops (PANIC) when it cannot write its WAL,
and refuses a statement (53100 disk_full) when a table or index cannot grow.

Unlike SQLite's WAL, a table grows only when its last page is full, so the writes that still
fit pages PostgreSQL had already allocated are stored and acknowledged; from the first that
needs a new page on, every message write answers 503 {"error"} over REST and an ERROR with
its nonce over the WebSocket, and so does a profile change once the event stream cannot grow.
Reads keep answering; every acknowledged write is there and delivered, nothing refused is
(not in messages, the event stream or the search index); once the space is freed every write
succeeds again on the same processes, and a checkpoint while the disk is full succeeds (the
cluster stays healthy for its other databases). The mount and the tablespace are removed
afterwards whatever happens. ~5 s."""

from __future__ import annotations

import os
import uuid

import pytest

import database
import helpers
from faults_helpers import (fill, group_with_messages, integrity, new_user, own_stack, request, small_filesystem,
                           writes_succeed_again)
from stream_helpers import P2Client
from ws_helpers import run

pytestmark = pytest.mark.skipif(not database.ON_POSTGRES, reason="PostgreSQL only (E2E_BACKEND=postgres)")

SIZE = "24m"
# Writes that may still fit allocated pages before the first refusal (7 of these messages here).
MAX_FITTING = 400
# A message of about 1 kB: the room left in the pages goes in a few writes, none TOASTed.
PADDING = " " + "x" * 1000


@pytest.fixture(scope="module")
def small_disk():
    yield from small_filesystem(SIZE, "msgr-pgdisk-")


@pytest.fixture(scope="module")
def tablespace(small_disk):
    """The name of a tablespace on the small disk, owned by the role the stacks connect as,
    dropped afterwards (after the stack's database)."""
    location = small_disk / "tablespace"
    location.mkdir()
    name = "e2e_disk_" + uuid.uuid4().hex[:12]
    with database._admin() as admin:
        # The server writes there as the user it runs as: the owner of its data directory.
        owner = os.stat(admin.execute("SHOW data_directory").fetchone()[0])
        os.chown(location, owner.st_uid, owner.st_gid)
        admin.execute(f"CREATE TABLESPACE {name} OWNER messenger LOCATION '{location}'")
    try:
        yield name
    finally:
        with database._admin() as admin:
            admin.execute(f"DROP TABLESPACE IF EXISTS {name}")


@pytest.fixture(scope="module")
def stack(tablespace):
    yield from own_stack("msgr-pgdisk-", tablespace=tablespace)


def checkpoint() -> None:
    """Writes every changed page the server holds to its file (or raises)."""
    with database._admin() as admin:
        admin.execute("CHECKPOINT")


def post(stack, user, chat_id: int, content: str):
    response = request(stack, "POST", f"/chats/{chat_id}/messages", user.token, json={"content": content})
    assert response.status_code in (200, 503), (response.status_code, response.text[:300])
    return response


def assert_refused_for_a_full_disk(response) -> None:
    body = helpers.assert_error(response, 503)
    assert "disk" in body["error"], body


def until_refused(call, what: str) -> list[dict]:
    """Calls `call(index)` until it answers 503; returns the bodies it acknowledged before."""
    acknowledged = []
    for index in range(MAX_FITTING):
        response = call(index)
        if response.status_code == 503:
            assert_refused_for_a_full_disk(response)
            return acknowledged
        acknowledged.append(helpers.ok_json(response))
    pytest.fail(f"{what}: {MAX_FITTING} acknowledged on a full disk, none refused")


def test_full_database_disk_refuses_writes_cleanly_keeps_what_it_acknowledged_and_recovers(stack, small_disk,
                                                                                           tablespace):
    elsewhere = database.rows(stack, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                     "AND tablespace IS DISTINCT FROM ? UNION ALL "
                                     "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                                     "AND tablespace IS DISTINCT FROM ?", (tablespace, tablespace))
    assert elsewhere == [], f"tables and indexes outside tablespace {tablespace}: {elsewhere}"
    owner, member = new_user(stack, "go"), new_user(stack, "gm")
    chat_id, seeds = group_with_messages(stack, owner, member)
    pids = stack.child_pids()

    async def scenario():
        ws = await P2Client.open(stack, owner)
        watcher = await P2Client.open(stack, member)
        filler = small_disk / "filler.bin"
        fill(filler)
        try:
            # REST message writes: the ones that still fit are stored; after the first refusal
            # every one is refused.
            fitted = until_refused(lambda n: post(stack, owner, chat_id, f"fits {n}{PADDING}"), "messages")
            for index in range(20):
                assert_refused_for_a_full_disk(post(stack, owner, chat_id, f"refused {index}{PADDING}"))

            # WebSocket sends: an ERROR with each nonce.
            nonces = [f"pgdisk-{n}" for n in range(3)]
            for nonce in nonces:
                await ws.send({"chat_id": chat_id, "content": f"ws {nonce}", "nonce": nonce})
            answers = {}
            while len(answers) < len(nonces):
                frame = await ws.recv(timeout=15)
                if frame.get("op") == "MESSAGE":  # the acknowledged REST writes, delivered
                    continue
                assert frame.get("op") == "ERROR", frame
                answers[frame["d"]["nonce"]] = frame["d"]["message"]
            assert sorted(answers) == sorted(nonces)
            assert all("disk" in message for message in answers.values()), answers

            # A profile change appends a USER event: refused once the event stream cannot grow.
            profiles = until_refused(lambda n: request(stack, "PATCH", "/users/me", member.token,
                                                       json={"display_name": f"full {n}"}), "profile changes")
            for index in range(5):
                assert_refused_for_a_full_disk(request(stack, "PATCH", "/users/me", member.token,
                                                       json={"display_name": f"refused {index}"}))

            # Reads still answer, with exactly what was acknowledged.
            page = helpers.ok_json(request(stack, "GET", f"/chats/{chat_id}/messages?v=2&limit=1000", member.token))
            assert [m["id"] for m in page["messages"]] == seeds + [m["id"] for m in fitted]
            helpers.ok_json(request(stack, "GET", "/chats?v=2", member.token))
            me = helpers.ok_json(request(stack, "GET", f"/users/{member.id}", member.token))
            assert me["display_name"] == (profiles[-1]["display_name"] if profiles else None), me
            assert integrity(stack) == ("ok", [])
            # The cluster stays healthy: a page is written when a table grows, so a checkpoint
            # only rewrites blocks the filesystem already holds.
            checkpoint()
        finally:
            filler.unlink()

        # Space is back: every write kind succeeds, on the same processes.
        after, frame = await writes_succeed_again(stack, owner, member, chat_id, ws, "pgdisk-after")

        # The member's socket got every acknowledged message, in order, and nothing refused.
        delivered = [f["d"]["id"] for f in await watcher.events_through(database.head_seq(stack), timeout=15)
                     if f["op"] == "MESSAGE"]
        assert delivered == [m["id"] for m in fitted] + [after["id"], frame["d"]["id"]]
        await ws.close()
        await watcher.close()
        return fitted, after

    fitted, after = run(scenario(), timeout=180)
    assert stack.child_pids() == pids, "a process was restarted"
    stored = seeds + [m["id"] for m in fitted] + [after["id"]]
    page = helpers.ok_json(request(stack, "GET", f"/chats/{chat_id}/messages?v=2&limit=1000", member.token))
    assert [m["id"] for m in page["messages"]][:-1] == stored
    assert [m["content"] for m in page["messages"]][-1] == "ws after"
    # Nothing refused is half there: no row, no event, no search entry of its own.
    ids = [m["id"] for m in page["messages"]]
    assert database.rows(stack, "SELECT id FROM messages WHERE chat_id = ? ORDER BY id", (chat_id,)) == [(i,) for i in ids]
    assert database.rows(stack, "SELECT message_id FROM events WHERE chat_id = ? AND op = 'MESSAGE' ORDER BY seq",
                         (chat_id,)) == [(i,) for i in ids]
    assert database.rows(stack, "SELECT message_id FROM messages_fts WHERE chat_id = ? ORDER BY message_id",
                         (chat_id,)) == [(i,) for i in ids]
    assert integrity(stack) == ("ok", [])

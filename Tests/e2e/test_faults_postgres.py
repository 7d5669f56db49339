"""PostgreSQL faults (issue 20, the PostgreSQL pass only).

The server ends every connection of the apps (as a restart or a failover does), then refuses
new ones for a while. When the connections are cut, the next requests go to new ones without a
single error, and a socket keeps receiving (the relay's storage and LISTEN connections reopen).
While the database refuses connections, REST answers 503 {"error"} at once (not 500, not a
hang), a WebSocket send gets ERROR with its nonce, and once it accepts them again everything
works on the same processes.

A relay that misses a NOTIFY still catches up from the event stream: a message committed from
outside the apps, with the Store's own statements but no NOTIFY and no datagram, reaches a
connected protocol-2 socket and a resumed one within 2 s (the relay's 250 ms poll), once the
relay's LISTEN connection has settled (one that reconnects wakes the relay once) and our own
LISTEN has heard nothing. ~5 s."""

from __future__ import annotations

import asyncio
import time

import pytest

import database
import helpers
from faults_helpers import group_with_messages, new_user, own_stack, request
from stream_helpers import P2Client
from ws_helpers import run

pytestmark = pytest.mark.skipif(not database.ON_POSTGRES, reason="PostgreSQL only (E2E_BACKEND=postgres)")

# What the Store's write transactions NOTIFY at commit (PostgresListener.eventsChannel).
CHANNEL = "messenger_events"


@pytest.fixture(scope="module")
def stack():
    yield from own_stack("msgr-pgfault-")


def database_name(stack) -> str:
    return stack.database_url.split("?", 1)[0].rsplit("/", 1)[1]


def cut_connections(stack) -> int:
    """Ends every connection to the stack's database and waits until their backends are gone
    (each has told its client so on the socket); returns how many there were."""
    name = database_name(stack)
    with database._admin() as admin:
        pids = [row[0] for row in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchall()]
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 10
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)).fetchone()[0]:
            assert time.monotonic() < deadline, "terminated backends did not exit"
            time.sleep(0.05)
    return len(pids)


def allow_connections(stack, allowed: bool) -> None:
    with database._admin() as admin:
        admin.execute(f"ALTER DATABASE {database_name(stack)} WITH ALLOW_CONNECTIONS {str(allowed).lower()}")


def test_cut_connections_reopen_and_a_refusing_database_answers_503_then_recovers(stack):
    owner, member = new_user(stack, "po"), new_user(stack, "pm")
    chat_id, _ = group_with_messages(stack, owner, member)
    pids = stack.child_pids()

    async def scenario():
        ws = await P2Client.open(stack, member)

        # Every connection cut: the next requests and sends all succeed, on new connections.
        assert cut_connections(stack) >= 3, "expected the apps' and the relay's connections"
        for n in range(10):
            response = request(stack, "POST", f"/chats/{chat_id}/messages", owner.token, json={"content": f"after cut {n}"})
            assert response.status_code == 200, (n, response.status_code, response.text[:300])
            assert request(stack, "GET", "/chats?v=2", member.token).status_code == 200
        for n in range(10):
            frame, _ = await ws.recv_until(lambda f: f.get("op") == "MESSAGE" and f["d"].get("content") == f"after cut {n}",
                                           timeout=10)
        await ws.send({"chat_id": chat_id, "content": "ws after cut", "nonce": "pg-cut"})
        frame, _ = await ws.recv_until(lambda f: f.get("op") in ("ACK", "ERROR") and f["d"].get("nonce") == "pg-cut",
                                       timeout=10)
        assert frame["op"] == "ACK", frame

        # The database refuses connections: 503 {"error"} at once, an ERROR for a send.
        allow_connections(stack, False)
        try:
            cut_connections(stack)
            started = time.monotonic()
            for method, path, body in [("POST", f"/chats/{chat_id}/messages", {"content": "refused"}),
                                       ("GET", "/chats?v=2", None), ("GET", f"/chats/{chat_id}/messages", None)]:
                response = request(stack, method, path, owner.token, json=body)
                assert response.status_code == 503, (path, response.status_code, response.text[:300])
                assert "unavailable" in helpers.assert_error(response, 503)["error"]
            assert time.monotonic() - started < 5, "a refused connection must fail at once, not hang"
            await ws.send({"chat_id": chat_id, "content": "ws refused", "nonce": "pg-refused"})
            frame, _ = await ws.recv_until(lambda f: f.get("op") in ("ACK", "ERROR") and f["d"].get("nonce") == "pg-refused",
                                           timeout=10)
            assert frame["op"] == "ERROR", frame
        finally:
            allow_connections(stack, True)

        # Accepted again: everything works on the same processes, and nothing refused was stored.
        response = request(stack, "POST", f"/chats/{chat_id}/messages", owner.token, json={"content": "recovered"})
        assert response.status_code == 200, (response.status_code, response.text[:300])
        frame, _ = await ws.recv_until(lambda f: f.get("op") == "MESSAGE" and f["d"].get("content") == "recovered",
                                       timeout=10)
        page = helpers.ok_json(request(stack, "GET", f"/chats/{chat_id}/messages?limit=1000", owner.token))
        contents = [m["content"] for m in page["messages"]]
        assert "refused" not in contents and "ws refused" not in contents
        assert "ws after cut" in contents and "recovered" in contents
        await ws.close()

    run(scenario(), timeout=90)
    assert stack.child_pids() == pids, "a process was restarted"


def store_unannounced(stack, sender_id: int, chat_id: int, content: str) -> tuple[int, int]:
    """Stores a message from outside the apps with the statements `Store.post` runs on
    PostgreSQL (Sources/Storage/Queries/Store+Messages.swift: the write lock first, the
    message, the sender's read marker, its MESSAGE event, the search index) in one
    transaction, and nothing else: no NOTIFY before the commit (the Store's connection adds
    it, not the schema) and no datagram (FCGIApp sends those after its own commits). Returns
    (message id, seq)."""
    import psycopg  # only the PostgreSQL pass needs it (database.py)

    created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with psycopg.connect(stack.database_url) as connection:  # committed as the block ends
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (database.POSTGRES_WRITE_LOCK,))
        message_id = connection.execute(
            "INSERT INTO messages (chat_id, sender_id, content, nonce, reply_to_id, created_at) "
            "VALUES (%s, %s, %s, NULL, NULL, %s) RETURNING id", (chat_id, sender_id, content, created_at)).fetchone()[0]
        connection.execute("UPDATE chat_members SET last_read_id = %s WHERE chat_id = %s AND user_id = %s",
                           (message_id, chat_id, sender_id))
        seq = connection.execute(
            "INSERT INTO events (op, audience, chat_id, user_id, message_id, data) "
            "VALUES ('MESSAGE', 'chat', %s, NULL, %s, NULL) RETURNING seq", (chat_id, message_id)).fetchone()[0]
        connection.execute("SELECT messenger_index_for_search(ARRAY[%s]::bigint[])", (message_id,))
    return message_id, seq


def wait_listener_settled(stack, ours: int, settled: float = 1.0) -> None:
    """Waits until the relay's LISTEN connection (any but the backend `ours`) has been open for
    `settled` seconds: one that (re)connects wakes the relay once, for whatever it missed
    meanwhile (PostgresListener), which would find a commit made just then without the poll."""
    name = database_name(stack)
    deadline = time.monotonic() + 15
    while True:
        with database._admin() as admin:
            ages = [row[0] for row in admin.execute(
                "SELECT extract(epoch FROM now() - backend_start) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> %s AND state = 'idle' AND query = %s",
                (name, ours, f"LISTEN {CHANNEL}")).fetchall()]
        if len(ages) == 1 and ages[0] >= settled:
            return
        assert time.monotonic() < deadline, f"the relay's LISTEN connection did not settle: ages {ages}"
        time.sleep(0.1)


def test_a_commit_nobody_announces_reaches_live_and_resumed_sockets_by_the_poll(stack):
    owner, member = new_user(stack, "pn"), new_user(stack, "pr")
    chat_id, _ = group_with_messages(stack, owner, member)
    seeded = database.head_seq(stack)
    pids = stack.child_pids()
    bound = 2.0

    async def scenario():
        import psycopg

        live = await P2Client.open(stack, member)
        resumed = await P2Client.open(stack, owner, since=seeded - 2)  # replays the two seeds
        assert [f["d"]["content"] for f in await resumed.events_through(seeded)] == ["seed 0", "seed 1"]

        # Our own LISTEN on the relays' channel, heard working: an app's commit notifies it.
        with psycopg.connect(stack.database_url, autocommit=True) as listener:
            listener.execute(f"LISTEN {CHANNEL}")
            helpers.ok_json(request(stack, "POST", f"/chats/{chat_id}/messages", owner.token, json={"content": "heard"}))
            assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == [CHANNEL]
            head = database.head_seq(stack)
            for ws in (live, resumed):
                assert (await ws.events_through(head))[-1]["d"]["content"] == "heard"
            # Past the second hint of that commit (its datagram and its NOTIFY each wake the
            # relay, whichever comes later a moment after the first), which would otherwise
            # start a round that finds the next commit too.
            await asyncio.sleep(0.5)
            wait_listener_settled(stack, ours=listener.info.backend_pid)

            # Committed unannounced: the relay hears nothing, and delivers it anyway.
            started = time.monotonic()
            message_id, seq = store_unannounced(stack, owner.id, chat_id, "nobody told the relay")
            for ws in (live, resumed):
                frames = await ws.events_through(seq, timeout=max(0.01, started + bound - time.monotonic()))
                assert [(f["op"], f["seq"], f["d"]["id"]) for f in frames] == [("MESSAGE", seq, message_id)], frames
                assert frames[0]["d"]["content"] == "nobody told the relay"
            elapsed = time.monotonic() - started
            assert elapsed < bound, elapsed
            heard = [(n.channel, n.payload) for n in listener.notifies(timeout=0.2)]
            assert heard == [], f"something notified {CHANNEL} meanwhile: the delivery says nothing of the poll: {heard}"
        await live.close()
        await resumed.close()

    run(scenario(), timeout=60)
    assert stack.child_pids() == pids, "a process was restarted"
    page = helpers.ok_json(request(stack, "GET", f"/chats/{chat_id}/messages", member.token))
    assert [m["content"] for m in page["messages"]] == ["seed 0", "seed 1", "heard", "nobody told the relay"]

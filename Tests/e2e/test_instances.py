"""Issue 20, several instances on one database: a stack of 2 FCGIApps × 2 WSRelays behind
nginx's upstream blocks (FCGI_INSTANCES=2, RELAY_INSTANCES=2), end to end.

A client on relay 1 receives what was sent through relay 2 or either FCGIApp; TYPING and
presence cross relays too; killing relay 1 moves its clients (reconnecting through nginx) to
relay 2 and they resume with no gap; the send limit is one bucket across all four processes;
/healthz names the relay that is down. Which relay took a socket is read off its 101's
`X-Relay-Instance` header, sent only when there are several."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any, Callable

import pytest
import requests

import conftest
import helpers
from helpers import Api, ok_json, wait_for
from stream_helpers import P2Client, visible_events
from ws_helpers import RECV_TIMEOUT, is_op, run

SEND_RATE, SEND_BURST = 1.0, 20
PRESENCE_WAIT = 7.5  # a PRESENCE deferred by the 5 s rule goes out when the window ends


@pytest.fixture(scope="module")
def multi():
    own = conftest.start_stack_once("instances", prefix="msgr-e2e-multi-", FCGI_INSTANCES="2", RELAY_INSTANCES="2",
                                    RATE_SEND=f"{SEND_RATE:g}/{SEND_BURST}")
    yield own
    try:
        conftest.stop_stack(own)
    finally:
        conftest.cleanup_stack(own)


@pytest.fixture()
def api(multi) -> Api:
    return Api(multi.base_url)


def instance_pids(stack) -> dict[str, int]:
    """scripts/run's FCGIApp and WSRelay children by name and instance: "WSRelay-2" etc."""
    found = {}
    for pid in helpers.child_pids(stack.proc.pid):
        cmd = helpers.cmdline(pid)
        program = os.path.basename(cmd[0]) if cmd else ""
        if program not in ("FCGIApp", "WSRelay"):
            continue
        try:
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        instance = next((e[len(b"INSTANCE="):].decode() for e in environ if e.startswith(b"INSTANCE=")), "1")
        found[f"{program}-{instance}"] = pid
    return found


def relay_of(client: P2Client) -> int:
    return int(client.ws.response.headers["X-Relay-Instance"])


async def open_on(stack, user, instance: int, since: int | None = None, timeout: float = 15.0) -> P2Client:
    """A protocol-2 socket through nginx that landed on relay `instance` (nginx chooses; the
    others are closed and opened again; a relay nginx saw fail is skipped for a few seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = await P2Client.open(stack, user, "query", since)
        if relay_of(client) == instance:
            client.label = f"{user.username}@relay{instance}"
            return client
        await client.close()
        await asyncio.sleep(0.05)
    raise AssertionError(f"nginx never chose relay {instance} within {timeout}s")


async def until(client: P2Client, predicate: Callable[[Any], bool], timeout: float = RECV_TIMEOUT,
                what: str = "a frame") -> dict:
    """The first frame (event or ephemeral) matching `predicate`, ephemeral ones set aside
    before included."""
    deadline = time.monotonic() + timeout
    while True:
        for frame in client.ephemeral:
            if predicate(frame):
                client.ephemeral.remove(frame)
                return frame
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{client.label}: no {what} within {timeout}s"
        try:
            frame = await client.recv(min(remaining, 0.2))
        except (AssertionError, asyncio.TimeoutError):
            continue
        if isinstance(frame, dict) and "seq" in frame:
            client.check_event(frame)
        if predicate(frame):
            return frame


async def assert_each_saw_all_it_may_see(stack, clients) -> None:
    """Each (P2Client, user) of `clients`, once quiet, saw every event up to its last that the
    database says its user may see: none missing (P2Client itself checks they came in order)."""
    for client, user in clients:
        await client.expect_silence(0.5)
        seen = [f["seq"] for f in client.seen]
        wanted = [seq for seq in visible_events(stack, user.id, client.ready_seq) if seq <= client.last]
        assert seen == wanted, (client.label, seen, wanted)


async def none_within(client: P2Client, predicate: Callable[[Any], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            await client.recv(min(remaining, 0.2))
        except (AssertionError, asyncio.TimeoutError):
            pass
        assert not any(predicate(f) for f in client.ephemeral), f"{client.label}: got {what}: {client.ephemeral}"


def is_message(content: str) -> Callable[[Any], bool]:
    return lambda f: isinstance(f, dict) and f.get("op") == "MESSAGE" and f["d"].get("content") == content


def is_typing(chat_id: int, user_id: int) -> Callable[[Any], bool]:
    return lambda f: isinstance(f, dict) and f.get("op") == "TYPING" and f["d"] == {"chat_id": chat_id, "user_id": user_id}


def is_presence(user_id: int, online: bool) -> Callable[[Any], bool]:
    return lambda f: (isinstance(f, dict) and f.get("op") == "PRESENCE" and f["d"]["user_id"] == user_id
                      and f["d"]["online"] is online)


def direct(api: Api, a, b) -> int:
    return api.initiate(a.token, target_username=b.username)["chat_id"]


def presence_of(api: Api, viewer, user_id: int) -> dict:
    entries = ok_json(api.get(f"/presence?user_ids={user_id}", viewer.token))
    assert len(entries) == 1, entries
    return entries[0]


def test_sockets_spread_over_both_relays_and_both_apps_serve(multi, api):
    user = api.new_user("spread")

    async def scenario():
        clients = [await P2Client.open(multi, user, "query") for _ in range(8)]
        relays = {relay_of(c) for c in clients}
        for c in clients:
            await c.close()
        return relays

    assert run(scenario()) == {1, 2}
    # Both FCGIApps answer: each one's log has requests, after a burst through nginx.
    for _ in range(20):
        ok_json(api.get("/chats", user.token))
    text = multi.output_path.read_text(encoding="utf-8", errors="replace")
    assert "FCGIApp-1: request" in text and "FCGIApp-2: request" in text
    assert set(instance_pids(multi)) == {"FCGIApp-1", "FCGIApp-2", "WSRelay-1", "WSRelay-2"}


def test_each_instance_has_its_own_metrics(multi, api):
    """/metrics/fcgi and /metrics/relay are instance 1, /metrics/fcgi/2 and /metrics/relay/2
    instance 2: each relay's open-sockets gauge counts exactly the sockets it took."""
    from test_ops_metrics import get_from, scrape

    user = api.new_user("metrics")

    async def scenario():
        clients = [await P2Client.open(multi, user, "query") for _ in range(8)]
        taken = {n: sum(relay_of(c) == n for c in clients) for n in (1, 2)}
        # Sockets of the tests before may still be closing: until the gauges settle.
        deadline = time.monotonic() + 10
        while True:
            gauges = {n: scrape(multi, "relay" if n == 1 else f"relay/{n}").value("messenger_ws_open_sockets")
                      for n in (1, 2)}
            if gauges == taken or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        for c in clients:
            await c.close()
        return taken, gauges

    taken, gauges = run(scenario())
    assert min(taken.values()) > 0, taken
    assert gauges == taken, (taken, gauges)
    for which in ("fcgi", "fcgi/2"):
        assert scrape(multi, which).value("messenger_process_heap_in_use_bytes") > 0
    # An instance the deployment does not run: nginx's JSON 502, not another instance's metrics.
    status, _, body = get_from(multi, "/metrics/relay/3")
    assert status == 502 and b'"error"' in body, (status, body)


def test_a_message_reaches_the_other_relay_whichever_way_it_was_sent(multi, api):
    alice, bob = api.new_user("xa"), api.new_user("xb")
    chat_id = direct(api, alice, bob)

    async def scenario():
        a = await open_on(multi, alice, 1)
        b = await open_on(multi, bob, 2)
        latencies = []
        try:
            for index in range(5):
                # alice's socket on relay 1 → bob on relay 2, and back.
                started = time.monotonic()
                await a.send({"chat_id": chat_id, "content": f"r1→r2 {index}", "nonce": f"n1-{index}"})
                await until(b, is_message(f"r1→r2 {index}"), what="alice's message")
                latencies.append(time.monotonic() - started)
                await b.send({"chat_id": chat_id, "content": f"r2→r1 {index}", "nonce": f"n2-{index}"})
                await until(a, is_message(f"r2→r1 {index}"), what="bob's message")
                # REST, through whichever FCGIApp nginx chose: both sockets.
                api.send(alice.token, chat_id, f"rest {index}")
                await until(a, is_message(f"rest {index}"), what="the REST message")
                await until(b, is_message(f"rest {index}"), what="the REST message")
            await assert_each_saw_all_it_may_see(multi, ((a, alice), (b, bob)))
        finally:
            await a.close()
            await b.close()
        return latencies

    latencies = sorted(run(scenario()))
    # Told at once by a notification, not found by the other relay's 250 ms poll.
    assert latencies[len(latencies) // 2] < 0.2, latencies


def test_typing_crosses_relays_only_to_members_and_is_throttled(multi, api):
    alice, bob, stranger = api.new_user("ta"), api.new_user("tb"), api.new_user("ts")
    chat_id = direct(api, alice, bob)
    direct(api, stranger, alice)  # a contact of alice's, not in this chat

    async def scenario():
        a = await open_on(multi, alice, 1)
        b = await open_on(multi, bob, 2)
        s = await open_on(multi, stranger, 2)
        try:
            await a.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            await until(b, is_typing(chat_id, alice.id), what="alice's TYPING")
            await none_within(s, lambda f: f.get("op") == "TYPING", 0.5, "a TYPING of a chat not his")
            # Within 2 s of the forwarded one: dropped on relay 1, so nothing reaches relay 2.
            await a.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            await none_within(b, is_typing(chat_id, alice.id), 1.0, "a second TYPING within 2 s")
            await asyncio.sleep(1.2)
            await a.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            await until(b, is_typing(chat_id, alice.id), what="the TYPING after the window")
            # A resume never replays it.
            b2 = await open_on(multi, bob, 1, since=b.ready_seq)
            await none_within(b2, lambda f: f.get("op") == "TYPING", 0.5, "a replayed TYPING")
            await b2.close()
        finally:
            for c in (a, b, s):
                await c.close()

    run(scenario())


def test_presence_is_the_union_of_both_relays_and_crosses_them(multi, api):
    carol, dave, stranger = api.new_user("pc"), api.new_user("pd"), api.new_user("px")
    direct(api, carol, dave)

    async def scenario():
        c = await open_on(multi, carol, 2)
        try:
            d1 = await open_on(multi, dave, 1)
            online = await until(c, is_presence(dave.id, True), timeout=3, what="dave online (from relay 1)")
            assert online["d"]["last_seen"] is not None
            assert presence_of(api, carol, dave.id)["online"] is True
            d2 = await open_on(multi, dave, 2)
            await d1.close()
            # Still online through relay 2: no frame, and GET /presence agrees.
            await none_within(c, is_presence(dave.id, False), 1.0, "dave offline while a socket is open")
            assert presence_of(api, carol, dave.id)["online"] is True
            await d2.close()
            offline = await until(c, is_presence(dave.id, False), timeout=PRESENCE_WAIT, what="dave offline")
            assert offline["d"]["last_seen"] is not None
            assert wait_for(lambda: presence_of(api, carol, dave.id)["online"] is False, timeout=3)
            # A stranger learns nothing about dave.
            assert ok_json(api.get(f"/presence?user_ids={dave.id}", stranger.token)) == []
        finally:
            await c.close()

    run(scenario())


def test_killing_a_relay_moves_its_clients_to_the_other_and_they_resume_with_no_gap(multi, api):
    alice, bob = api.new_user("fa"), api.new_user("fb")
    chat_id = direct(api, alice, bob)
    relay_one = instance_pids(multi)["WSRelay-1"]

    async def scenario():
        b = await open_on(multi, bob, 1)
        api.send(alice.token, chat_id, "before")
        await until(b, is_message("before"), what="the first message")
        since = b.last
        os.kill(relay_one, signal.SIGKILL)
        # Sent while relay 1 is down, through either FCGIApp.
        sent = [api.send(alice.token, chat_id, f"during {i}")["id"] for i in range(3)]
        # The client reconnects at once through nginx, which passes the refused connection on.
        deadline = time.monotonic() + 5
        while True:
            try:
                moved = await P2Client.open(multi, bob, "query", since)
                break
            except Exception:  # noqa: BLE001 — the socket may be refused for a moment
                assert time.monotonic() < deadline, "no relay took the reconnect"
                await asyncio.sleep(0.05)
        try:
            instance = relay_of(moved)
            frames = await moved.events_through(max(visible_events(multi, bob.id, since)), timeout=10)
            got = [f["d"]["id"] for f in frames if f["op"] == "MESSAGE"]
            assert got == sent, (got, sent)
            wanted = list(visible_events(multi, bob.id, since))
            assert [f["seq"] for f in frames] == wanted
        finally:
            await moved.close()
            await b.close()
        return instance

    assert run(scenario()) == 2
    # scripts/run brings relay 1 back, and nginx uses it again.
    assert wait_for(lambda: instance_pids(multi).get("WSRelay-1") not in (None, relay_one), timeout=15)
    assert wait_for(lambda: requests.get(multi.base_url + "/healthz", timeout=5).status_code == 200, timeout=15)


def test_one_send_limit_across_both_apps_and_both_relays(multi, api):
    sender, peer = api.new_user("ls"), api.new_user("lp")
    chat_id = direct(api, sender, peer)
    per_path = 15

    async def scenario():
        r1 = await open_on(multi, sender, 1)
        r2 = await open_on(multi, sender, 2)
        started = time.monotonic()
        answers = {"ok": 0, "limited": 0}
        try:
            for index in range(per_path):
                for client in (r1, r2):
                    nonce = f"{client.label}-{index}"
                    await client.send({"chat_id": chat_id, "content": nonce, "nonce": nonce})
                response = api.post(f"/chats/{chat_id}/messages", sender.token, json={"content": f"rest {index}"})
                assert response.status_code in (200, 429), response.text
                answers["ok" if response.status_code == 200 else "limited"] += 1
            for client in (r1, r2):
                for _ in range(per_path):
                    frame = await until(client, lambda f: is_op(f, "ACK") or is_op(f, "ERROR"), what="an answer")
                    answers["ok" if is_op(frame, "ACK") else "limited"] += 1
        finally:
            await r1.close()
            await r2.close()
        return answers, time.monotonic() - started

    answers, elapsed = run(scenario())
    assert answers["ok"] + answers["limited"] == 3 * per_path
    # One bucket: the burst plus what refilled meanwhile, not four bursts.
    assert SEND_BURST <= answers["ok"] <= SEND_BURST + SEND_RATE * elapsed + 1, (answers, elapsed)


def test_healthz_names_the_relay_that_is_down(multi, api):
    relay_two = instance_pids(multi)["WSRelay-2"]
    os.kill(relay_two, signal.SIGSTOP)
    try:
        response = requests.get(multi.base_url + "/healthz", timeout=10)
        assert response.status_code == 503
        assert response.json() == {"status": "down", "database": "ok", "relay": "down", "relays_down": [2]}
        # REST goes on meanwhile.
        user = api.new_user("hz")
        ok_json(api.get("/chats", user.token))
    finally:
        os.kill(relay_two, signal.SIGCONT)
    assert wait_for(lambda: requests.get(multi.base_url + "/healthz", timeout=5).status_code == 200, timeout=10)


def test_a_killed_app_instance_is_passed_over_and_restarted(multi, api):
    user = api.new_user("fk")
    app_two = instance_pids(multi)["FCGIApp-2"]
    os.kill(app_two, signal.SIGKILL)
    # nginx passes refused connections to FCGIApp 1: no request fails meanwhile.
    for _ in range(20):
        assert api.get("/chats", user.token).status_code == 200
    assert wait_for(lambda: instance_pids(multi).get("FCGIApp-2") not in (None, app_two), timeout=15)

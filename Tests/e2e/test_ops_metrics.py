"""Operations end to end (issue 12): Prometheus metrics of both processes through nginx, who may
read them, GET /healthz and the supervisor's use of it, request ids in every log, JSON logs,
and no token or message text in any log.

One stack of this module's own (a relay is stopped and killed here), started with
LOG_FORMAT=json, METRICS_ALLOW naming one extra address, and a 1 s health check that restarts
a part after two failures. The refusal test adds two addresses to `lo` (root only) and removes
them afterwards.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import cleanup_stack, start_stack_once, stop_stack
import database
from helpers import TIMEOUT, Api, assert_keys, ok_json, wait_for
from ws_helpers import Client, open_ws, relay_pid, run, ws_url

REFUSED_ADDRESS = "10.200.0.1"
ALLOWED_ADDRESS = "10.200.0.2"

UPGRADE_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')

FCGI_METRICS = {
    "messenger_http_requests_total": "counter",
    "messenger_http_request_duration_seconds": "histogram",
    "messenger_db_commit_duration_seconds": "histogram",
    "messenger_db_commit_batch_size": "histogram",
    "messenger_db_busy_waits_total": "counter",
    "messenger_db_busy_retries_total": "counter",
    "messenger_db_sqlite_memory_bytes": "gauge",
    "messenger_process_heap_in_use_bytes": "gauge",
    "messenger_process_heap_free_bytes": "gauge",
}
RELAY_METRICS = {
    "messenger_ws_open_sockets": "gauge",
    "messenger_ws_registered_sockets": "gauge",
    "messenger_ws_connections_total": "counter",
    "messenger_ws_deliveries_total": "counter",
    "messenger_ws_outbound_drops_total": "counter",
    "messenger_ws_closes_total": "counter",
    "messenger_event_head_seq": "gauge",
    "messenger_ws_delivered_seq": "gauge",
    "messenger_ws_event_lag": "gauge",
    "messenger_db_commit_duration_seconds": "histogram",
    "messenger_db_commit_batch_size": "histogram",
    "messenger_db_busy_waits_total": "counter",
    "messenger_db_busy_retries_total": "counter",
    "messenger_db_sqlite_memory_bytes": "gauge",
    "messenger_process_heap_in_use_bytes": "gauge",
    "messenger_process_heap_free_bytes": "gauge",
}


@pytest.fixture(scope="module")
def ops_stack():
    running = start_stack_once(
        "ops", prefix="msgr-e2e-ops-",
        LOG_FORMAT="json", METRICS_ALLOW=f" {ALLOWED_ADDRESS}, 192.0.2.250/32 ",
        HEALTH_INTERVAL_SECONDS="1", HEALTH_RESTART_AFTER="2",
    )
    yield running
    try:
        stop_stack(running)
    finally:
        cleanup_stack(running)


@pytest.fixture(scope="module")
def ops_api(ops_stack) -> Api:
    return Api(ops_stack.base_url)


# --- reading the exposition ---------------------------------------------------------------------

class Exposition:
    """One scrape: `# TYPE` lines and samples keyed by (name, frozenset of label pairs)."""

    def __init__(self, text: str):
        self.text = text
        self.types: dict[str, str] = {}
        self.samples: dict[tuple[str, frozenset], float] = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                assert name not in self.types, f"two TYPE lines for {name}"
                self.types[name] = kind
                continue
            if not line or line.startswith("#"):
                continue
            match = SAMPLE_RE.match(line)
            assert match, f"not a Prometheus sample line: {line!r}"
            name, labels, value = match.groups()
            pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels or ""))
            self.samples[(name, pairs)] = float(value)

    def value(self, name: str, **labels) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str, **labels) -> list[tuple[dict, float]]:
        wanted = set(labels.items())
        return [(dict(pairs), value) for (sample, pairs), value in self.samples.items()
                if sample == name and wanted <= pairs]


def scrape(stack, which: str, source: str | None = None) -> Exposition:
    response = get_from(stack, f"/metrics/{which}", source)
    assert response[0] == 200, response
    assert response[1].get("content-type", "").startswith("text/plain; version=0.0.4"), response[1]
    return Exposition(response[2].decode())


def get_from(stack, path: str, source: str | None = None, headers: dict | None = None):
    """GET through nginx from `source` (an address of this machine) or loopback:
    (status, lower-cased headers, body)."""
    host = source or "127.0.0.1"
    connection = http.client.HTTPConnection(host, stack.port, timeout=TIMEOUT,
                                            source_address=(source, 0) if source else None)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def histogram_ok(exposition: Exposition, name: str, **labels) -> float:
    """Buckets cumulative, ascending `le`, +Inf equal to _count; returns the count."""
    buckets = sorted(
        ((float("inf") if l["le"] == "+Inf" else float(l["le"])), v)
        for l, v in exposition.series(name + "_bucket", **labels))
    assert len(buckets) >= 10, f"{name}{labels}: {buckets}"
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), f"{name}{labels} buckets are not cumulative: {buckets}"
    assert buckets[-1][0] == float("inf")
    count = exposition.value(name + "_count", **labels)
    assert buckets[-1][1] == count, (buckets[-1], count)
    return count


# --- logs ---------------------------------------------------------------------------------------

def app_lines(stack) -> list[str]:
    """The apps' log lines (scripts/run's own lines start with "[run]")."""
    text = stack.output_path.read_text(errors="replace")
    return [line for line in text.splitlines() if line and not line.startswith("[")]


def app_records(stack) -> list[dict]:
    return [json.loads(line) for line in app_lines(stack)]


def every_log_text(stack) -> str:
    parts = [stack.output_path.read_text(errors="replace")]
    for path in sorted(stack.log_dir.iterdir()):
        if path.is_file():
            parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


# --- tests --------------------------------------------------------------------------------------

def test_tokens_and_message_text_never_reach_a_log(ops_stack, ops_api):
    """Sends over every path a token and a message body can take — REST header, /ws?token=,
    Authorization on the upgrade, IDENTIFY, REST and WebSocket sends of both seeds, a profile
    bio — then greps every log of the run for the token, its signature and the texts."""
    alice, bob = ops_api.new_user("logsa"), ops_api.new_user("logsb")
    chat_id = ops_api.initiate(alice.token, target_id=bob.id)["chat_id"]
    marker = "secret-body-" + uuid.uuid4().hex
    ops_api.send(alice.token, chat_id, marker + "-rest")
    assert ok_json(ops_api.post("/send", alice.token, json={"receiver_username": bob.username,
                                                             "content": marker + "-send"})) == {"status": "sent"}
    ok_json(ops_api.patch("/users/me", alice.token, json={"bio": marker + "-bio"}))
    assert ops_api.get(f"/chats/{chat_id}/messages?limit=5&after_id=0", alice.token).status_code == 200

    async def sockets():
        for how in ("query", "header", "identify"):
            async with await Client.open(ops_stack, alice, how) as client:
                await client.send({"chat_id": chat_id, "content": f"{marker}-ws-{how}", "nonce": how})
                await client.recv_until(lambda f: isinstance(f, dict) and f.get("op") == "ACK")
        async with await Client.open(ops_stack, bob, "query") as client:
            await client.send({"receiver_username": alice.username, "content": marker + "-ws-001"})
            await client.recv_until(lambda f: isinstance(f, dict) and str(f.get("content", "")).endswith("-ws-001"))
    run(sockets())

    # The log lines of those requests are written (the relay's when each socket closed).
    def logged():
        records = app_records(ops_stack)
        sockets = [r for r in records if r.get("logger") == "WSRelay" and r.get("message") == "websocket"]
        requests_ = [r for r in records if r.get("logger") == "FCGIApp" and r.get("message") == "request"]
        return len(sockets) >= 4 and len(requests_) >= 6
    assert wait_for(logged, timeout=10), app_lines(ops_stack)[-20:]

    text = every_log_text(ops_stack)
    assert "/chats/:id/messages" in text and "/ws" in text  # the logs are there
    for token in (alice.token, bob.token):
        assert token not in text
        assert token.split(".")[2] not in text, "a token's signature is in a log"
    assert marker not in text, [line for line in text.splitlines() if marker in line][:3]


def test_both_endpoints_expose_every_metric_with_its_type(ops_stack, ops_api):
    alice = ops_api.new_user("mx")
    ops_api.send(alice.token, ops_api.initiate(alice.token, target_id=alice.id)["chat_id"], "hello")
    fcgi, relay = scrape(ops_stack, "fcgi"), scrape(ops_stack, "relay")
    for exposition, expected in ((fcgi, FCGI_METRICS), (relay, RELAY_METRICS)):
        for name, kind in expected.items():
            if name == "messenger_ws_closes_total" and name not in exposition.types:
                continue  # appears with the first close (test_relay_gauges...)
            assert exposition.types.get(name) == kind, f"{name}: {exposition.types.get(name)}\n{exposition.text[:2000]}"
        for name in exposition.types:
            assert name.startswith("messenger_"), name
            if exposition.types[name] == "counter":
                assert name.endswith("_total"), name
    # Both processes hold SQLite page caches (on SQLite): the memory gauge is set at every scrape.
    for exposition in (fcgi, relay):
        if not database.ON_POSTGRES:
            assert exposition.value("messenger_db_sqlite_memory_bytes") > 100_000, exposition.text[:2000]
        assert exposition.value("messenger_process_heap_in_use_bytes") > 1_000_000, exposition.text[:2000]
    # Each process exposes its own: no HTTP series on the relay, no socket series on FCGIApp.
    assert "messenger_http_requests_total" not in relay.types
    assert "messenger_ws_open_sockets" not in fcgi.types


def test_a_request_moves_its_route_counter_and_histogram(ops_stack, ops_api):
    user = ops_api.new_user("mc")
    route = dict(route="/users/:user", method="GET", status="200")
    before = scrape(ops_stack, "fcgi")
    for _ in range(3):
        ok_json(ops_api.get(f"/users/{user.id}"))
    assert ops_api.get("/users/nosuchuser" + uuid.uuid4().hex[:8]).status_code == 404
    assert ops_api.get("/no/such/endpoint/" + uuid.uuid4().hex).status_code == 404
    after = scrape(ops_stack, "fcgi")
    assert after.value("messenger_http_requests_total", **route) - before.value("messenger_http_requests_total", **route) == 3
    missing = dict(route="/users/:user", method="GET", status="404")
    assert after.value("messenger_http_requests_total", **missing) - before.value("messenger_http_requests_total", **missing) == 1
    # Unknown paths share one label: no series per path.
    unmatched = dict(route="unmatched", method="GET", status="404")
    assert after.value("messenger_http_requests_total", **unmatched) >= 1
    assert not [l for l, _ in after.series("messenger_http_requests_total") if "endpoint" in l["route"]]
    counted = histogram_ok(after, "messenger_http_request_duration_seconds", route="/users/:user", method="GET")
    earlier = before.value("messenger_http_request_duration_seconds_count", route="/users/:user", method="GET")
    assert counted - earlier == 4
    assert after.value("messenger_http_request_duration_seconds_sum", route="/users/:user", method="GET") > 0
    # The scrape itself is a request like any other.
    assert after.value("messenger_http_requests_total", route="/metrics/fcgi", method="GET", status="200") >= 1


def test_commits_are_timed_and_sized_in_both_processes(ops_stack, ops_api):
    alice, bob = ops_api.new_user("cta"), ops_api.new_user("ctb")
    chat_id = ops_api.initiate(alice.token, target_id=bob.id)["chat_id"]
    fcgi_before, relay_before = scrape(ops_stack, "fcgi"), scrape(ops_stack, "relay")
    for i in range(5):
        ops_api.send(alice.token, chat_id, f"rest {i}")

    async def ws_sends():
        async with await Client.open(ops_stack, bob, "identify") as client:
            for i in range(3):
                await client.send({"chat_id": chat_id, "content": f"ws {i}", "nonce": f"n{i}"})
            acks = 0
            while acks < 3:
                frame = await client.recv()
                acks += isinstance(frame, dict) and frame.get("op") == "ACK"
    run(ws_sends())
    fcgi, relay = scrape(ops_stack, "fcgi"), scrape(ops_stack, "relay")
    for before, after, messages in ((fcgi_before, fcgi, 5), (relay_before, relay, 3)):
        commits = histogram_ok(after, "messenger_db_commit_duration_seconds") \
            - before.value("messenger_db_commit_duration_seconds_count")
        assert 1 <= commits <= messages
        sizes = histogram_ok(after, "messenger_db_commit_batch_size") - before.value("messenger_db_commit_batch_size_count")
        assert sizes == commits
        assert after.value("messenger_db_commit_batch_size_sum") - before.value("messenger_db_commit_batch_size_sum") == messages
        assert after.value("messenger_db_busy_retries_total") >= after.value("messenger_db_busy_waits_total") >= 0


def test_relay_gauges_follow_sockets_opening_and_closing(ops_stack, ops_api):
    alice, bob = ops_api.new_user("rga"), ops_api.new_user("rgb")
    chat_id = ops_api.initiate(alice.token, target_id=bob.id)["chat_id"]
    # Sockets of earlier tests are gone first, so that the gauge moves only by this test's.
    assert wait_for(lambda: scrape(ops_stack, "relay").value("messenger_ws_open_sockets") == 0, timeout=10)
    before = scrape(ops_stack, "relay")
    opened = before.value("messenger_ws_open_sockets")

    async def scenario():
        identified = await Client.open(ops_stack, alice, "identify")
        anonymous = await Client.anonymous(ops_stack)
        try:
            # The identified socket is registered by the storage thread soon after READY.
            middle = await asyncio.to_thread(wait_for, lambda: (
                m if (m := scrape(ops_stack, "relay")).value("messenger_ws_registered_sockets")
                == before.value("messenger_ws_registered_sockets") + 1 else None), 10)
            assert middle, "the identified socket was never registered"
            assert middle.value("messenger_ws_open_sockets") == opened + 2
            assert middle.value("messenger_ws_connections_total") - before.value("messenger_ws_connections_total") == 2
            # A REST send reaches the identified socket: one delivery at least.
            await asyncio.to_thread(ops_api.send, bob.token, chat_id, "to the socket")
            await identified.recv_until(lambda f: isinstance(f, dict) and f.get("content") == "to the socket")
            delivered = await asyncio.to_thread(scrape, ops_stack, "relay")
            assert delivered.value("messenger_ws_deliveries_total") > before.value("messenger_ws_deliveries_total")
            head = delivered.value("messenger_event_head_seq")
            assert head >= delivered.value("messenger_ws_delivered_seq") > 0
            assert delivered.value("messenger_ws_event_lag") == head - delivered.value("messenger_ws_delivered_seq")
        finally:
            await identified.close()  # the client starts the handshake: 1000, by the client
            anonymous.ws.transport.abort()  # dropped without a close frame: 1006
    run(scenario())

    def closed():
        now = scrape(ops_stack, "relay")
        return now if now.value("messenger_ws_open_sockets") == opened else None
    after = wait_for(closed, timeout=10)
    assert after, "open sockets did not fall back"
    assert after.value("messenger_ws_closes_total", code="1000", by="client") \
        - before.value("messenger_ws_closes_total", code="1000", by="client") == 1
    assert after.value("messenger_ws_closes_total", code="1006", by="none") \
        - before.value("messenger_ws_closes_total", code="1006", by="none") == 1
    # A bad IDENTIFY: the server closes with 4501.

    async def bad_identify():
        client = await Client.anonymous(ops_stack)
        await client.send({"op": "IDENTIFY", "d": {"token": "not-a-token"}})
        await client.ws.wait_closed()
        assert client.ws.close_code == 4501
    run(bad_identify())
    assert wait_for(lambda: scrape(ops_stack, "relay").value("messenger_ws_closes_total", code="4501", by="server")
                    - before.value("messenger_ws_closes_total", code="4501", by="server") == 1, timeout=10)


def own_outside_address() -> str | None:
    """An IPv4 address of this machine outside 127.0.0.0/8 (its default route's), if any."""
    import socket
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a source address
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") or address == ALLOWED_ADDRESS else address


@pytest.fixture
def outside_addresses():
    """(refused, allowed): as root, REFUSED_ADDRESS and ALLOWED_ADDRESS added to lo (removed
    afterwards); otherwise this machine's own outside address and no allowed one."""
    added = []
    try:
        if os.geteuid() == 0 and shutil.which("ip"):
            for address in (REFUSED_ADDRESS, ALLOWED_ADDRESS):
                result = subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"],
                                        capture_output=True, text=True)
                if result.returncode == 0:
                    added.append(address)
                elif "File exists" not in result.stderr:
                    break
            else:
                yield REFUSED_ADDRESS, ALLOWED_ADDRESS
                return
        fallback = own_outside_address()
        if fallback is None:
            pytest.skip("no address outside loopback: needs root and iproute2, or a network interface")
        yield fallback, None
    finally:
        for address in added:
            subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], capture_output=True)


def test_metrics_are_refused_outside_loopback_and_metrics_allow(ops_stack, outside_addresses):
    refused, allowed = outside_addresses
    for which in ("fcgi", "relay"):
        status, headers, body = get_from(ops_stack, f"/metrics/{which}", refused)
        assert status == 403, (which, status, body[:200])
        assert json.loads(body) == {"error": "forbidden"}
        assert b"messenger_" not in body
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
        if allowed:
            # The address METRICS_ALLOW names reads them.
            assert "messenger_" in scrape(ops_stack, which, allowed).text
    # Every spelling nginx maps to the same place is refused too; other /metrics/ paths are 404.
    for path in ("/metrics//fcgi", "/metrics/%66cgi", "/metrics/relay?x=1", "//metrics/relay"):
        assert get_from(ops_stack, path, refused)[0] == 403, path
    assert get_from(ops_stack, "/metrics/other")[0] == 404
    # The API itself answers that address, and no header makes FCGIApp hand out its metrics.
    status, _, body = get_from(ops_stack, "/healthz", refused, headers={"Messenger-Internal": "metrics"})
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, body = get_from(ops_stack, "/metrics", refused)
    assert status == 404 and b"messenger_" not in body


def test_healthz_is_ok_without_a_token(ops_stack):
    response = requests.get(ops_stack.base_url + "/healthz", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"


def health(stack) -> tuple[int, dict]:
    response = requests.get(stack.base_url + "/healthz", timeout=TIMEOUT)
    return response.status_code, response.json()


def test_healthz_is_503_while_the_relay_is_killed_and_ok_once_restarted(ops_stack, ops_api):
    token = ops_api.new_user("kill").token
    old = relay_pid(ops_stack)
    os.kill(old, signal.SIGKILL)
    seen = []

    def down():
        status, body = health(ops_stack)
        seen.append((status, body))
        return status == 503
    # scripts/run waits 0.5 s before it restarts a child: the window is there.
    assert wait_for(down, timeout=5, interval=0.02), seen[-5:]
    assert seen[-1][1] == {"status": "down", "database": "ok", "relay": "down"}
    # A handshake while nothing listens (502 if still down; the restarted relay may answer 101).
    refused = requests.get(ws_url(ops_stack, token=token).replace("ws://", "http://"), headers=UPGRADE_HEADERS,
                           timeout=TIMEOUT, stream=True)
    refused.close()
    assert wait_for(lambda: health(ops_stack) == (200, {"status": "ok"}), timeout=20)
    assert relay_pid(ops_stack) != old
    assert token not in every_log_text(ops_stack)


def test_the_supervisor_restarts_a_relay_that_stopped_answering(ops_stack, ops_api):
    """SIGSTOP: the process lives, so only the periodic health check can tell. With a 1 s
    interval and two failures allowed, scripts/run kills it and starts another. A `/ws?token=`
    handshake waiting on the stopped relay fails with 502 when it is killed, and nginx's error
    log (which quotes request lines) still has no token."""
    user = ops_api.new_user("stop")
    old = relay_pid(ops_stack)
    os.kill(old, signal.SIGSTOP)
    waiting = ThreadPoolExecutor(max_workers=1)
    try:
        assert wait_for(lambda: health(ops_stack)[0] == 503, timeout=10)
        assert health(ops_stack)[1] == {"status": "down", "database": "ok", "relay": "down"}
        handshake = waiting.submit(requests.get, ws_url(ops_stack, token=user.token).replace("ws://", "http://"),
                                   headers=UPGRADE_HEADERS, timeout=40)
        assert wait_for(lambda: ops_stack.child_pids().get("WSRelay") not in (None, old), timeout=30), \
            ops_stack.diagnostics()
        assert handshake.result(timeout=40).status_code == 502
    finally:
        waiting.shutdown(wait=False)
        try:
            os.kill(old, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert wait_for(lambda: health(ops_stack) == (200, {"status": "ok"}), timeout=20)
    logs = every_log_text(ops_stack)
    assert "/ws" in (ops_stack.log_dir / "nginx_access.log").read_text()
    assert user.token not in logs and user.token.split(".")[2] not in logs
    output = ops_stack.output_path.read_text(errors="replace")
    assert "health: killing WSRelay" in output
    assert "health: ok again" in output or wait_for(
        lambda: "health: ok again" in ops_stack.output_path.read_text(errors="replace"), timeout=10)


def probed_healthz(stack) -> str:
    """The id of a /healthz whose answer came from a fresh probe of the relay, whose line then
    carries the same id (an answer less than 250 ms old is reused without asking the relay;
    scripts/run's own checks come every second here)."""
    for _ in range(20):
        time.sleep(0.3)
        request_id = requests.get(stack.base_url + "/healthz", timeout=TIMEOUT).headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        if wait_for(lambda: any(r.get("request_id") == request_id and r["logger"] == "WSRelay"
                                for r in app_records(stack)), timeout=2):
            return request_id
    raise AssertionError("no /healthz probed the relay with its own id")


def test_request_ids_are_in_both_apps_logs_and_nginxs(ops_stack, ops_api):
    rest_id = probed_healthz(ops_stack)
    user = ops_api.new_user("rid")

    async def one_socket():
        ws = await open_ws(ws_url(ops_stack), {"Authorization": f"Bearer {user.token}"})
        socket_id = ws.response.headers["X-Request-Id"]
        await ws.close()
        return socket_id
    ws_id = run(one_socket())
    assert re.fullmatch(r"[0-9a-f]{32}", ws_id) and ws_id != rest_id

    def logged():
        records = app_records(ops_stack)
        fcgi = [r for r in records if r.get("request_id") == rest_id and r["logger"] == "FCGIApp"]
        # FCGIApp's /healthz asks the relay with the same id.
        relay = [r for r in records if r.get("request_id") == rest_id and r["logger"] == "WSRelay"]
        socket = [r for r in records if r.get("request_id") == ws_id and r["logger"] == "WSRelay"]
        return (fcgi, relay, socket) if fcgi and relay and socket else None
    found = wait_for(logged, timeout=10)
    assert found, app_lines(ops_stack)[-20:]
    fcgi, relay, socket = found
    assert fcgi[0]["message"] == "request" and fcgi[0]["route"] == "/healthz" and fcgi[0]["status"] == "200"
    assert float(fcgi[0]["duration_ms"]) >= 0
    assert relay[0]["route"] == "/healthz" and relay[0]["status"] == "200"
    assert socket[0]["message"] == "websocket" and socket[0]["user_id"] == str(user.id)
    assert socket[0]["close_code"] == "1000" and socket[0]["closed_by"] == "client"
    access = (ops_stack.log_dir / "nginx_access.log").read_text()
    assert f"id={rest_id}" in access and f"id={ws_id}" in access


def test_json_logs_are_one_object_per_line(ops_stack):
    lines = app_lines(ops_stack)
    assert len(lines) > 20
    records = [json.loads(line) for line in lines]  # every app line parses
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"]), record
        assert record["logger"] in ("FCGIApp", "WSRelay"), record
        assert all(isinstance(value, str) for value in record.values()), record
    assert {r["message"] for r in records} >= {"request", "websocket", "FastCGI listening", "relay listening"}


def test_the_session_stack_logs_text_lines_with_request_ids(stack, api):
    """The default LOG_FORMAT is text: `TIME LEVEL LABEL: message key=value …`."""
    response = requests.get(stack.base_url + "/healthz", timeout=TIMEOUT)
    request_id = response.headers["X-Request-Id"]

    def line():
        for text in stack.output_path.read_text(errors="replace").splitlines():
            if f"request_id={request_id}" in text and " FCGIApp: request " in text:
                return text
        return None
    found = wait_for(line, timeout=10)
    assert found and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info FCGIApp: request ", found), found
    assert "route=/healthz" in found and "status=200" in found

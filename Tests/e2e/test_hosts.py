"""Issue 20, several hosts: the deployment nginx/messenger-front.conf describes, run on this one
machine. Two app hosts, each its own scripts/run (nginx, FCGIApp, WSRelay) on its own port and
DATA_DIR, on one PostgreSQL database with one JWT_SECRET; host A's relay is instance 1 and host
B's instance 2 (RELAY_INSTANCES=2, LOCAL_RELAYS); host A's uploads directory is bind-mounted
on host B's (as a shared filesystem is mounted on each host; root only). In front, the stock
nginx with nginx/messenger-front.conf itself as its site, only its upstream servers, listen
line and log paths pointed at this machine.

Through the front: login and REST reach both hosts; a client on host A's relay receives what
was sent through host B, REST and WebSocket, and TYPING and presence cross too; an upload
taken by one host is served by the other; stopping host A entirely moves its clients to host B,
and they resume with `since` with no gap; with both down the front answers 502 in JSON, as a
host's nginx does with its apps down. Which host's
relay took a socket is read off its 101's `X-Relay-Instance` header (1: A, 2: B)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

import conftest
import database
import helpers
import openapi_check
from helpers import Api, ok_json, wait_for
from stream_helpers import P2Client, visible_events
from test_deploy import NGINX, stock_nginx_copy
from test_instances import assert_each_saw_all_it_may_see, direct, is_message, is_presence, is_typing, open_on, presence_of, relay_of, until
from ws_helpers import refused_status, run

pytestmark = pytest.mark.skipif(not database.ON_POSTGRES, reason="PostgreSQL only (E2E_BACKEND=postgres): "
                                                                 "hosts share one database")

FRONT_SITE = conftest.REPO_ROOT / "nginx" / "messenger-front.conf"
JWT_SECRET = "e2e-hosts-" + uuid.uuid4().hex  # one for every host
FRONT_ERROR = {"error": "service unavailable, try again"}


class Front:
    """The front nginx: where clients connect (P2Client and visible_events take it as a stack:
    its port, and the hosts' one database)."""

    def __init__(self, root: Path, port: int, proc: subprocess.Popen, database_url: str):
        self.root = root
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.proc = proc
        self.database_url = database_url

    @property
    def access_log(self) -> Path:
        return self.root.parent / "log" / "messenger-front.access.log"

    def diagnostics(self) -> str:
        logs = sorted((self.root.parent / "log").iterdir())
        return "\n".join(f"--- {path} ---\n{helpers.tail(path)}" for path in logs if path.is_file())


class Hosts:
    def __init__(self):
        self.a: conftest.Stack | None = None
        self.b: conftest.Stack | None = None
        self.front: Front | None = None
        self.shared_uploads = False
        # Put into the shared uploads before host B started: host A's uploads in flight.
        self.in_flight: list[Path] = []


def front_site(host_ports: list[int], front_port: int) -> str:
    """nginx/messenger-front.conf with one upstream `server` line per host on this machine and
    its listen on 127.0.0.1:front_port; each substitution must find what it replaces, so a
    reshaped site fails here instead of running unchanged."""
    site = FRONT_SITE.read_text()
    ports = iter(host_ports)
    site, servers = re.subn(r"^(\s*server\s+)\S+:80(\s[^;\n]*)?;$",
                            lambda m: f"{m[1]}127.0.0.1:{next(ports)}{m[2] or ''};", site, flags=re.M)
    assert servers == len(host_ports), f"the front site has {servers} upstream servers, expected {len(host_ports)}"
    site, listens = re.subn(r"^(\s*)listen 80;$", rf"\g<1>listen 127.0.0.1:{front_port};", site, flags=re.M)
    site, listens6 = re.subn(r"^\s*listen \[::\]:80;\n", "", site, flags=re.M)
    assert (listens, listens6) == (1, 1), "the front site's listen lines changed"
    assert "/var/log/nginx/messenger-front." in site  # stock_nginx_copy points them into tmp
    return site


def start_front(tmp: Path, host_ports: list[int], database_url: str) -> Front:
    """The stock nginx (a copy of /etc/nginx, test_deploy's) with only the front site enabled."""
    port = helpers.free_port()
    root = stock_nginx_copy(tmp, front_site(host_ports, port))
    for link in (root / "sites-enabled").iterdir():
        if link.name != "messenger":
            link.unlink()  # the stock default site listens on :80
    os.chmod(tmp, 0o755)
    proc = subprocess.Popen([NGINX, "-p", f"{root}/", "-c", str(root / "nginx.conf"), "-e", str(tmp / "log" / "error.log"),
                             "-g", "daemon off;"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "log" / "nginx.out", "wb"), start_new_session=True)
    front = Front(root, port, proc, database_url)
    openapi_check.register(front.base_url)
    deadline = time.monotonic() + 15
    while True:
        assert proc.poll() is None, f"the front nginx exited with {proc.returncode}\n{front.diagnostics()}"
        try:
            if requests.get(front.base_url + "/healthz", timeout=2).status_code == 200:
                return front
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"the front answers no 200 for /healthz\n{front.diagnostics()}"
        time.sleep(0.1)


def stop_front(front: Front) -> None:
    if front.proc.poll() is None:
        front.proc.send_signal(signal.SIGTERM)
        try:
            front.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(front.proc.pid, signal.SIGKILL)  # workers, if the master died first
    except ProcessLookupError:
        pass
    front.proc.wait(timeout=5)


def mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


@pytest.fixture(scope="module")
def hosts():
    found = Hosts()
    tmp = Path(tempfile.mkdtemp(prefix="msgr-e2e-front-"))
    url = database.create(tmp)
    host_b_dir = Path(tempfile.mkdtemp(prefix="msgr-e2e-hostb-"))
    common = dict(DATABASE_URL=url, JWT_SECRET=JWT_SECRET, RELAY_INSTANCES="2")
    try:
        found.a = conftest.start_stack_once("host-a", prefix="msgr-e2e-hosta-", LOCAL_RELAYS="1", **common)
        if os.geteuid() == 0:
            (host_b_dir / "uploads").mkdir()
            result = subprocess.run(["mount", "--bind", str(found.a.uploads_dir), str(host_b_dir / "uploads")],
                                    capture_output=True, text=True)
            found.shared_uploads = result.returncode == 0
            assert found.shared_uploads or "permission" in result.stderr.lower(), result.stderr
            # Host A's uploads in flight (a body streaming in; renamed, its row not committed
            # yet): host B's FCGIApp, starting up, must leave them alone.
            found.in_flight = [found.a.uploads_dir / f".upload-{uuid.uuid4()}.part",
                               found.a.uploads_dir / f"{uuid.uuid4()}.bin"]
            for path in found.in_flight:
                path.write_bytes(b"in flight")
        found.b = conftest.start_stack_once("host-b", prefix="msgr-e2e-hostb-", data_dir=host_b_dir,
                                            LOCAL_RELAYS="2", **common)
        found.front = start_front(tmp, [found.a.port, found.b.port], url)
        yield found
    finally:
        if found.front is not None:
            stop_front(found.front)
        try:
            for stack in (found.a, found.b):
                if stack is not None:
                    conftest.stop_stack(stack)
        finally:
            if mounted(host_b_dir / "uploads"):
                subprocess.run(["umount", "-l", str(host_b_dir / "uploads")], check=False)
            for stack in (found.a, found.b):
                if stack is not None:
                    conftest.cleanup_stack(stack)
            database.drop(url)
            if os.environ.get("E2E_KEEP_DATA") != "1":
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.rmtree(host_b_dir, ignore_errors=True)


@pytest.fixture()
def front(hosts) -> Front:
    return hosts.front


@pytest.fixture()
def api(front) -> Api:
    """Through the front; conftest's no_server_errors fails a test that got a 5xx from it."""
    return Api(front.base_url)


def test_rest_through_the_front_reaches_both_hosts(hosts, front, api):
    alice, bob = api.new_user("ha"), api.new_user("hb")
    chat_id = direct(api, alice, bob)
    sent = [api.send(alice.token, chat_id, f"front {i}")["id"] for i in range(8)]
    assert sorted(m["id"] for m in api.messages(bob.token, chat_id)) == sorted(sent)
    # Round robin: the front's log names both hosts as upstreams.
    assert wait_for(lambda: {f"upstream=127.0.0.1:{stack.port}" in front.access_log.read_text()
                             for stack in (hosts.a, hosts.b)} == {True}, timeout=5), helpers.tail(front.access_log)
    # One JWT_SECRET: a token host A issued is good on host B.
    token = Api(hosts.a.base_url).login(alice.username)
    assert len(ok_json(Api(hosts.b.base_url).get("/chats", token))) >= 1
    # Each host's /healthz probes its own relay only (LOCAL_RELAYS), not the other host's socket.
    for stack in (hosts.a, hosts.b):
        assert requests.get(stack.base_url + "/healthz", timeout=5).json() == {"status": "ok"}
    # Each host's metrics are for its own scraper: the front's JSON 404.
    response = requests.get(front.base_url + "/metrics/fcgi", timeout=5)
    assert response.status_code == 404 and response.json() == {"error": "not found"}


def test_a_client_on_host_as_relay_gets_what_was_sent_through_host_b(hosts, front, api):
    alice, bob = api.new_user("xa"), api.new_user("xb")
    chat_id = direct(api, alice, bob)
    host_b = Api(hosts.b.base_url)

    async def scenario():
        a = await open_on(front, alice, 1)  # host A's relay
        b = await open_on(front, bob, 2)    # host B's relay
        latencies = []
        try:
            for index in range(3):
                # bob's socket on host B → alice on host A, and back.
                started = time.monotonic()
                await b.send({"chat_id": chat_id, "content": f"B→A {index}", "nonce": f"nb-{index}"})
                await until(a, is_message(f"B→A {index}"), what="bob's message from host B")
                latencies.append(time.monotonic() - started)
                await a.send({"chat_id": chat_id, "content": f"A→B {index}", "nonce": f"na-{index}"})
                await until(b, is_message(f"A→B {index}"), what="alice's message from host A")
                # REST straight to host B's nginx: host A's relay hears of it from the database.
                started = time.monotonic()
                host_b.send(bob.token, chat_id, f"rest B {index}")
                await until(a, is_message(f"rest B {index}"), what="the REST message sent through host B")
                latencies.append(time.monotonic() - started)
                await until(b, is_message(f"rest B {index}"), what="the REST message")
            await assert_each_saw_all_it_may_see(front, ((a, alice), (b, bob)))
        finally:
            await a.close()
            await b.close()
        return latencies

    latencies = sorted(run(scenario()))
    # Told by NOTIFY at once, not found by the other host's 250 ms poll.
    assert latencies[len(latencies) // 2] < 0.2, latencies


def test_typing_and_presence_cross_hosts(hosts, front, api):
    alice, bob = api.new_user("ta"), api.new_user("tb")
    chat_id = direct(api, alice, bob)

    async def scenario():
        b = await open_on(front, bob, 2)
        try:
            a = await open_on(front, alice, 1)
            online = await until(b, is_presence(alice.id, True), timeout=3, what="alice online (from host A)")
            assert online["d"]["last_seen"] is not None
            assert presence_of(Api(hosts.b.base_url), bob, alice.id)["online"] is True
            await a.send({"op": "TYPING", "d": {"chat_id": chat_id}})
            await until(b, is_typing(chat_id, alice.id), what="alice's TYPING from host A")
            await a.close()
        finally:
            await b.close()

    run(scenario())


def test_an_upload_taken_by_one_host_is_served_by_the_other(hosts, front, api):
    if not hosts.shared_uploads:
        pytest.skip("sharing the uploads directory between the hosts needs a bind mount (root)")
    # Host B's FCGIApp swept the shared directory at its start, leaving host A's uploads in
    # flight alone (it is one host of several: LOCAL_RELAYS).
    assert [path.exists() for path in hosts.in_flight] == [True] * len(hosts.in_flight)
    for path in hosts.in_flight:
        path.unlink()
    user = api.new_user("up")
    for taker, server in ((hosts.a, hosts.b), (hosts.b, hosts.a)):
        data = os.urandom(200_000)
        body = ok_json(Api(taker.base_url).post("/upload?v=2", user.token, files={"file": ("f.bin", data, "application/octet-stream")}))
        for base_url in (server.base_url, front.base_url):
            response = requests.get(base_url + body["url"], timeout=10)
            assert response.status_code == 200 and response.content == data, (base_url, response.status_code)


def test_each_hosts_healthz_names_only_its_own_relay(hosts, front):
    relay_b = hosts.b.child_pids()["WSRelay"]
    os.kill(relay_b, signal.SIGSTOP)
    try:
        response = requests.get(hosts.b.base_url + "/healthz", timeout=10)
        assert (response.status_code, response.json()) == (503, {"status": "down", "database": "ok", "relay": "down",
                                                                 "relays_down": [2]})
        assert requests.get(hosts.a.base_url + "/healthz", timeout=10).json() == {"status": "ok"}
    finally:
        os.kill(relay_b, signal.SIGCONT)
    assert wait_for(lambda: requests.get(hosts.b.base_url + "/healthz", timeout=5).status_code == 200, timeout=10)


def test_stopping_host_a_moves_its_clients_to_host_b_and_they_resume_with_no_gap(hosts, front, api):
    alice, bob = api.new_user("fa"), api.new_user("fb")
    chat_id = direct(api, alice, bob)

    async def scenario():
        b = await open_on(front, bob, 1)
        a = await open_on(front, alice, 2)
        api.send(alice.token, chat_id, "before")
        await until(b, is_message("before"), what="the first message")
        since = b.last
        # Host A entirely: its nginx, relay and FCGIApp (scripts/run stops all and exits 0).
        conftest.stop_stack(hosts.a)
        await asyncio.wait_for(b.ws.wait_closed(), 10)
        # Sent while host A is down, through the front (REST) and on host B's relay.
        sent = [api.send(alice.token, chat_id, f"during {i}")["id"] for i in range(3)]
        await a.send({"chat_id": chat_id, "content": "during ws", "nonce": "during-ws"})
        ack = await until(a, lambda f: f.get("op") == "ACK", what="the ACK")
        sent.append(ack["d"]["id"])
        # bob reconnects through the front, which passes the refused connection to host B.
        moved = await P2Client.open(front, bob, "query", since)
        try:
            frames = await moved.events_through(max(visible_events(front, bob.id, since)), timeout=10)
            assert [f["d"]["id"] for f in frames if f["op"] == "MESSAGE"] == sent
            assert [f["seq"] for f in frames] == list(visible_events(front, bob.id, since))
            return relay_of(moved)
        finally:
            await moved.close()
            await a.close()

    assert run(scenario()) == 2
    # Logging in goes on, through the front to host B.
    api.new_user("after")


def test_with_both_hosts_down_the_front_answers_json(hosts, front):
    for stack in (hosts.a, hosts.b):
        conftest.stop_stack(stack)
    for method, path in (("GET", "/chats"), ("POST", "/login"), ("GET", "/")):
        response = requests.request(method, front.base_url + path, json={"username": "nobody"}, timeout=15)
        assert response.status_code == 502, (method, path, response.status_code)
        assert response.headers["Content-Type"] == "application/json"
        assert response.json() == FRONT_ERROR, response.text
    status, body = run(refused_status(f"ws://127.0.0.1:{front.port}/ws?v=2"))
    assert status == 502 and body == b'{"error":"service unavailable, try again"}\n', (status, body)

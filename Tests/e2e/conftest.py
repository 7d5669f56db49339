"""End-to-end fixtures: one real stack (nginx + FCGIApp + WSRelay) per test session.

The stack is started by ``scripts/run`` exactly as a user starts it, in a temporary DATA_DIR
on a free port, with SKIP_BUILD=1 BUILD_CONFIG=debug SKIP_INSTALL=1 so it neither builds nor
installs (``scripts/test`` builds once before). ``BIN_DIR``, when set, names the binaries.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

import database
import helpers
import openapi_check

# Every response from a stack is held to Sources/FCGIApp/openapi.yaml (openapi_check.py).
openapi_check.install()

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


class Stack:
    """A running scripts/run: its process, port, DATA_DIR and log files."""

    def __init__(self, data_dir: Path, port: int, output_path: Path, proc: subprocess.Popen, database_url: str):
        self.data_dir = data_dir
        # sqlite:DATA_DIR/messenger.db, or the stack's own PostgreSQL database (database.py).
        self.database_url = database_url
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.output_path = output_path
        self.proc = proc

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    def announced_ready(self) -> bool:
        try:
            text = self.output_path.read_text(errors="replace")
        except OSError:
            return False
        return f"ready on http://0.0.0.0:{self.port}" in text

    def jwt_secret(self) -> bytes:
        """The generated signing key (the stack runs without JWT_SECRET)."""
        return (self.data_dir / "jwt_secret").read_bytes().strip()

    def child_pids(self) -> dict[str, int]:
        """The script's direct children by program: FCGIApp, WSRelay, nginx (the master)."""
        children: dict[str, int] = {}
        for pid in helpers.child_pids(self.proc.pid):
            cmd = helpers.cmdline(pid)
            if not cmd:
                continue
            program = os.path.basename(cmd[0])
            if program.startswith("python") and len(cmd) > 1:  # a stand-in script
                program = os.path.basename(cmd[1])
            if program in ("FCGIApp", "WSRelay"):
                children[program] = pid
            elif program == "nginx" or cmd[0].startswith("nginx:"):
                children["nginx"] = pid
        return children

    def diagnostics(self, lines: int = 60) -> str:
        parts = [f"--- scripts/run output ({self.output_path}) ---", helpers.tail(self.output_path, lines)]
        if self.log_dir.is_dir():
            for path in sorted(self.log_dir.iterdir()):
                if path.is_file():
                    parts += [f"--- {path} ---", helpers.tail(path, lines)]
        return "\n".join(parts)


def stack_env(data_dir: Path, port: int, **overrides: str) -> dict[str, str]:
    """The environment for scripts/run. Every variable the apps read is set here, so a
    developer's .env (which only fills in unset variables) cannot point the tests elsewhere;
    an empty value means "the default"."""
    env = os.environ.copy()
    env.update(
        PORT=str(port),
        DATA_DIR=str(data_dir),
        DATABASE_URL=f"sqlite:{data_dir}/messenger.db",  # start_stack: database.create
        JWT_SECRET="",  # empty = unset: the app generates $DATA_DIR/jwt_secret
        MIGRATIONS_DIR=str(REPO_ROOT / "migrations"),
        TOKEN_TTL_SECONDS="",
        UPLOAD_MAX_BYTES="",
        FCGI_WORKERS="",
        FCGI_INSTANCES="",
        RELAY_INSTANCES="",
        LOCAL_RELAYS="",
        INSTANCE="",
        # Retention stays the default (30 days); the relay prunes every second, so a test that
        # backdates events sees them pruned at once (the RESYNC tests).
        EVENT_RETENTION_DAYS="",
        EVENT_PRUNE_INTERVAL_SECONDS="1",
        CORS_ORIGINS="",
        CORS_MAX_AGE="",
        DB_SYNCHRONOUS="",
        # Rate limits off: tests send and log in faster than any person. The tests of the
        # limits start stacks of their own with the limits on.
        RATE_LOGIN="0",
        RATE_SEND="0",
        RATE_UPLOAD="0",
        RATE_SEARCH="0",
        LOG_LEVEL=os.environ.get("E2E_LOG_LEVEL", "info"),
        SKIP_BUILD="1",
        SKIP_INSTALL="1",
        BUILD_CONFIG=os.environ.get("BUILD_CONFIG", "debug"),
    )
    env.update(overrides)
    return env


def start_stack(prefix: str = "msgr-e2e-", data_dir: Path | None = None, tablespace: str | None = None,
                **overrides: str) -> Stack:
    """Starts scripts/run in its own process group and waits until GET /chats answers 401 and
    the script has printed its "ready on" line; on ``data_dir`` if given (an empty directory,
    e.g. a small filesystem mounted there; it is removed with the stack), else on a new
    temporary one. On PostgreSQL, ``tablespace`` holds the stack's tables (database.create)."""
    data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(data_dir, 0o755)  # nginx's workers (www-data when root) traverse it
    port = helpers.free_port()
    if "DATABASE_URL" not in overrides:
        overrides["DATABASE_URL"] = database.create(data_dir, tablespace=tablespace)
    output_path = Path(tempfile.mkstemp(prefix=prefix, suffix=".out")[1])
    with open(output_path, "wb") as output:
        proc = subprocess.Popen(
            [str(REPO_ROOT / "scripts" / "run")],
            cwd=REPO_ROOT,
            env=stack_env(data_dir, port, **overrides),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(data_dir, port, output_path, proc, overrides["DATABASE_URL"])
    openapi_check.register(stack.base_url)
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer"
    while True:
        if proc.poll() is not None:
            message = f"scripts/run exited with {proc.returncode} before the stack was ready"
            diagnostics = stack.diagnostics()
            cleanup_stack(stack)
            pytest.fail(f"{message}\n{diagnostics}", pytrace=False)
        try:
            response = requests.get(stack.base_url + "/chats", timeout=2)
            last = f"{response.status_code} {response.text[:200]!r}"
            # Ready when the API answers and scripts/run has finished its start-up checks.
            if response.status_code == 401 and stack.announced_ready():
                return stack
        except requests.RequestException as error:
            last = repr(error)
        if time.monotonic() > deadline:
            diagnostics = stack.diagnostics()
            stop_stack(stack, check=False)
            cleanup_stack(stack)
            pytest.fail(
                f"stack not ready after {READY_TIMEOUT:.0f}s (GET /chats: {last})\n{diagnostics}",
                pytrace=False,
            )
        time.sleep(0.2)


def stop_stack(stack: Stack, check: bool = True, signum: int = signal.SIGTERM) -> None:
    """signum (SIGTERM; SIGINT is Ctrl-C) to scripts/run; it must exit 0 within STOP_TIMEOUT
    and leave no process behind. Whatever is left is killed either way; with ``check`` a
    problem fails the test."""
    problems = []
    name = signal.Signals(signum).name
    descendants = helpers.descendant_pids(stack.proc.pid)
    if stack.proc.poll() is None:
        if signum == signal.SIGINT:
            # Ctrl-C signals the terminal's whole foreground process group, not one pid: a
            # lone SIGINT that reaches bash while a foreground command of its own runs (a
            # sleep, the health check) is taken to be that command's, and bash drops it
            # once the command exits normally. scripts/run leads its own group here.
            os.killpg(stack.proc.pid, signum)
        else:
            stack.proc.send_signal(signum)
        try:
            stack.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            problems.append(f"scripts/run did not exit within {STOP_TIMEOUT:.0f}s of {name}")
    if stack.proc.returncode not in (0, None):
        problems.append(f"scripts/run exited with {stack.proc.returncode} after {name}")
    leftovers = [pid for pid in descendants if helpers.pid_alive(pid)]
    if leftovers:
        problems.append("processes left running: " + ", ".join(
            f"{pid} {' '.join(helpers.cmdline(pid))}" for pid in leftovers))
    for pid in leftovers + ([stack.proc.pid] if stack.proc.poll() is None else []):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if stack.proc.poll() is None:
        stack.proc.wait(timeout=5)
    problems += leftover_query_lines(stack)
    if problems and check:
        pytest.fail("\n".join(problems) + "\n" + stack.diagnostics(), pytrace=False)


def leftover_query_lines(stack: Stack) -> list[str]:
    """The apps' log lines saying a request or storage round left a query in progress (each
    ended by the app, but a bug: until then the connection saw an old snapshot)."""
    paths = [stack.output_path] + (sorted(stack.log_dir.iterdir()) if stack.log_dir.is_dir() else [])
    found = []
    for path in paths:
        if path.is_file():
            with path.open(errors="replace") as log:
                found += [f"{path.name}: {line.strip()}" for line in log
                          if "left the database connection in progress" in line]
    return found


def cleanup_stack(stack: Stack) -> None:
    if os.environ.get("E2E_KEEP_DATA") == "1":
        print(f"\nE2E_KEEP_DATA=1: kept {stack.data_dir} and {stack.output_path}")
        return
    shutil.rmtree(stack.data_dir, ignore_errors=True)
    stack.output_path.unlink(missing_ok=True)
    database.drop(stack.database_url)


_startup_failures: dict[str, str] = {}


def start_stack_once(key: str, **kwargs) -> Stack:
    """start_stack, but after one failed start every later test errors at once instead of
    waiting for another start that fails the same way."""
    if key in _startup_failures:
        pytest.fail(f"stack {key!r} failed to start earlier (see the first error)", pytrace=False)
    try:
        return start_stack(**kwargs)
    except BaseException as error:
        _startup_failures[key] = str(error)
        raise


_spec_mark: dict[str, int] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    _spec_mark[item.nodeid] = len(openapi_check.mismatches)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fails a test if a response it (or its fixtures) got breaks the OpenAPI spec."""
    result = yield
    new = openapi_check.mismatches[_spec_mark.pop(item.nodeid, 0):]
    if new:
        shown = "\n".join(new[:10]) + (f"\n... and {len(new) - 10} more" if len(new) > 10 else "")
        raise AssertionError(f"{len(new)} response(s) break Sources/FCGIApp/openapi.yaml:\n{shown}")
    return result


@pytest.fixture(scope="session")
def stack():
    """The session's running stack."""
    running = start_stack_once("session")
    yield running
    try:
        stop_stack(running)
    finally:
        cleanup_stack(running)


@pytest.fixture(scope="session")
def base_url(stack: Stack) -> str:
    return stack.base_url


@pytest.fixture(scope="session")
def data_dir(stack: Stack) -> Path:
    return stack.data_dir


@pytest.fixture(scope="session")
def run_process(stack: Stack) -> subprocess.Popen:
    """The scripts/run process (its children are FCGIApp, WSRelay and nginx)."""
    return stack.proc


@pytest.fixture(scope="session")
def api(base_url: str) -> helpers.Api:
    """HTTP helpers bound to the stack: api.get/post/patch, api.login(username) -> token."""
    return helpers.Api(base_url)


@pytest.fixture(autouse=True)
def no_server_errors(request):
    """Fails a test during which the shared `api` client got any 5xx response."""
    if "api" not in request.fixturenames:
        yield
        return
    api = request.getfixturevalue("api")
    seen = len(api.server_errors)
    yield
    new = api.server_errors[seen:]
    assert not new, "5xx responses: " + "; ".join(new)


@pytest.fixture(scope="session")
def login(api: helpers.Api):
    """login(username) -> token (the user is created if new)."""
    return api.login


@pytest.fixture
def new_user(api: helpers.Api):
    """new_user(prefix="u") -> helpers.User with a fresh unique username, logged in."""
    def make(prefix: str = "u") -> helpers.User:
        return api.new_user(prefix)
    return make


@pytest.fixture
def pair(api: helpers.Api, stack: Stack, new_user):
    """(alice, bob, chat_id): a fresh direct chat that the relay has already announced, so
    that a socket opened afterwards sees no CHAT frame for it."""
    from ws_helpers import direct_chat
    alice, bob = new_user("pa"), new_user("pb")
    return alice, bob, direct_chat(stack, api, alice, bob)

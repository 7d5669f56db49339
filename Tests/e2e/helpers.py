"""Helpers for the end-to-end tests: HTTP calls, users, exact-shape assertions, JWT forging,
and /proc lookups for the stack's processes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

TIMEOUT = 15  # seconds; a request that takes longer counts as a hang
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")

USER_KEYS = {"id", "username", "display_name", "bio", "image_id"}
CHAT_KEYS = {"id", "name", "chat_type", "created_at", "participants"}
MESSAGE_KEYS = {"id", "chat_id", "sender_id", "content", "timestamp", "files"}
MESSAGES_PAGE_KEYS = {"chat_id", "messages"}
INITIATE_KEYS = {"chat_id", "status"}
HISTORY_KEYS = {"id", "sender_id", "receiver_id", "content", "timestamp"}
FILE_KEYS = {"id", "type", "url", "filename", "mime_type", "size_bytes", "created_at"}

# --- names -----------------------------------------------------------------------------------

_counter = itertools.count(1)
_run = uuid.uuid4().hex[:6]


def unique_username(prefix: str = "u") -> str:
    """A username no other test uses: letter first, at most 32 of [A-Za-z0-9_.-]."""
    name = f"{prefix}{_run}{next(_counter)}"[:32]
    assert USERNAME_RE.match(name), name
    return name


# --- shapes ----------------------------------------------------------------------------------

def assert_keys(obj: Any, keys: set[str]) -> None:
    """obj is a JSON object with exactly these keys (invariant 3: no more, no fewer)."""
    assert isinstance(obj, dict), f"expected an object, got {obj!r}"
    assert set(obj) == set(keys), (
        f"keys differ: unexpected {sorted(set(obj) - set(keys))}, missing {sorted(set(keys) - set(obj))} in {obj!r}"
    )


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def assert_timestamp(value: Any) -> None:
    assert isinstance(value, str) and TIMESTAMP_RE.match(value), f"not an RFC 3339 UTC timestamp: {value!r}"


def assert_user(obj: Any) -> None:
    assert_keys(obj, USER_KEYS)
    assert is_int(obj["id"]) and obj["id"] > 0
    assert isinstance(obj["username"], str) and USERNAME_RE.match(obj["username"])
    for key in ("display_name", "bio"):
        assert obj[key] is None or isinstance(obj[key], str), obj
    assert obj["image_id"] is None or is_int(obj["image_id"]), obj


def assert_chat(obj: Any) -> None:
    assert_keys(obj, CHAT_KEYS)
    assert is_int(obj["id"]) and obj["id"] > 0
    assert obj["name"] is None or isinstance(obj["name"], str)
    assert obj["chat_type"] in ("direct", "group"), obj
    assert_timestamp(obj["created_at"])
    assert isinstance(obj["participants"], list) and all(is_int(p) for p in obj["participants"]), obj


def assert_message(obj: Any) -> None:
    assert_keys(obj, MESSAGE_KEYS)
    for key in ("id", "chat_id", "sender_id"):
        assert is_int(obj[key]) and obj[key] > 0, obj
    assert obj["content"] is None or isinstance(obj["content"], str)
    assert_timestamp(obj["timestamp"])
    assert isinstance(obj["files"], list)
    for item in obj["files"]:
        assert_keys(item, FILE_KEYS)


def assert_history_entry(obj: Any) -> None:
    assert_keys(obj, HISTORY_KEYS)
    for key in ("id", "sender_id", "receiver_id"):
        assert is_int(obj[key]) and obj[key] > 0, obj
    assert isinstance(obj["content"], str)
    assert_timestamp(obj["timestamp"])


def assert_error(response: requests.Response, *statuses: int) -> dict:
    """The response has one of these statuses and the body {"error": "<non-empty string>"}."""
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url}: expected {statuses}, got "
        f"{response.status_code} {response.text[:300]!r}"
    )
    content_type = response.headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), f"error Content-Type {content_type!r}"
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {response.text[:300]!r}") from None
    assert_keys(body, {"error"})
    assert isinstance(body["error"], str) and body["error"].strip(), body
    return body


def ok_json(response: requests.Response, status: int = 200) -> Any:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: expected {status}, got "
        f"{response.status_code} {response.text[:300]!r}"
    )
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    return response.json()


# --- HTTP ------------------------------------------------------------------------------------

def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class User:
    username: str
    token: str
    id: int
    headers: dict[str, str] = field(default_factory=dict)


class Api:
    """requests bound to the stack's base URL, with a timeout on every call."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()
        # Every 5xx this client sees, as "METHOD URL -> status"; conftest fails the test that
        # caused one (invariant 4: bad input never gets a 5xx).
        self.server_errors: list[str] = []
        self.session.hooks["response"].append(self._record_server_error)

    def _record_server_error(self, response: requests.Response, *args, **kwargs) -> None:
        if response.status_code >= 500:
            self.server_errors.append(
                f"{response.request.method} {response.request.url[:200]} -> {response.status_code} {response.text[:200]!r}"
            )

    def request(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers.update(auth(token))
        kwargs.setdefault("timeout", TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.request("GET", path, token, **kwargs)

    def post(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.request("POST", path, token, **kwargs)

    def patch(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.request("PATCH", path, token, **kwargs)

    def login(self, username: str) -> str:
        body = ok_json(self.post("/login", json={"username": username}))
        assert_keys(body, {"token"})
        assert isinstance(body["token"], str) and body["token"].count(".") == 2
        return body["token"]

    def new_user(self, prefix: str = "u") -> User:
        username = unique_username(prefix)
        token = self.login(username)
        user_id = decode_token(token)["user_id"]
        return User(username=username, token=token, id=user_id, headers=auth(token))

    def initiate(self, token: str, **body) -> dict:
        result = ok_json(self.post("/chats/initiate", token, json=body))
        assert_keys(result, INITIATE_KEYS)
        return result

    def send(self, token: str, chat_id: int, content: str) -> dict:
        message = ok_json(self.post(f"/chats/{chat_id}/messages", token, json={"content": content}))
        assert_message(message)
        return message

    def messages(self, token: str, chat_id: int, query: str = "") -> list[dict]:
        page = ok_json(self.get(f"/chats/{chat_id}/messages{query}", token))
        assert_keys(page, MESSAGES_PAGE_KEYS)
        assert page["chat_id"] == chat_id
        for message in page["messages"]:
            assert_message(message)
        return page["messages"]


# --- tokens ----------------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_token(token: str) -> dict:
    """The claims of a JWT, unverified."""
    return json.loads(b64url_decode(token.split(".")[1]))


def forge_token(claims: dict, key: bytes, header: dict | None = None, alg: str = "HS256") -> str:
    """A JWT with these claims signed with HMAC-SHA256 under key (alg "none": no signature)."""
    header = header or {"alg": alg, "typ": "JWT"}
    signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(
        json.dumps(claims, separators=(",", ":")).encode()
    )
    if alg == "none":
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


# --- processes -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as error:
        return f"(cannot read: {error})"
    return "\n".join(text.splitlines()[-lines:])


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process from /proc, None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def pid_alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def child_pids(parent: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat and stat[1] == parent and stat[0] not in ("Z", "X"):
                children.append(int(entry))
    return children


def descendant_pids(root: int) -> list[int]:
    found, frontier = [], [root]
    while frontier:
        children = child_pids(frontier.pop())
        found += children
        frontier += children
    return found


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    """Polls predicate until it returns something truthy; returns that, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)

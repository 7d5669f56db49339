"""Helpers for the fault tests (issue 19): a stack of the test module's own (each breaks it),
the database's write-visible state, every REST write kind as one call, and a small
filesystem to fill."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import pytest
import requests

import database
import helpers
from conftest import cleanup_stack, start_stack, stop_stack
from events_helpers import reaction_path
from stream_helpers import db_path

TIMEOUT = 30


def own_stack(prefix: str = "msgr-e2e-", **overrides):
    """A generator for a module fixture: a stack started for this module alone (on
    `data_dir=` if given), stopped (and checked to stop cleanly) afterwards."""
    stack = start_stack(prefix=prefix, **overrides)
    try:
        yield stack
    finally:
        try:
            stop_stack(stack)
        finally:
            cleanup_stack(stack)


# The stack's SQLite file, for the sqlite_only fault tests.
db_file = db_path


# Every table a write touches; the fingerprint of the database is all their rows.
STATE_TABLES = ("users", "chats", "chat_members", "messages", "message_files", "files",
                "reactions", "blocks", "events", "event_log")


def db_state(stack) -> dict[str, list[tuple]]:
    """Every row of every table a write can change (tables this schema lacks are skipped)."""
    names = database.table_names(stack)
    return {table: sorted(database.rows(stack, f"SELECT * FROM {table}"), key=repr)
            for table in STATE_TABLES if table in names}


def integrity(stack) -> tuple[str, list]:
    return database.integrity(stack)


def request(stack, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    if token:
        headers.update(helpers.auth(token))
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.request(method, stack.base_url + path, headers=headers, **kwargs)


def timed(call: Callable[[], requests.Response]) -> tuple[requests.Response | None, float, str]:
    """(response or None, seconds, error text)."""
    start = time.monotonic()
    try:
        response = call()
        return response, time.monotonic() - start, ""
    except requests.RequestException as error:
        return None, time.monotonic() - start, repr(error)


def rest_writes(stack, owner, member, outsider, chat_id: int, message_id: int, victim_id: int,
                tag: str) -> dict[str, Callable[[], requests.Response]]:
    """One call per REST write kind, each of which succeeds on a healthy stack (and changes
    the database): message, legacy send, edit, delete, reaction, read marker, rename,
    membership, role, profile, block, direct chat, upload, and a login (it opens a session)."""
    def go(method, path, token, **kwargs):
        return lambda: request(stack, method, path, token, **kwargs)
    return {
        "message": go("POST", f"/chats/{chat_id}/messages", owner.token,
                      json={"content": f"msg {tag}", "nonce": f"nonce-{tag}"}),
        "legacy send": go("POST", "/send", owner.token, json={"receiver_username": member.username, "content": f"legacy {tag}"}),
        "edit": go("PATCH", f"/chats/{chat_id}/messages/{message_id}", owner.token, json={"content": f"edited {tag}"}),
        "delete": go("DELETE", f"/chats/{chat_id}/messages/{victim_id}", owner.token),
        "reaction": go("PUT", reaction_path(chat_id, message_id, "👍"), member.token),
        "read marker": go("POST", f"/chats/{chat_id}/read", member.token, json={"message_id": message_id}),
        "rename": go("PATCH", f"/chats/{chat_id}", owner.token, json={"name": f"renamed {tag}"}),
        "add member": go("POST", f"/chats/{chat_id}/members", owner.token, json={"user_ids": [outsider.id]}),
        "role": go("PATCH", f"/chats/{chat_id}/members/{member.id}", owner.token, json={"role": "admin"}),
        "profile": go("PATCH", "/users/me", member.token, json={"display_name": f"Member {tag}"}),
        "block": go("PUT", f"/users/me/blocks/{outsider.id}", member.token),
        "direct chat": go("POST", "/chats/initiate", outsider.token, json={"target_username": owner.username}),
        "upload": go("POST", "/upload?v=2", owner.token,
                     files={"file": (f"f-{tag}.txt", b"x" * 20_000, "text/plain")}),
        "login": go("POST", "/login", None, json={"username": owner.username}),
    }


def new_user(stack, prefix: str) -> helpers.User:
    username = helpers.unique_username(prefix)
    response = request(stack, "POST", "/login", json={"username": username})
    token = helpers.ok_json(response)["token"]
    return helpers.User(username=username, token=token, id=helpers.decode_token(token)["user_id"],
                        headers=helpers.auth(token))


def group_with_messages(stack, owner, member, count: int = 2) -> tuple[int, list[int]]:
    chat = helpers.ok_json(request(stack, "POST", "/chats", owner.token,
                                   json={"name": "faults", "participants": [member.id]}))
    ids = []
    for index in range(count):
        message = helpers.ok_json(request(stack, "POST", f"/chats/{chat['id']}/messages", owner.token,
                                          json={"content": f"seed {index}"}))
        ids.append(message["id"])
    return chat["id"], ids


def visible_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir()) if directory.is_dir() else []


def mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


def small_filesystem(size: str, prefix: str):
    """A generator for a module fixture: a tmpfs of `size` (mount's `size=`, e.g. "48m")
    mounted (as root; skipped otherwise) on a new directory, yielded, and removed afterwards
    whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    path = Path(tempfile.mkdtemp(prefix=prefix))
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        path.rmdir()
        pytest.fail(f"cannot mount a tmpfs on {path}: {result.stderr.strip()}")
    try:
        yield path
    finally:
        # Lazily, so that a process still holding a file there cannot keep the mount.
        if mounted(path):
            subprocess.run(["umount", "-l", str(path)], check=False)
        shutil.rmtree(path, ignore_errors=True)
        assert not mounted(path), f"{path} is still mounted"


def fill(path: Path) -> int:
    """Writes `path` until the filesystem refuses another byte; returns its size."""
    written = 0
    with open(path, "wb", buffering=0) as filler:
        for chunk in (1 << 20, 1 << 12, 1):
            block = b"\0" * chunk
            while True:
                try:
                    filler.write(block)
                    written += chunk
                except OSError as error:
                    assert error.errno in (errno.ENOSPC, errno.EDQUOT), error
                    break
    return written


async def writes_succeed_again(stack, owner, member, chat_id: int, ws, nonce: str) -> tuple[dict, dict]:
    """After a fault has passed, on the same processes: a REST message by `owner`, a profile
    change by `member` and a WS send with `nonce` on `ws` (a P2Client of the chat's). The
    message's JSON and the send's ACK frame."""
    message = helpers.ok_json(request(stack, "POST", f"/chats/{chat_id}/messages", owner.token,
                                      json={"content": "after the disk was freed"}))
    helpers.ok_json(request(stack, "PATCH", "/users/me", member.token, json={"display_name": "freed"}))
    await ws.send({"chat_id": chat_id, "content": "ws after", "nonce": nonce})
    frame, _ = await ws.recv_until(lambda f: f.get("op") in ("ACK", "ERROR"), timeout=15)
    assert frame["op"] == "ACK" and frame["d"]["nonce"] == nonce, frame
    return message, frame

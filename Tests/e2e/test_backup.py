"""scripts/backup and scripts/restore (README, "Backup and restore").

Under write load (a thread sending messages with attachments over REST) a backup is taken,
restored into a fresh DATA_DIR and a second stack started on it: every message acknowledged
before the backup began is there with its files, the database passes PRAGMA integrity_check,
and every attachment's file exists and is served. scripts/restore refuses a DATA_DIR whose
stack is running.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import conftest
import database
import helpers
from helpers import ok_json

pytestmark = database.sqlite_only

REPO_ROOT = Path(__file__).resolve().parents[2]


def script(name: str, *args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    environment = os.environ.copy()
    environment.update(DATA_DIR=str(data_dir), DATABASE_URL="", **env)
    return subprocess.run([str(REPO_ROOT / "scripts" / name), *args], cwd=REPO_ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


class Writer(threading.Thread):
    """Sends messages with one fresh attachment each, recording every acknowledged id and
    when its 200 arrived."""

    def __init__(self, api: helpers.Api, token: str, chat_id: int):
        super().__init__(daemon=True)
        self.api, self.token, self.chat_id = api, token, chat_id
        self.acked: list[tuple[float, int, str]] = []  # (monotonic time of the 200, id, stored url)
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        api = helpers.Api(self.api.base_url)  # a session of its own
        n = 0
        while not self.stop.is_set():
            n += 1
            body = f"attachment {n} ".encode() * 50
            upload = api.post("/upload?v=2", self.token, files={"file": (f"f{n}.txt", body, "text/plain")})
            if upload.status_code != 200:
                self.errors.append(f"upload {upload.status_code} {upload.text[:200]}")
                continue
            url = upload.json()["url"]
            sent = api.post(f"/chats/{self.chat_id}/messages", self.token,
                            json={"content": f"message {n}", "files": [{"url": url}]})
            if sent.status_code != 200:
                self.errors.append(f"send {sent.status_code} {sent.text[:200]}")
                continue
            self.acked.append((time.monotonic(), sent.json()["id"], url))


def all_messages(api: helpers.Api, token: str, chat_id: int) -> list[dict]:
    messages, after = [], 0
    while True:
        page = api.messages(token, chat_id, f"?after_id={after}&limit=1000")
        messages += page
        if len(page) < 1000:
            return messages
        after = page[-1]["id"]


def test_backup_under_write_load_restores_into_a_working_stack(stack, api, new_user, tmp_path):
    alice, bob = new_user("bk"), new_user("bk")
    chat_id = api.initiate(alice.token, target_id=bob.id)["chat_id"]
    writer = Writer(api, alice.token, chat_id)
    writer.start()
    try:
        assert helpers.wait_for(lambda: len(writer.acked) >= 30, timeout=60), (
            f"the writer got only {len(writer.acked)} messages through: {writer.errors[:3]}")
        began = time.monotonic()
        acked_before = {message_id: url for at, message_id, url in list(writer.acked) if at < began}
        dest = tmp_path / "backup"
        result = script("backup", str(dest), data_dir=stack.data_dir)
        ended = time.monotonic()
        count_during = sum(1 for at, _, _ in writer.acked if began <= at < ended)
        # Keep writing a little past the backup, as a live stack would.
        time.sleep(0.3)
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not writer.errors, writer.errors[:5]
    assert (dest / "backup.info").is_file() and not Path(str(dest) + ".partial").exists()
    info = dict(line.split("=", 1) for line in (dest / "backup.info").read_text().splitlines())
    assert int(info["messages"]) >= len(acked_before), info

    # The copy on its own: consistent, and every file it references is there.
    with sqlite3.connect(f"file:{dest / 'messenger.db'}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        names = [row[0] for row in db.execute("SELECT stored_name FROM files")]
    assert names and all((dest / "uploads" / name).is_file() for name in names)

    # Restoring over the running stack is refused, and changes nothing.
    before = (stack.data_dir / "messenger.db").stat().st_ino
    refused = script("restore", str(dest), data_dir=stack.data_dir, RESTORE_FORCE="1")
    assert refused.returncode != 0 and "running" in refused.stderr, refused.stderr
    assert (stack.data_dir / "messenger.db").stat().st_ino == before

    # Restore into a fresh DATA_DIR and start a second stack on it.
    fresh = Path(tempfile.mkdtemp(prefix="msgr-e2e-restored-"))
    os.chmod(fresh, 0o755)
    restored = script("restore", str(dest), data_dir=fresh)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    again = script("restore", str(dest), data_dir=fresh)
    assert again.returncode != 0 and "RESTORE_FORCE" in again.stderr, again.stderr
    second = conftest.start_stack(data_dir=fresh)
    try:
        api2 = helpers.Api(second.base_url)
        # The jwt_secret came along: alice's token from the first stack still works.
        messages = all_messages(api2, alice.token, chat_id)
        by_id = {message["id"]: message for message in messages}
        lost = sorted(set(acked_before) - set(by_id))
        assert not lost, f"{len(lost)} of {len(acked_before)} messages acknowledged before the backup are missing: {lost[:10]}"
        for message_id, url in acked_before.items():
            assert [f["url"] for f in by_id[message_id]["files"]] == [url], by_id[message_id]
        with sqlite3.connect(f"file:{fresh / 'messenger.db'}?mode=ro", uri=True) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = [row[0] for row in db.execute(
                "SELECT f.stored_name FROM files f JOIN message_files mf ON mf.file_id = f.id")]
        assert len(stored) >= len(acked_before)
        missing = [name for name in stored if not (fresh / "uploads" / name).is_file()]
        assert not missing, f"attachments without a file: {missing[:10]}"
        # And nginx serves them from the restored uploads.
        for message in messages[:3] + messages[-3:]:
            for item in message["files"]:
                served = api2.get(item["url"])
                assert served.status_code == 200 and len(served.content) == item["size_bytes"], item
        # The restored stack takes writes.
        helpers.ok_json(api2.post(f"/chats/{chat_id}/messages", alice.token, json={"content": "after restore"}))
        assert not api2.server_errors, api2.server_errors
    finally:
        conftest.stop_stack(second)
        conftest.cleanup_stack(second)
    print(f"\n{len(acked_before)} messages acknowledged before the backup, {count_during} during it")


def test_backup_refuses_an_existing_destination_and_a_missing_database(stack, tmp_path):
    existing = tmp_path / "there"
    existing.mkdir()
    result = script("backup", str(existing), data_dir=stack.data_dir)
    assert result.returncode != 0 and "already exists" in result.stderr
    empty = tmp_path / "empty-data"
    empty.mkdir()
    result = script("backup", str(tmp_path / "new"), data_dir=empty)
    assert result.returncode != 0 and "no database" in result.stderr
    assert not (tmp_path / "new").exists()


def test_restore_refuses_an_incomplete_or_corrupt_backup(stack, api, new_user, tmp_path):
    user = new_user("bk")
    receipt = ok_json(api.post("/upload", user.token, files={"file": ("x.txt", b"kept", "text/plain")}))
    dest = tmp_path / "backup"
    assert script("backup", str(dest), data_dir=stack.data_dir).returncode == 0
    # A referenced upload gone: refused before anything is written.
    (dest / "uploads" / receipt["url"].rsplit("/", 1)[1]).unlink()
    target = tmp_path / "target"
    result = script("restore", str(dest), data_dir=target)
    assert result.returncode != 0 and "lacks files" in result.stderr, result.stderr
    assert not (target / "messenger.db").exists()
    # Garbage instead of a database.
    (dest / "messenger.db").write_bytes(b"not a database" * 100)
    target = tmp_path / "target2"
    result = script("restore", str(dest), data_dir=target)
    assert result.returncode != 0, result.stderr
    assert not (target / "messenger.db").exists()

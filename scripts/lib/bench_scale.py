#!/usr/bin/env python3
"""scripts/bench --scale: the same requests against a small and a big database, both seeded
by ScaleSeed straight into SQLite, each served by a release stack (scripts/run) on its own
DATA_DIR and measured through nginx. Writes the "Data at scale" section of BENCHMARKS.md.

usage: bench_scale.py BIN_DIR REPORT_FILE COMMAND_LINE [MESSAGES ...]   (default 100000 10000000)

Each scale: seed (schema 003) → time `FCGIApp migrate` (004: the search index, backfilled)
→ start its stack. Then every row is timed on all scales in turn, one sample each, one client
with keep-alive (so that the machine's other load falls on every scale alike) → stop → sizes
→ delete the databases. The first scale is the reference for the p99 ratios.
BENCH_SCALE_REUSE="N=DIR" takes the N-message database from DIR/messenger.db (migrated) and
its seed figures from DIR/facts.json instead of seeding."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import websockets

REPO = Path(__file__).resolve().parents[2]
SAMPLES = 200          # per request row
SEARCH_SAMPLES = 200
LIST_SAMPLES = 60      # GET /chats?v=2 of the busy user is the heaviest row
RESUME_EVENTS = 10_000
RESUME_ROUNDS = 7
DEEP = 900_000         # before_id this many messages back in the big group (scaled below)
SECTION = "## Data at scale (`scripts/bench --scale`)"


def log(text: str) -> None:
    print(f"bench-scale: {text}", file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scale:
    def __init__(self, bin_dir: Path, messages: int):
        self.bin_dir = bin_dir
        self.messages = messages
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"messenger-scale-{messages}-", dir=os.environ.get("TMPDIR", "/tmp")))
        os.chmod(self.data_dir, 0o711)
        self.db = self.data_dir / "messenger.db"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.facts: dict = {}
        self.rows: dict[str, tuple[float, float, int]] = {}
        self.plan: list[tuple[str, int, object]] = []
        self.samples: dict[str, list[float]] = {}
        self.proc: subprocess.Popen | None = None

    # --- database -------------------------------------------------------------------------
    def seed(self) -> None:
        users, chats = max(1_000, self.messages // 100), max(2_000, self.messages // 50)
        log(f"seeding {self.messages:,} messages, {users:,} users, {chats:,} chats into {self.db}")
        started = time.monotonic()
        out = subprocess.run([str(self.bin_dir / "ScaleSeed"), "--database", str(self.db), "--migrations",
                              str(REPO / "migrations" / "sqlite"), "--messages", str(self.messages), "--users", str(users),
                              "--chats", str(chats)], check=True, capture_output=True, text=True)
        sys.stderr.write(out.stderr)
        self.facts = json.loads(out.stdout.strip().splitlines()[-1])
        self.facts["seed_seconds"] = time.monotonic() - started
        self.facts["size_before_migration"] = self.file_size()
        log(f"migrating (FCGIApp migrate: {self.pending_migrations()})")
        env = self.env()
        started = time.monotonic()
        subprocess.run([str(self.bin_dir / "FCGIApp"), "migrate"], check=True, env=env, capture_output=True)
        self.facts["migration_seconds"] = time.monotonic() - started
        with sqlite3.connect(self.db) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def pending_migrations(self) -> str:
        names = sorted(p.name for p in (REPO / "migrations" / "sqlite").glob("*.sql"))
        return ", ".join(n for n in names if int(n.split("_")[0]) > self.facts["schema"])

    def file_size(self) -> int:
        return sum(p.stat().st_size for p in self.data_dir.glob("messenger.db*"))

    def sizes(self) -> None:
        with sqlite3.connect(self.db) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            by_name = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
            indexes = dict(db.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type = 'index'"))
        self.facts["db_bytes"] = self.file_size()
        self.facts["fts_bytes"] = sum(v for k, v in by_name.items() if k.startswith("messages_fts"))
        self.facts["messages_bytes"] = by_name.get("messages", 0)
        self.facts["messages_index_bytes"] = sum(v for k, v in by_name.items()
                                                  if indexes.get(k) == "messages" or k.startswith("sqlite_autoindex_messages"))
        self.facts["events_bytes"] = sum(v for k, v in by_name.items() if k == "events" or indexes.get(k) == "events")
        del tables

    def query(self, sql: str, *args):
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            return db.execute(sql, args).fetchone()[0]

    # --- stack ----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RATE_")}
        env.update(PORT=str(self.port), DATA_DIR=str(self.data_dir), DATABASE_URL=f"sqlite:{self.db}",
                   LOG_LEVEL="warning", SKIP_BUILD="1", SKIP_INSTALL="1", BUILD_CONFIG="release",
                   BIN_DIR=str(self.bin_dir))
        return env

    def start(self) -> None:
        log(f"starting the stack on port {self.port}")
        self.log_path = self.data_dir / "stack.log"
        self.proc = subprocess.Popen([str(REPO / "scripts" / "run")], env=self.env(), cwd=REPO,
                                     stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while "ready on http" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the stack did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- measurements ---------------------------------------------------------------------
    def timed(self, name: str, count: int, call) -> None:
        """Registers a row: `call(i)` is timed `count` times by `run_interleaved`."""
        self.plan.append((name, count, call))

    def measure(self) -> None:
        """Prepares the rows (the requests' targets, checked once each); `run_interleaved`
        times them."""
        s = requests.Session()
        f = self.facts
        big, users = f["big_group_id"], f["users"]

        def ok(response: requests.Response) -> requests.Response:
            if response.status_code != 200:
                raise SystemExit(f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:300]}")
            return response

        token = ok(s.post(self.base + "/login", json={"username": f["busy_username"]})).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        rng = random.Random(17)
        self.timed("login (POST /login, existing user)", SAMPLES,
                   lambda i=0: ok(s.post(self.base + "/login", json={"username": f"u{rng.randint(2, users)}"})))
        chats = ok(s.get(self.base + "/chats?v=2", headers=auth)).json()
        f["busy_user_chats"] = len(chats)
        self.timed(f"GET /chats?v=2, busy user ({len(chats)} chats)", LIST_SAMPLES,
                   lambda i=0: ok(s.get(self.base + "/chats?v=2", headers=auth)))
        self.timed("history, first page (50, big group)", SAMPLES,
                   lambda i=0: ok(s.get(f"{self.base}/chats/{big}/messages?v=2&limit=50", headers=auth)))
        depth = min(DEEP, f["big_group_messages"] * 9 // 10)
        f["deep_back"] = depth
        deep_id = self.query("SELECT id FROM messages WHERE chat_id = ? AND deleted_at IS NULL ORDER BY id DESC LIMIT 1 OFFSET ?",
                             big, depth - 1)
        page = ok(s.get(f"{self.base}/chats/{big}/messages?v=2&limit=50&before_id={deep_id}", headers=auth)).json()
        assert len(page["messages"]) == 50 and page["messages"][-1]["id"] < deep_id, page["messages"][-1]
        self.timed(f"history, deep page (before_id {depth:,} back)", SAMPLES,
                   lambda i=0: ok(s.get(f"{self.base}/chats/{big}/messages?v=2&limit=50&before_id={deep_id}", headers=auth)))
        self.timed(f"catch-up, after_id {depth:,} back (100)", SAMPLES,
                   lambda i=0: ok(s.get(f"{self.base}/chats/{big}/messages?v=2&limit=100&after_id={deep_id}", headers=auth)))

        rare, common = f["rare_word"], f["common_word"]
        f["rare_hits"] = self.query("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", f"body : {rare}")
        f["common_hits"] = self.query("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", f"body : {common}")
        searches = [
            ("search, rare word, big group", rare, big),
            ("search, common word, big group", common, big),
            ("search, rare word, all chats", rare, None),
            ("search, common word, all chats", common, None),
            (f"search, prefix {common[:3]}*, all chats", common[:3] + "*", None),
            (f"search, phrase \"{common} …\", all chats", None, None),
        ]
        phrase_word = self.common_neighbour(common)
        for name, q, chat in searches:
            if q is None:
                q = f'"{common} {phrase_word}"'
            params = {"q": q, "limit": 20} | ({"chat_id": chat} if chat else {})
            body = ok(s.get(self.base + "/search", params=params, headers=auth)).json()
            f[f"hits::{name}"] = len(body["messages"])
            self.timed(name, SEARCH_SAMPLES, lambda i=0, p=params: ok(s.get(self.base + "/search", params=p, headers=auth)))

        self.timed("send into the big group (POST, 1,000 members)", SAMPLES,
                   lambda i=0: ok(s.post(f"{self.base}/chats/{big}/messages", headers=auth, json={"content": f"scale send {i}"})))
        self.resume(token)

    def common_neighbour(self, common: str) -> str:
        """A word that follows the common word in some message (for the phrase row)."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            for (content,) in db.execute("SELECT content FROM messages WHERE id > (SELECT max(id) - 1000 FROM messages)"):
                words = content.split()
                for a, b in zip(words, words[1:]):
                    if a == common and b != common:
                        return b
        return common

    def resume(self, token: str) -> None:
        time.sleep(1)  # the sends' events are committed and announced
        visible = """SELECT seq FROM events WHERE audience = 'chat'
                       AND chat_id IN (SELECT chat_id FROM chat_members WHERE user_id = ?)"""
        user = self.facts["busy_user_id"]
        total = self.query(f"SELECT count(*) FROM ({visible})", user)
        count, since = (RESUME_EVENTS, self.query(f"{visible} ORDER BY seq DESC LIMIT 1 OFFSET ?", user, RESUME_EVENTS)) \
            if total > RESUME_EVENTS else (total, 0)
        url = f"ws://127.0.0.1:{self.port}/ws?v=2&since={since}&token={token}"

        async def once() -> float:
            start = time.perf_counter()
            got = 0
            async with websockets.connect(url, max_size=None, compression=None) as ws:
                ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert ready.get("op") == "READY", ready
                head = ready["d"]["seq"]
                while got < count:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if "seq" in frame:
                        got += 1
                        if frame["seq"] >= head:
                            break
            elapsed = (time.perf_counter() - start) * 1000
            assert got == count, f"resume got {got} events, wanted {count}"
            return elapsed

        self.timed(f"resume of {count:,} events (WS, since=)", RESUME_ROUNDS, lambda i=0: asyncio.run(once()))


def run_interleaved(scales: list[Scale]) -> None:
    """Times every row on every scale, sample by sample in turn (small, big, small, …), so
    that whatever else the machine does falls on both alike; the first call of a row on
    each scale warms it and is not counted."""
    for scale in scales:
        scale.facts["load_before"] = os.getloadavg()[0]
    for row in range(len(scales[0].plan)):
        name, count, _ = scales[0].plan[row]
        for scale in scales:
            scale.plan[row][2]()
        for i in range(count):
            for scale in scales:
                start = time.perf_counter()
                scale.plan[row][2](i)
                scale.samples.setdefault(scale.plan[row][0], []).append((time.perf_counter() - start) * 1000)
        for scale in scales:
            key, values = scale.plan[row][0], scale.samples[scale.plan[row][0]]
            scale.rows[key] = (percentile(values, 0.50), percentile(values, 0.99), count)
            log(f"  {scale.messages:,}: {key}: p50 {scale.rows[key][0]:.2f} ms, p99 {scale.rows[key][1]:.2f} ms")
    for scale in scales:
        scale.facts["load_after"] = os.getloadavg()[0]


def mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def report(scales: list[Scale], command: str, started: str) -> str:
    small, big = scales[0], scales[-1]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "Sources", "migrations", "scripts"], cwd=REPO,
                                capture_output=True, text=True).stdout.strip())
    lines = [SECTION, "",
             f"`{command}` — {started}, commit {commit}{' (with uncommitted changes)' if dirty else ''}, "
             f"{os.cpu_count()} cores. Release build; one client, keep-alive, requests one after another through "
             f"nginx, the two stacks running side by side and measured in turn, sample by sample; "
             f"p50/p99 in ms over the sample count (n). Each database seeded by `ScaleSeed` "
             f"(SQLite directly), then `FCGIApp migrate` applied migration 004 (the search index) to it.", "",
             "| scale | users | chats | big group | seed | migrate 004 | database | per message | FTS index | messages table + its indexes | events | load avg (1 min) before/after measuring |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for sc in scales:
        f = sc.facts
        lines.append(
            f"| {f['messages']:,} messages | {f['users']:,} | {f['chats']:,} | {f['big_group_members']:,} members, "
            f"{f['big_group_messages']:,} messages | {f['seed_seconds']:.1f} s{' (earlier run, BENCH_SCALE_REUSE)' if f.get('reused') else ''} | {f['migration_seconds']:.1f} s | "
            f"{mb(f['db_bytes'])} | {f['db_bytes'] / f['messages']:.0f} B | {mb(f['fts_bytes'])} "
            f"({f['fts_bytes'] / f['messages']:.0f} B/message, {100 * f['fts_bytes'] / f['db_bytes']:.0f}% of the file) | "
            f"{mb(f['messages_bytes'])} + {mb(f['messages_index_bytes'])} | {mb(f['events_bytes'])} ({f['events']:,} events) | "
            f"{f['load_before']:.1f} / {f['load_after']:.1f} |")
    lines += ["",
              f"| request | {small.messages:,}: p50 | p99 | {big.messages:,}: p50 | p99 | n | p99 ratio | bar |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, (p50b, p99b, n) in big.rows.items():
        # Row names differ between scales only in their numbers (depths, chat counts).
        key = re.sub(r"[\d,]+", "#", name)
        small_row = next((v for k, v in small.rows.items() if re.sub(r"[\d,]+", "#", k) == key), None)
        if small_row is None:
            continue
        p50s, p99s, _ = small_row
        ratio = p99b / p99s if p99s else float("inf")
        bars = [f"ratio ≤ 2: {'PASS' if ratio <= 2 else 'FAIL'}"]
        if name.startswith("search, rare word"):
            bars.append(f"p99 < 50 ms: {'PASS' if p99b < 50 else 'FAIL'}")
        if name.startswith("search, common word"):
            bars.append(f"p99 < 200 ms: {'PASS' if p99b < 200 else 'FAIL'}")
        lines.append(f"| {name} | {p50s:.2f} | {p99s:.2f} | {p50b:.2f} | {p99b:.2f} | {n} | {ratio:.2f} | {'; '.join(bars)} |")
    f = big.facts
    lines += ["", f"Search hits at {big.messages:,}: the rare word `{f['rare_word']}` is in {f['rare_hits']:,} messages, "
              f"the common word `{f['common_word']}` in {f['common_hits']:,} "
              f"({100 * f['common_hits'] / f['messages']:.0f}%); a page is 20. "
              f"The busy user is in {f['busy_user_chats']:,} chats (the big group and "
              f"{f['busy_chats'] - 1:,} direct chats); the last {f['unread']:,} messages are unread for every member. "
              f"Resume: {RESUME_EVENTS:,} events of the busy user's chats, from `since` to the last, "
              f"{RESUME_ROUNDS} rounds (p99 = the slowest).", ""]
    return "\n".join(lines)


def write_report(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else ""
    if SECTION in text:
        start = text.index(SECTION)
        rest = text[start + len(SECTION):]
        nxt = rest.find("\n## ")
        text = text[:start] + section + (rest[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    bin_dir, report_file, command = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    sizes = [int(x) for x in sys.argv[4:]] or [100_000, 10_000_000]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    # BENCH_SCALE_REUSE="10000000=/dir": a database kept from an earlier run (dir/messenger.db,
    # already migrated, and dir/facts.json: its seed and migration figures).
    reuse = dict(item.split("=", 1) for item in os.environ.get("BENCH_SCALE_REUSE", "").split() if "=" in item)
    scales = [Scale(bin_dir, messages) for messages in sizes]
    try:
        for scale in scales:
            if str(scale.messages) in reuse:
                kept = Path(reuse[str(scale.messages)])
                log(f"reusing {kept}/messenger.db for {scale.messages:,} messages")
                os.link(kept / "messenger.db", scale.db)
                scale.facts = json.loads((kept / "facts.json").read_text())
                scale.facts["reused"] = True
            else:
                scale.seed()
        for scale in scales:
            scale.start()
            scale.measure()
        run_interleaved(scales)
        for scale in scales:
            scale.stop()
            scale.sizes()
    finally:
        for scale in scales:
            scale.stop()
            if os.environ.get("BENCH_KEEP") == "1":
                log(f"kept {scale.data_dir}")
            else:
                scale.remove()
    for scale in scales:
        json.dump({"facts": scale.facts, "rows": scale.rows}, sys.stderr, indent=1)
        print(file=sys.stderr)
    section = report(scales, command, started)
    write_report(report_file, section)
    print(section)


if __name__ == "__main__":
    main()

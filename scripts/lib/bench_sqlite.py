#!/usr/bin/env python3
"""Raw SQLite insert rate on a given disk: the same-run baseline for the write figures.

usage: bench_sqlite.py DB_PATH single|batch SECONDS
       bench_sqlite.py DB_PATH count PREFIX

Creates DB_PATH (WAL, synchronous=NORMAL, busy_timeout, the messages table and indexes of
migrations/sqlite/001 without foreign keys), inserts rows for SECONDS and prints one JSON line:
{"mode": ..., "rows_per_s": ...}. `single` commits every row in its own BEGIN IMMEDIATE
transaction (what one REST write does); `batch` commits 1,000 rows per transaction (what the
relay's group commit can do at best).

`count` opens the stack's own database read-only and prints {"mode": "count", "prefix": ...,
"rows": N}: the messages sent by the users named PREFIX_<n> (LoadGen's `--prefix`), for
comparing with the 200s a rest-write run was answered.
"""
import json
import os
import sqlite3
import sys
import time


def count(path: str, prefix: str) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.execute("PRAGMA busy_timeout = 5000")
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "\\_%"
    (rows,) = db.execute(
        "SELECT count(*) FROM messages JOIN users ON users.id = messages.sender_id "
        "WHERE users.username LIKE ? ESCAPE '\\'", (pattern,)).fetchone()
    db.close()
    print(json.dumps({"mode": "count", "prefix": prefix, "rows": rows}))
    return 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[2] == "count":
        return count(sys.argv[1], sys.argv[3])
    if len(sys.argv) != 4 or sys.argv[2] not in ("single", "batch"):
        print(__doc__, file=sys.stderr)
        return 64
    path, mode, seconds = sys.argv[1], sys.argv[2], min(max(float(sys.argv[3]), 0.2), 60.0)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 5000")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, chat_id INTEGER NOT NULL, "
        "sender_id INTEGER NOT NULL, content TEXT, nonce TEXT, created_at TEXT NOT NULL "
        "DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))"
    )
    db.execute("CREATE INDEX messages_chat ON messages(chat_id, id)")
    db.execute("CREATE UNIQUE INDEX messages_sender_nonce ON messages(sender_id, nonce) WHERE nonce IS NOT NULL")
    # The rows are generated inside SQLite (executescript, a recursive CTE), so the rate is
    # SQLite's and the disk's, not Python's.
    rows = 0
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline and rows < 50_000_000:
        if mode == "single":
            chunk = 200
            db.executescript("".join(
                "BEGIN IMMEDIATE;INSERT INTO messages (chat_id, sender_id, content, nonce) "
                "VALUES (%d, %d, 'i%d', 'n%d');COMMIT;" % (1 + n % 1000, 1 + n % 2000, n, n)
                for n in range(rows, rows + chunk)
            ))
        else:
            chunk = 1000
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO messages (chat_id, sender_id, content, nonce) "
                "SELECT 1 + x % 1000, 1 + x % 2000, 'i' || x, 'n' || x FROM "
                "(WITH RECURSIVE c(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1 + ?2 - 1) SELECT x FROM c)",
                (rows, chunk),
            )
            db.execute("COMMIT")
        rows += chunk
    elapsed = time.monotonic() - started
    db.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    print(json.dumps({"mode": mode, "rows": rows, "seconds": round(elapsed, 3), "rows_per_s": round(rows / elapsed)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

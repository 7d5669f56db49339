"""The database a test stack runs on, and the tests' own look into it.

SQLite in the stack's DATA_DIR by default. With ``E2E_BACKEND=postgres`` (scripts/test's
second pass), every stack gets a PostgreSQL database of its own on the throwaway cluster
scripts/test started (``E2E_PG_ADMIN_URL``: its superuser; ``E2E_PG_DATABASE_URL``: the app's
role on a database ``messenger``, whose name is swapped for each stack's), created empty as
migrations/postgres/README.md asks and dropped with the stack. ``scripts/run`` migrates it
(``FCGIApp migrate``), as it does the SQLite file.

Tests read (and, for faults, write) the database through ``rows``/``execute`` with SQLite's
``?`` parameters on either backend. A test of something only SQLite has (its lock, its files,
its pragmas) is marked ``sqlite_only``.
"""

from __future__ import annotations

import os
import re
import sqlite3
import uuid
from pathlib import Path

import pytest

BACKEND = os.environ.get("E2E_BACKEND", "sqlite")
ON_POSTGRES = BACKEND == "postgres"
if BACKEND not in ("sqlite", "postgres"):
    raise RuntimeError(f"E2E_BACKEND must be sqlite or postgres, got {BACKEND!r}")

sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="SQLite only (its file, its lock or its pragmas)")


def _admin():
    import psycopg  # only the PostgreSQL pass needs it

    return psycopg.connect(os.environ["E2E_PG_ADMIN_URL"], autocommit=True)


def create(data_dir: Path, tablespace: str | None = None) -> str:
    """A DATABASE_URL for a new stack in ``data_dir``: the SQLite file there, or a new empty
    PostgreSQL database; with ``tablespace`` (PostgreSQL only; one the role ``messenger`` may
    create in), every table and index the migrations create goes there (the database's
    ``default_tablespace``), while the catalogs and the cluster's WAL stay on its own disk."""
    if not ON_POSTGRES:
        assert tablespace is None, "a tablespace is PostgreSQL's"
        return f"sqlite:{data_dir}/messenger.db"
    shared = os.environ["E2E_PG_DATABASE_URL"]
    name = "e2e_" + uuid.uuid4().hex[:16]
    assert "/messenger?" in shared, f"E2E_PG_DATABASE_URL names no database 'messenger': {shared}"
    with _admin() as admin:
        admin.execute(f"CREATE DATABASE {name} OWNER messenger TEMPLATE template0 ENCODING 'UTF8' "
                      "LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'")
        if tablespace is not None:
            admin.execute(f"ALTER DATABASE {name} SET default_tablespace = {tablespace}")
    return shared.replace("/messenger?", f"/{name}?")


def drop(url: str) -> None:
    """Drops the PostgreSQL database ``create`` made (the SQLite file goes with DATA_DIR)."""
    if not url.startswith("postgres"):
        return
    name = url.split("?", 1)[0].rsplit("/", 1)[1]
    with _admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _connect(stack, read_only: bool):
    url = stack.database_url
    if url.startswith("postgres"):
        import psycopg

        return psycopg.connect(url, autocommit=True)
    path = url.removeprefix("sqlite:")
    if read_only:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    else:
        connection = sqlite3.connect(path, timeout=10, isolation_level=None)
    connection.execute("PRAGMA busy_timeout = 10000")
    return connection


def _dialect(connection, sql: str, params) -> str:
    """SQLite's ``?`` and ``:name`` parameters as psycopg's ``%s`` and ``%(name)s`` on
    PostgreSQL."""
    if isinstance(connection, sqlite3.Connection) or not params:
        return sql
    sql = sql.replace("%", "%%")
    if isinstance(params, dict):
        return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql)
    return sql.replace("?", "%s")


def _params(params):
    return params if isinstance(params, dict) else tuple(params)


def rows(stack, sql: str, params=()) -> list[tuple]:
    """The rows of one query, read in a connection of its own (the stack's database)."""
    params = _params(params)
    connection = _connect(stack, read_only=True)
    try:
        return [tuple(row) for row in connection.execute(_dialect(connection, sql, params), params).fetchall()]
    finally:
        connection.close()


def execute(stack, sql: str, params=()) -> int:
    """Runs one statement in a connection of its own, committed; returns the rows it changed."""
    params = _params(params)
    connection = _connect(stack, read_only=False)
    try:
        return connection.execute(_dialect(connection, sql, params), params).rowcount
    finally:
        connection.close()


def head_seq(stack) -> int:
    """The newest seq ever handed out (pruning never lowers it)."""
    sql = ("SELECT seq FROM event_counter" if stack.database_url.startswith("postgres")
           else "SELECT seq FROM sqlite_sequence WHERE name = 'events'")
    found = rows(stack, sql)
    return found[0][0] if found else 0


def table_names(stack) -> set[str]:
    sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
           if stack.database_url.startswith("postgres") else "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in rows(stack, sql)}


def integrity(stack) -> tuple[str, list]:
    """SQLite's ``integrity_check`` and ``foreign_key_check``. PostgreSQL has neither: it
    checks every constraint at every statement and its pages by their checksums as it reads
    them, so there it is a read of every table a write touches (which reads every page)."""
    if not stack.database_url.startswith("postgres"):
        connection = _connect(stack, read_only=True)
        try:
            return (connection.execute("PRAGMA integrity_check").fetchone()[0],
                    connection.execute("PRAGMA foreign_key_check").fetchall())
        finally:
            connection.close()
    for table in sorted(table_names(stack)):
        rows(stack, f"SELECT count(*) FROM {table}")
    return ("ok", [])


# The key of PostgreSQL's write lock (migrations/postgres/001, messenger_write_lock()).
POSTGRES_WRITE_LOCK = 7886761135174153317


class WriteLock:
    """Another process holding the database's write lock, as a stuck writer would: SQLite's
    ``BEGIN IMMEDIATE``, or on PostgreSQL the advisory lock every write transaction takes
    first. ``hold()`` returns once it is held; ``release()`` rolls back."""

    def __init__(self, stack):
        self.connection = _connect(stack, read_only=False)

    def hold(self) -> None:
        if isinstance(self.connection, sqlite3.Connection):
            self.connection.execute("BEGIN IMMEDIATE")
        else:
            self.connection.execute("BEGIN")
            self.connection.execute("SELECT pg_advisory_xact_lock(%s)", (POSTGRES_WRITE_LOCK,))

    def release(self) -> None:
        try:
            self.connection.execute("ROLLBACK")
        finally:
            self.connection.close()

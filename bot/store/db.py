"""The engine: SQLite (default, one replica) or PostgreSQL (several replicas), migrated at connect."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from bot.store.migrations import HEAD, applied_version, migrate

_WRITES = "amlbot_writes"  # execution option of `transaction`: SQLite takes the write lock at BEGIN
# One SQLite writer at a time in this process, handed over the moment it commits: threads that met
# SQLite's lock instead would poll for it, sleeping up to 100 ms between tries (its busy handler).
_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def normalise_url(url: str) -> str:
    """Accept the usual postgres:// spellings and use the psycopg (v3) driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def create_store_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:  # the driver's own objects: sqlite3's
            # Let SQLAlchemy, not the driver, start transactions, so BEGIN IMMEDIATE below holds.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # A writer takes the write lock at the start: each is a compare-and-set. A read begins
            # deferred and reads its WAL snapshot without queueing behind writers (or they behind it).
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITES) else "BEGIN")

        _WRITERS[engine] = threading.Lock()
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes; reads use `engine.connect()`."""
    with _WRITERS.get(engine) or nullcontext(), engine.connect() as conn:
        conn.execution_options(**{_WRITES: True})
        with conn.begin():
            yield conn


def migrate_engine(engine: Engine) -> int:
    # Reads first, without the write lock (or PostgreSQL's advisory lock): on a restart the schema is
    # current and nothing more is needed. A migrator elsewhere can only move the version up.
    with engine.connect() as conn:
        version = applied_version(conn)
    if version >= HEAD:
        return version
    with transaction(engine) as conn:
        if engine.dialect.name == "postgresql":
            # Two replicas starting at once must not both run a migration.
            conn.execute(text("SELECT pg_advisory_xact_lock(7243001)"))
        return migrate(conn)

"""Databases for tests: a SQLite file per test, and a throwaway PostgreSQL database per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

# The development and CI machines run PostgreSQL here with trust auth; override to point elsewhere.
ADMIN_URL = os.environ.get("AMLBOT_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _reachable() -> str | None:
    try:
        engine = create_engine(ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return None
    except OperationalError as error:
        return f"PostgreSQL is not reachable at {ADMIN_URL}: {str(error).splitlines()[0]}"


@contextmanager
def postgres_database() -> Iterator[str | None]:
    """Yields the URL of a new empty database, dropped after; None (with a reason) if unreachable."""
    reason = _reachable()
    if reason:
        yield None
        return
    name = f"amlbot_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_skip_reason() -> str | None:
    return _reachable()

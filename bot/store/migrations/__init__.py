"""Migrations: numbered, frozen files that each make one change to the store's schema.

`NNNN_name.py` holds `upgrade(conn)`, which makes its change with SQLAlchemy Core on tables and
columns written inside that file (never `bot.store.schema`'s live tables, which move on). They run
once each, in order, in one transaction; `schema_version` records each one applied.

To add a migration, when you change a table in `bot/store/schema.py`:
1. write `NNNN_what_it_does.py` with the next number and an `upgrade(conn)` that makes exactly
   that change (e.g. `ALTER TABLE … ADD COLUMN …` from a `Column` defined in the file);
2. run `tests/unit/test_migrations.py`: it fails until the migrated schema equals schema.py's;
3. freeze it in the commit that lands it: `sha256sum NNNN_what_it_does.py >> SHIPPED.sha256` here.
A shipped migration never changes (the test compares SHIPPED.sha256); fix a mistake with a new one.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Column, Connection, DateTime, Integer, MetaData, Table, func, inspect, select

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+$")

# The runner's own bookkeeping; it predates the numbered files and is created before any of them.
schema_version = Table(
    "schema_version",
    MetaData(),
    Column("version", Integer, primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


def _names() -> list[str]:
    found = sorted(info.name for info in pkgutil.iter_modules(__path__) if _NAME.match(info.name))
    numbers = [int(name[:4]) for name in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001, 0002, … without gaps; found {found}")
    return found


# Named, not imported: a start whose database is current (every restart) never loads one.
_NAMES = _names()
HEAD = len(_NAMES)


def _upgrade(version: int) -> Callable[[Connection], None]:
    return importlib.import_module(f"{__name__}.{_NAMES[version - 1]}").upgrade  # type: ignore[no-any-return]


def applied_version(conn: Connection) -> int:
    """The last migration recorded in this database; 0 for one never migrated."""
    if not inspect(conn).has_table(schema_version.name):
        return 0
    return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)


def migrate(conn: Connection, target: int = HEAD) -> int:
    """Apply the migrations after the database's version up to `target`; returns the version now in force."""
    schema_version.create(conn, checkfirst=True)
    current = applied_version(conn)
    for version in range(current + 1, target + 1):
        _upgrade(version)(conn)
        conn.execute(schema_version.insert().values(version=version, applied_at=datetime.now(UTC)))
    return max(current, target)

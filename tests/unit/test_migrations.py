"""Migrations never change: version 1 always makes the version-1 schema, every database upgrades
to head keeping its rows, and head is exactly the schema the code queries with."""

from __future__ import annotations

import hashlib
import importlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, MetaData, inspect, null, select

from bot.lifecycle import State
from bot.store import migrations, schema
from bot.store.db import create_store_engine, migrate_engine
from bot.store.store import Store, now
from tests.conftest import AUDIT_KEY
from tests.support.databases import postgres_database, postgres_skip_reason

FOLDER = Path(migrations.__file__).parent
SHIPPED = FOLDER / "SHIPPED.sha256"
NewDatabase = Callable[[], str]


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NewDatabase]:
    """Makes empty databases of one kind, each dropped after the test."""
    with ExitStack() as stack:

        def make() -> str:
            if request.param == "sqlite":
                return f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}"
            url = stack.enter_context(postgres_database())
            if url is None:
                pytest.skip(postgres_skip_reason() or "PostgreSQL unavailable")
            return url

        yield make


def _rows(conn: Connection, tables: MetaData) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of these tables, through these tables' columns only."""
    return {
        table.name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
        for table in tables.sorted_tables
    }


def test_a_version_1_database_with_rows_upgrades_to_head_and_keeps_them(new_database: NewDatabase) -> None:
    url = new_database()
    engine = create_store_engine(url)
    version_1 = importlib.import_module("bot.store.migrations.0001_initial").metadata
    t = version_1.tables
    at, held_until = now(), now() + timedelta(days=1)
    request = {
        "team_id": "T1", "channel_id": "C1", "requester": "UREQ", "text": "delete run r1", "action": "delete run",
        "workspace": "dev", "intent": {"verb": "delete"}, "plan": {"items": ["run r1"]}, "plan_hash": "sha256:x",
        "approvals_required": 1, "created_at": at, "updated_at": at, "expires_at": held_until, "reminded": False, "result": None,
    }
    with engine.begin() as conn:
        assert migrations.migrate(conn, target=1) == 1
        conn.execute(t["requests"].insert(), [
            {**request, "id": "rrunning", "state": State.RUNNING.value},
            {**request, "id": "rdone", "state": State.SUCCEEDED.value, "result": {"deleted": 1}},
        ])
        conn.execute(t["approvals"].insert(), [{"request_id": "rrunning", "user_id": "UAPP", "at": at}])
        conn.execute(t["jobs"].insert(), [
            {"request_id": "rrunning", "lease_owner": "w1", "lease_until": held_until, "attempts": 1,
             "cancel_requested": False, "progress": {"done": 3}, "progress_ts": "1.2"},
            {"request_id": "rdone", "lease_owner": None, "lease_until": None, "attempts": 1, "cancel_requested": False,
             "progress": None, "progress_ts": None},
        ])
        conn.execute(t["job_items"].insert(), [{"request_id": "rrunning", "item_key": "run:r1", "outcome": "deleted"}])
        conn.execute(t["deliveries"].insert(), [{"key": "trigger-1", "at": at}])
        conn.execute(t["audit_log"].insert(), [{
            "seq": 1, "at": at.isoformat(), "actor": "UREQ", "event": "request.created", "request_id": "rrunning",
            "channel_id": "C1", "outcome": "ok", "detail": "{}", "prev_hash": "0" * 64, "hash": "1" * 64,
        }])
        conn.execute(t["audit_head"].insert(), [{"id": 1, "seq": 1, "hash": "1" * 64, "signature": "ed25519:k:AAAA"}])
        conn.execute(t["receipts"].insert(), [{"request_id": "rdone", "document": "{}", "posted": True}])
        conn.execute(t["flags"].insert(), [{"name": "frozen", "value": None, "set_by": "UADMIN", "set_at": at}])
        before = _rows(conn, version_1)

    assert migrate_engine(engine) == migrations.HEAD
    with engine.connect() as conn:
        assert _rows(conn, version_1) == before
    engine.dispose()

    store = Store.open(url, AUDIT_KEY)  # what a replica does at start: nothing left to apply
    try:
        running = store.get("rrunning")
        assert running and running.state is State.RUNNING and running.approvers == ("UAPP",)
        assert running.enterprise_id is None  # made before Grid orgs were recorded: its own workspace's alone
        job = store.job("rrunning")
        assert job and job["finished_at"] is None and job["posted_steps"] == 0 and job["result_posted"] is False
        assert store.claim_job("w2", timedelta(seconds=60)) is None  # still w1's lease
        assert store.unposted_results() == []  # finished before delivery was tracked: never posted again
    finally:
        store.close()


def test_a_restart_on_a_current_database_reads_the_version_and_writes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'amlbot.db'}"
    Store.open(url, AUDIT_KEY).close()  # the first start migrates
    holder = sqlite3.connect(tmp_path / "amlbot.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process mid-write: a start that wanted the write lock would wait 30 s and fail
    try:
        engine = create_store_engine(url)
        assert migrate_engine(engine) == migrations.HEAD
        engine.dispose()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_version_3_database_counts_the_items_of_the_plans_it_holds(new_database: NewDatabase) -> None:
    """Version 4 gives each request its plan's item count, which reads use instead of the plan."""
    url = new_database()
    engine = create_store_engine(url)
    requests = importlib.import_module("bot.store.migrations.0001_initial").metadata.tables["requests"]
    at = now()
    request = {
        "team_id": "T1", "channel_id": "C1", "requester": "UREQ", "text": "delete run r1", "action": "delete run",
        "workspace": "dev", "intent": {}, "plan_hash": "sha256:x", "state": State.PENDING.value, "approvals_required": 1,
        "created_at": at, "updated_at": at, "expires_at": at + timedelta(days=1), "reminded": False,
    }
    big = {"items": [{"kind": "blob", "ref": f"ExperimentRun/dcid.r1/{i}.txt"} for i in range(1200)], "warnings": []}
    with engine.begin() as conn:
        assert migrations.migrate(conn, target=3) == 3
        conn.execute(requests.insert(), [
            {**request, "id": "rbig", "plan": big},
            {**request, "id": "rempty", "plan": {"items": []}},
            {**request, "id": "rnoitems", "plan": {"warnings": ["old"]}},
            {**request, "id": "rjsonnull", "plan": None},  # the JSON type stores None as JSON null
            {**request, "id": "rsqlnull", "plan": null()},
        ])

    assert migrate_engine(engine) == migrations.HEAD
    with engine.connect() as conn:
        counted = {row.id: row.plan_items for row in conn.execute(select(schema.requests.c.id, schema.requests.c.plan_items))}
        assert conn.execute(select(schema.requests.c.plan).where(schema.requests.c.id == "rbig")).scalar() == big
    engine.dispose()
    assert counted == {"rbig": 1200, "rempty": 0, "rnoitems": 0, "rjsonnull": None, "rsqlnull": None}

    store = Store.open(url, AUDIT_KEY)
    try:
        assert store.get("rbig").plan_items == 1200  # type: ignore[union-attr]
        assert store.plan_of("rbig") == big
    finally:
        store.close()


def _shape(url: str) -> set[str]:
    """The schema as the database reports it, one fact per line, the runner's own table left out."""
    engine = create_store_engine(url)
    facts: set[str] = set()
    with engine.connect() as conn:
        found = inspect(conn)
        for table in set(found.get_table_names()) - {migrations.schema_version.name}:
            for column in found.get_columns(table):
                null = "NULL" if column["nullable"] else "NOT NULL"
                facts.add(f"column {table}.{column['name']} {column['type']} {null} default={column.get('default')}")
            facts.add(f"primary key {table}{tuple(found.get_pk_constraint(table)['constrained_columns'])}")
            for index in found.get_indexes(table):
                unique = "unique " if index["unique"] else ""
                facts.add(f"{unique}index {index['name']} on {table}{tuple(index['column_names'])}")
            for constraint in found.get_unique_constraints(table):
                facts.add(f"unique {constraint['name']} on {table}{tuple(constraint['column_names'])}")
            for key in found.get_foreign_keys(table):
                facts.add(f"foreign key {table}{tuple(key['constrained_columns'])} -> {key['referred_table']}")
    engine.dispose()
    return facts


def test_the_migrated_schema_is_the_one_the_code_queries_with(new_database: NewDatabase) -> None:
    migrated, live = new_database(), new_database()
    engine = create_store_engine(migrated)
    migrate_engine(engine)
    engine.dispose()
    engine = create_store_engine(live)
    schema.metadata.create_all(engine)
    engine.dispose()
    missing, extra = sorted(_shape(live) - _shape(migrated)), sorted(_shape(migrated) - _shape(live))
    assert not (missing or extra), (
        "bot/store/schema.py and the migrated schema differ; write a migration "
        "(see bot/store/migrations/__init__.py):\n"
        + "".join(f"  in schema.py, not made by any migration: {fact}\n" for fact in missing)
        + "".join(f"  made by the migrations, not in schema.py: {fact}\n" for fact in extra)
    )


def test_shipped_migrations_never_change() -> None:
    shipped = dict(reversed(line.split()) for line in SHIPPED.read_text().splitlines() if line.strip())
    files = sorted(path.name for path in FOLDER.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert len(files) == migrations.HEAD
    unfrozen = [name for name in files if name not in shipped]
    assert not unfrozen, f"freeze new migrations as you land them: `sha256sum {' '.join(unfrozen)} >> SHIPPED.sha256`"
    changed = [name for name, digest in shipped.items() if hashlib.sha256((FOLDER / name).read_bytes()).hexdigest() != digest]
    assert not changed, f"{changed} changed after shipping: migrations never change; write a new one instead"

"""Version 2 (durable jobs): when a job started and finished, and the delivery of its result."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Connection, DateTime, Integer, String, false, text
from sqlalchemy.schema import CreateColumn

# Jobs finished before this have finished_at NULL: their results are never posted again.
ADDED_TO_JOBS = (
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("posted_steps", Integer, nullable=False, server_default=text("0")),
    Column("result_posted", Boolean, nullable=False, server_default=false()),
    Column("posting_owner", String(64), nullable=True),
    Column("posting_until", DateTime(timezone=True), nullable=True),
)


def upgrade(conn: Connection) -> None:
    for column in ADDED_TO_JOBS:
        conn.execute(text(f"ALTER TABLE jobs ADD COLUMN {CreateColumn(column).compile(dialect=conn.dialect)}"))

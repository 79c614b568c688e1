"""Version 1 (shipped with the store): the tables as they were on that day."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

# Frozen copies, not bot.store.schema's tables: version 1 must create the same schema forever.
metadata = MetaData()

Table(
    "requests",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("team_id", String(32), nullable=False),
    Column("channel_id", String(32), nullable=False),
    Column("requester", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("action", String(64), nullable=False),
    Column("workspace", String(64), nullable=False),
    Column("intent", JSON, nullable=False),
    Column("plan", JSON, nullable=True),
    Column("plan_hash", String(80), nullable=True),
    Column("state", String(32), nullable=False),
    Column("approvals_required", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("reminded", Boolean, nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=True),
    Column("card_ts", String(32), nullable=True),
    Column("decided_by", String(32), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("result", JSON, nullable=True),
    Index("ix_requests_state", "state"),
)

Table(
    "approvals",
    metadata,
    Column("request_id", String(16), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("request_id", "user_id"),
)

Table(
    "jobs",
    metadata,
    Column("request_id", String(16), primary_key=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("progress", JSON, nullable=True),
    Column("progress_ts", String(32), nullable=True),
)

Table(
    "job_items",
    metadata,
    Column("request_id", String(16), nullable=False),
    Column("item_key", String(1100), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("detail", JSON, nullable=True),
    PrimaryKeyConstraint("request_id", "item_key"),
)

Table(
    "deliveries",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("event", String(64), nullable=False),
    Column("request_id", String(16), nullable=True),
    Column("channel_id", String(32), nullable=True),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(80), nullable=False),
    Column("hash", String(80), nullable=False),
    Index("ix_audit_log_request_id", "request_id"),
)

Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(80), nullable=False),
    Column("signature", String(128), nullable=False),
)

Table(
    "receipts",
    metadata,
    Column("request_id", String(16), primary_key=True),
    Column("document", Text, nullable=False),
    Column("posted", Boolean, nullable=False),
)

Table(
    "flags",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=True),
    Column("set_by", String(32), nullable=True),
    Column("set_at", DateTime(timezone=True), nullable=True),
)


def upgrade(conn: Connection) -> None:
    metadata.create_all(conn)

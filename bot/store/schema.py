"""The tables the code queries with. A change here needs a migration: see bot/store/migrations."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
    text,
)

metadata = MetaData()

requests = Table(
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
    Column("state", String(32), nullable=False, index=True),
    Column("approvals_required", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("reminded", Boolean, nullable=False, default=False),
    Column("not_before", DateTime(timezone=True), nullable=True),  # cooling-off end
    Column("card_ts", String(32), nullable=True),
    Column("decided_by", String(32), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("result", JSON, nullable=True),
    Column("enterprise_id", String(32), nullable=True),  # the Enterprise Grid org it was made in, if any
    Column("plan_items", Integer, nullable=True),  # len(plan["items"]): what reads need, without the plan
)

approvals = Table(
    "approvals",
    metadata,
    Column("request_id", String(16), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("request_id", "user_id"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("request_id", String(16), primary_key=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("progress", JSON, nullable=True),
    Column("progress_ts", String(32), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),  # first claim: what a receipt says
    # Delivery of what a finished job produced (link, error, receipt) to its thread: each post is
    # counted as Slack confirms it, and one worker at a time holds the posting claim.
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("posted_steps", Integer, nullable=False, server_default=text("0")),
    Column("result_posted", Boolean, nullable=False, server_default=false()),
    Column("posting_owner", String(64), nullable=True),
    Column("posting_until", DateTime(timezone=True), nullable=True),
)

job_items = Table(
    "job_items",
    metadata,
    Column("request_id", String(16), nullable=False),
    Column("item_key", String(1100), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("detail", JSON, nullable=True),
    PrimaryKeyConstraint("request_id", "item_key"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),  # ISO text: hashed exactly as stored
    Column("actor", String(64), nullable=False),
    Column("event", String(64), nullable=False),
    Column("request_id", String(16), nullable=True, index=True),
    Column("channel_id", String(32), nullable=True),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text, nullable=False),  # canonical JSON text, hashed as stored
    Column("prev_hash", String(80), nullable=False),
    Column("hash", String(80), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(80), nullable=False),
    Column("signature", String(128), nullable=False),
)

receipts = Table(
    "receipts",
    metadata,
    Column("request_id", String(16), primary_key=True),
    Column("document", Text, nullable=False),
    Column("posted", Boolean, nullable=False, default=False),  # superseded by jobs.result_posted (migration 2)
)

flags = Table(
    "flags",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=True),
    Column("set_by", String(32), nullable=True),
    Column("set_at", DateTime(timezone=True), nullable=True),
)

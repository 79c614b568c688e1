"""Version 3 (Enterprise Grid): the org a request was made in, so a policy may share requests
across the org's workspaces. Requests made before it have none: they stay in their own workspace."""

from __future__ import annotations

from sqlalchemy import Column, Connection, String, text
from sqlalchemy.schema import CreateColumn

ENTERPRISE_ID = Column("enterprise_id", String(32), nullable=True)


def upgrade(conn: Connection) -> None:
    conn.execute(text(f"ALTER TABLE requests ADD COLUMN {CreateColumn(ENTERPRISE_ID).compile(dialect=conn.dialect)}"))

"""Which statements read a request's plan column: ordinary reads of a request must not (decoding a
plan of 100 000 items holds the GIL for most of a second); only `Store.plan_of` does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

# The column as SQLAlchemy names it in a SELECT (quoted where `plan` is a keyword); never plan_hash or plan_items.
PLAN_COLUMN = re.compile(r'\brequests\."?plan"?(?!\w)')


@contextmanager
def plan_reads(engine: Engine) -> Iterator[list[str]]:
    """The statements sent to the database meanwhile that name the plan column, as they went."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if PLAN_COLUMN.search(statement):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)

"""What every listener does once it has acked: act on the first copy of a delivery only (a copy is
dropped, see bot/deliveries.py), and tell the person when the database fails, since Slack already
has its 200 and would otherwise show nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.deliveries import first_copy

log = logging.getLogger(__name__)

# What the person is told when the database fails after the ack: nothing was recorded.
DATABASE_DOWN = ":warning: The database is unavailable right now: nothing was recorded. Please try again in a few minutes."

Work = Callable[[], Awaitable[str | None]]


async def once(context: Mapping[str, Any], work: Work, kind: str) -> tuple[bool, str | None]:
    """After `ack()`: whether anything was done (False for a copy of a delivery), and `work`'s private
    answer, or DATABASE_DOWN if the database failed. `kind` names the delivery in the log."""
    try:
        if not await first_copy(context):
            return False, None
        return True, await work()
    except SQLAlchemyError:
        log.exception("database error after the ack", extra={"delivery": kind})
        return True, DATABASE_DOWN

"""What the bot sends Slack, in the order people should read it, within Slack's rate limits.

Slack takes about one message a second per channel and answers 429 with `Retry-After` beyond it
(SLACK-FACTS.md). The client's retry handler waits that out a few times; past that, a post Slack
only deferred is still owed. So:
- posts to one thread go out one at a time, in the order they were asked for (a decision, the
  progress line, the result), each tried again after `Retry-After` for as long as Slack says 429;
- edits of one message are coalesced: while one is in flight, newer ones replace each other, and
  the newest goes next; an edit superseded before its turn is never sent.
Order holds within one process; another replica's posts to the same thread are not ordered with these.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

T = TypeVar("T")
Key = tuple[str, str | None]  # (channel, thread or message ts)


def retry_after(error: BaseException) -> float | None:
    """The seconds Slack asked to wait before trying again, when it answered 429; else None."""
    if not isinstance(error, SlackApiError) or error.response.status_code != 429:
        return None
    headers = error.response.headers or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(value, list):  # some transports give each header as a list
        value = value[0] if value else None
    if value is None:
        return 1.0
    try:
        return max(1.0, float(value))  # Slack speaks in whole seconds
    except (TypeError, ValueError):
        return 1.0


async def when_accepted(call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, tried again after each 429's `Retry-After`: Slack deferred it, it did not refuse it.
    Other failures are the caller's."""
    while True:
        try:
            return await call()
        except SlackApiError as error:
            wait = retry_after(error)
            if wait is None:
                raise
            log.info("slack rate limit: waiting", extra={"method": error.response.api_url.rsplit("/", 1)[-1], "seconds": wait})
            await asyncio.sleep(wait)


@dataclass
class _Edits:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    latest: Callable[[], Awaitable[Any]] | None = None
    asked: int = 0  # edits asked for so far
    sent: int = 0  # the newest of them that went out (or was given up on)
    users: int = 0  # callers inside `edit`: the entry is dropped with the last


class Outbox:
    def __init__(self) -> None:
        self._tails: dict[Key, asyncio.Task[Any]] = {}
        self._edits: dict[Key, _Edits] = {}

    def post(self, channel: str, thread_ts: str | None, call: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """Queue `call` (a post into `thread_ts` of `channel`, or its top level) behind the posts
        already queued there. The order is fixed here, synchronously; await the task for the result."""
        key = (channel, thread_ts)
        task = asyncio.ensure_future(self._after(self._tails.get(key), call))
        self._tails[key] = task
        task.add_done_callback(lambda done: self._tails.pop(key) if self._tails.get(key) is done else None)
        return task

    @staticmethod
    async def _after(previous: asyncio.Task[Any] | None, call: Callable[[], Awaitable[T]]) -> T:
        if previous is not None:
            await asyncio.wait([previous])  # its outcome is its caller's, not ours
        return await when_accepted(call)

    async def edit(self, channel: str, ts: str, call: Callable[[], Awaitable[Any]]) -> None:
        """Send `call` (an edit of message `ts`), or a newer edit of it asked for meanwhile; returns
        once an edit at least as new as this one went out. Failures are `call`'s to handle."""
        key = (channel, ts)
        slot = self._edits.setdefault(key, _Edits())
        slot.asked += 1
        slot.users += 1
        mine, slot.latest = slot.asked, call
        try:
            async with slot.lock:
                if slot.sent >= mine:
                    return  # a newer edit went out while this one waited
                newest, covers = slot.latest, slot.asked
                assert newest is not None
                try:
                    await when_accepted(newest)
                finally:
                    slot.sent = covers
        finally:
            slot.users -= 1
            if not slot.users:
                del self._edits[key]

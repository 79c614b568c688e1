"""Claims of Slack delivery keys, gathered into shared transactions, and when a delivery waits for its claim.

Slack retries Events API deliveries it considers failed: a copy of one is dropped before its 200
(`claim`). Slash commands and interactions (clicks, forms), for which Slack documents no retries,
are acked first and claimed beside the ack: their listener waits for the claim after `ack()` and
acts only on the first copy (`first_copy`). A claim is a database write (a commit, an fsync) queued
behind other writers; before the ack it made an idle bot's acks several times slower than a bare
Bolt app's, and a copy acked before its claim still never acts.

SQLite commits one writer at a time: the claims that arrive while one transaction commits go
together in the next, so a burst pays two or three commits, not one each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from bot.store.store import Store

log = logging.getLogger(__name__)

CLAIM = "amlbot_delivery_claim"  # the Bolt context key of a claim taken beside the ack


def claimed_after_ack(key: str) -> bool:
    """Whether a delivery with this key is acked before its claim: a command's or an interaction's
    (keyed by trigger id). Events API deliveries, which Slack retries, are claimed before their 200."""
    return key.startswith("trigger:")


class DeliveryClaims:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._waiting: list[tuple[str, asyncio.Future[bool]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def claim(self, key: str) -> bool:
        """True the first time `key` is seen (by any replica); False for a copy. Raises what the
        database raised, for this claim and the others in its transaction alike."""
        return await self.begin(key)

    def begin(self, key: str) -> asyncio.Future[bool]:
        """The claim of `key`, under way: its future holds what `claim` returns, or raises."""
        first: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        # A claim nobody waits for (no listener took the delivery) must not log a lost exception.
        first.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._waiting.append((key, first))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit())
        return first

    async def _commit(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                firsts = await asyncio.to_thread(self.store.claim_deliveries, [key for key, _ in batch])
            except Exception as error:  # the database failed them all: each delivery is refused
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), is_first in zip(batch, firsts, strict=True):
                if not future.done():  # its request may have gone meanwhile (the client hung up)
                    future.set_result(is_first)


def ignored(key: str, retry: str | None) -> None:
    log.info("duplicate delivery ignored", extra={"key": key, "retry": retry})


async def first_copy(context: Mapping[str, Any]) -> bool:
    """After the ack: whether this delivery is the first copy of itself, once its claim (begun by the
    middleware beside the ack) is committed. Raises what the database raised: nothing was recorded."""
    claim = context.get(CLAIM)
    if claim is None:  # a delivery with no trigger id: nothing to tell copies apart by
        return True
    key, retry, first = claim
    if not await first:
        ignored(key, retry)
        return False
    return True

"""Claims of Slack delivery keys, gathered into shared transactions, and when a delivery's work after its ack begins.

Slack retries Events API deliveries it considers failed: a copy of one is dropped before its 200
(`claim`). Slash commands and interactions (clicks, forms), for which Slack documents no retries,
are acked first and claimed after: their listener calls `first_copy` right after `ack()` and acts
only on the first copy. A claim is a database write (a commit, an fsync) queued behind other
writers; before the ack it made an idle bot's acks several times slower than a bare Bolt app's, and
a copy acked before its claim still never acts.

The claims that arrive while one transaction commits go together in the next (bot/group_commit.py),
so a burst pays two or three commits, not one each.

The work after an ack, its claim included, waits while other deliveries are still on their way to
their HTTP answer (`AckGate`). A delivery costs the bot ~5 ms of CPU (its claim, reads, an audited
write, its reply) against ~1 ms for its ack: in a burst every ack goes out before any of that work
takes the event loop and the GIL from the acks still to come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from bot.group_commit import GroupCommit
from bot.store.store import Store

log = logging.getLogger(__name__)

CLAIM = "amlbot_delivery_claim"  # the Bolt context key of a delivery claimed after its ack
GATE = "amlbot_ack_gate"  # the Bolt context key of the process's AckGate
FOLLOW_UP_WAITS_AT_MOST = 0.5  # seconds: under a load with no lull, the follow-ups go on anyway


class AckGate:
    """The deliveries between their arrival and their HTTP answer (`answering`). Work after an ack
    waits until there are none (`quiet`), at most `longest` seconds. Slack's 3-second clock runs on
    the ack; a reply to response_url may come minutes later."""

    def __init__(self, longest: float = FOLLOW_UP_WAITS_AT_MOST) -> None:
        self.longest = longest
        self._answering = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        self._answering += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._answering -= 1
            if not self._answering:
                self._quiet.set()

    async def quiet(self) -> None:
        if self._answering:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), self.longest)


def claimed_after_ack(key: str) -> bool:
    """Whether a delivery with this key is acked before its claim: a command's or an interaction's
    (keyed by trigger id). Events API deliveries, which Slack retries, are claimed before their 200."""
    return key.startswith("trigger:")


class DeliveryClaims:
    def __init__(self, store: Store) -> None:
        self._commits: GroupCommit[str, bool] = GroupCommit(lambda keys: store.claim_deliveries(keys))  # the store's, when it commits

    async def claim(self, key: str) -> bool:
        """True the first time `key` is seen (by any replica); False for a copy. Raises what the
        database raised, for this claim and the others in its transaction alike."""
        return await self._commits.submit(key)


def ignored(key: str, retry: str | None) -> None:
    log.info("duplicate delivery ignored", extra={"key": key, "retry": retry})


async def first_copy(context: Mapping[str, Any]) -> bool:
    """After the ack, once no other delivery waits for its own: whether this delivery is the first
    copy of itself (its claim committed). Raises what the database raised: nothing was recorded."""
    gate = context.get(GATE)
    if gate is not None:
        await gate.quiet()
    claim = context.get(CLAIM)
    if claim is None:  # a delivery with no trigger id: nothing to tell copies apart by
        return True
    key, retry, claims = claim
    if not await claims.claim(key):
        ignored(key, retry)
        return False
    return True

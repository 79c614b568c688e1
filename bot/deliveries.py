"""Claims of Slack delivery keys, taken before the ack and gathered into shared transactions.

Each claim is a database write, and SQLite commits one writer at a time: in a burst, a claim per
transaction queued every ack behind every earlier commit. Here the claims that arrive while one
transaction commits go together in the next, so a burst pays two or three commits, not one each.
"""

from __future__ import annotations

import asyncio

from bot.store.store import Store


class DeliveryClaims:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._waiting: list[tuple[str, asyncio.Future[bool]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def claim(self, key: str) -> bool:
        """True the first time `key` is seen (by any replica); False for a copy. Raises what the
        database raised, for this claim and the others in its transaction alike."""
        first: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, first))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit())
        return await first

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

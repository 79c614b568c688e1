"""Group commit: the writes that arrive while one transaction commits go together in the next.

A database commits one writer at a time, and each commit is an fsync. In a burst of deliveries each
would otherwise wait behind the others' commits; together they pay two or three. Each write still
waits for its own transaction's commit before its caller goes on (and says anything to Slack)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, commit: Callable[[list[T]], list[R]]) -> None:
        """`commit` writes its items in one transaction and returns one result per item, in order, or
        raises (then none of them was written)."""
        self.commit = commit
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._committer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """`item`'s result once its transaction has committed. Raises what the transaction raised, for
        this item and the others in it alike."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit())
        return await done

    async def _commit(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results = await asyncio.to_thread(self.commit, [item for item, _ in batch])
            except Exception as error:  # the database failed them all
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # its caller may have gone meanwhile (the client hung up)
                    future.set_result(result)

"""A zip archive streamed from async members, zipped on a thread of the archive's own.

stream_zip's own `async_stream_zip` zips on the event loop's default executor, and each of its
threads waits there for the loop to hand it the next member chunk. The loop's work for a member
(checkpoints, progress) itself goes through `asyncio.to_thread`, the same executor: as many exports
at once as that executor has threads (6 on a 2-core machine) held every thread and stalled the
whole process. One thread per archive, outside that executor, cannot starve it.

Every crossing between the loop and that thread costs a wake-up on each side, so they are few:
members come over in batches, a member whose bytes are already in memory crosses with them (only a
streamed member's chunks are fetched one by one), and the archive goes back in pieces of at least
`chunk_size`. stream_zip itself ends a piece after every member's header, so a small member
would otherwise cost a crossing of its own, and the upload's reader joins pieces by concatenation
(quadratic in the pieces per block).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from stream_zip import Method, stream_zip

T = TypeVar("T")
# (name, modified, mode, method, chunks): chunks in memory (an iterable) or streamed (an async iterable).
Member = tuple[str, datetime, int, Method, Iterable[bytes] | AsyncIterable[bytes]]


async def zip_stream(batches: AsyncIterable[Sequence[Member]], chunk_size: int = 65536, **options: Any) -> AsyncIterator[bytes]:
    """`stream_zip`'s archive of the members, in pieces of at least `chunk_size` bytes (the last may be shorter)."""
    loop = asyncio.get_running_loop()

    def blocking(source: AsyncIterable[T]) -> Iterator[T]:
        # Runs on the archive's thread: each item is fetched on the loop, and waited for here.
        items = source.__aiter__()

        async def following() -> T:
            return await items.__anext__()

        while True:
            try:
                yield asyncio.run_coroutine_threadsafe(following(), loop).result()
            except StopAsyncIteration:
                return

    def local(member: Member) -> tuple[Any, ...]:
        chunks = member[4]
        return (*member[:4], blocking(chunks) if isinstance(chunks, AsyncIterable) else chunks)

    members = (local(member) for batch in blocking(batches) for member in batch)
    pieces = iter(stream_zip(members, chunk_size=chunk_size, **options))
    own = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zip")
    try:
        while True:
            # The context goes along, so members read on the loop keep the job's log binding.
            piece = await loop.run_in_executor(own, partial(contextvars.copy_context().run, _gather, pieces, chunk_size))
            if not piece:
                return
            yield piece
    finally:
        own.shutdown(wait=False, cancel_futures=True)  # never block the loop the thread may wait on


def _gather(pieces: Iterator[bytes], size: int) -> bytes:
    """The next pieces joined until they are `size` bytes or more; empty at the end."""
    taken: list[bytes] = []
    held = 0
    for piece in pieces:
        taken.append(piece)
        held += len(piece)
        if held >= size:
            break
    return b"".join(taken)

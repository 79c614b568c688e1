"""A zip archive streamed from async members, zipped on a thread of the archive's own.

stream_zip's own `async_stream_zip` zips on the event loop's default executor, and each of its
threads waits there for the loop to hand it the next member chunk. The loop's work for a member
(checkpoints, progress) itself goes through `asyncio.to_thread`, the same executor: as many exports
at once as that executor has threads (6 on a 2-core machine) held every thread and stalled the
whole process. One thread per archive, outside that executor, cannot starve it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from stream_zip import stream_zip

T = TypeVar("T")


async def zip_stream(files: AsyncIterable[tuple[Any, ...]], **options: Any) -> AsyncIterator[bytes]:
    """`stream_zip(files, **options)`'s chunks, for members given as (name, modified, mode, method, async chunks)."""
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

    members = (member[:4] + (blocking(member[4]),) for member in blocking(files))
    chunks = iter(stream_zip(members, **options))
    own = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zip")
    try:
        while True:
            # The context goes along, so members read on the loop keep the job's log binding.
            chunk = await loop.run_in_executor(own, partial(contextvars.copy_context().run, _advance, chunks))
            if chunk is None:
                return
            yield chunk
    finally:
        own.shutdown(wait=False, cancel_futures=True)  # never block the loop the thread may wait on


def _advance(chunks: Iterator[bytes]) -> bytes | None:
    """The next chunk, or None at the end (a StopIteration cannot cross into a future)."""
    return next(chunks, None)

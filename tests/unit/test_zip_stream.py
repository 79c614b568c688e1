"""Archives zipped at once never starve the event loop's default executor."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from stream_zip import ZIP_64

from commands.operations.zip_stream import zip_stream

ARCHIVES = 6


def test_more_archives_at_once_than_default_executor_threads_all_finish() -> None:
    async def chunks(n: int, m: int) -> AsyncIterator[bytes]:
        for k in range(3):
            await asyncio.to_thread(lambda: None)  # as an export's checkpoint does, between chunks
            yield bytes([n, m, k]) * 100

    async def members(n: int) -> AsyncIterator[tuple[Any, ...]]:
        for m in range(2):
            yield f"{m}.bin", datetime.now(UTC), 0o600, ZIP_64, chunks(n, m)

    async def archive(n: int) -> bytes:
        return b"".join([chunk async for chunk in zip_stream(members(n))])

    async def main() -> list[bytes]:
        # Fewer threads than archives: with stream_zip's async_stream_zip this never finished.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=2))
        return await asyncio.wait_for(asyncio.gather(*(archive(n) for n in range(ARCHIVES))), 30)

    for n, data in enumerate(asyncio.run(main())):
        with zipfile.ZipFile(io.BytesIO(data)) as zipped:
            assert {name: zipped.read(name) for name in zipped.namelist()} == {
                f"{m}.bin": b"".join(bytes([n, m, k]) * 100 for k in range(3)) for m in range(2)
            }

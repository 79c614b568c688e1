"""Archives zipped at once never starve the event loop's default executor."""

from __future__ import annotations

import asyncio
import io
import os
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

    async def members(n: int) -> AsyncIterator[list[Any]]:
        for m in range(2):
            yield [(f"{m}.bin", datetime.now(UTC), 0o600, ZIP_64, chunks(n, m))]

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


def test_members_in_memory_and_streamed_keep_their_order_and_the_archive_comes_in_pieces_of_at_least_chunk_size() -> None:
    size = 4096
    # Small members, several to a batch, then a streamed one between them: stream_zip ends a piece
    # after every member's header, and those pieces must be joined before they reach the upload.
    small = {f"small/{i:04d}.txt": os.urandom(700) for i in range(60)}  # not deflated away
    streamed = {"big.bin": b"".join(bytes([k]) * 3000 for k in range(5))}

    async def stream() -> AsyncIterator[bytes]:
        for k in range(5):
            await asyncio.sleep(0)
            yield bytes([k]) * 3000

    async def batches() -> AsyncIterator[list[Any]]:
        modified = datetime.now(UTC)
        names = list(small)
        yield [(name, modified, 0o600, ZIP_64, [small[name]]) for name in names[:25]]
        yield [*((name, modified, 0o600, ZIP_64, [small[name]]) for name in names[25:30]), ("big.bin", modified, 0o600, ZIP_64, stream())]
        yield [(name, modified, 0o600, ZIP_64, [small[name][:300], small[name][300:]]) for name in names[30:]]

    async def main() -> list[bytes]:
        return [piece async for piece in zip_stream(batches(), chunk_size=size)]

    pieces = asyncio.run(main())
    assert len(pieces) > 3 and all(len(piece) >= size for piece in pieces[:-1]) and len(pieces[-1]) > 0
    with zipfile.ZipFile(io.BytesIO(b"".join(pieces))) as zipped:
        assert zipped.namelist() == [*list(small)[:30], "big.bin", *list(small)[30:]]
        assert {name: zipped.read(name) for name in zipped.namelist()} == {**small, **streamed}

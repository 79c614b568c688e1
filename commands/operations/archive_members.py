"""How an export archive treats each member: whether it is deflated, and its SHA-256 off the event loop.

Deflate is the costliest step of an export on incompressible bytes (level 1 is ~15× slower than
storing them here), and run data that is big (checkpoints, weights) or already compressed (images,
parquet, archives) gains little from it. Such members are stored: deflate at level 0, which is a
copy into stored blocks, streamed with a data descriptor like every other member. (stream-zip's
NO_COMPRESSION_64 would hold the whole member in memory to put its CRC-32 in the header, or needs
the CRC-32 up front, which Azure does not keep.)
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import PurePosixPath

from stream_zip import ZIP_64, ZIP_AUTO, Method

STORE_FROM = 1024 * 1024  # members at least this big are stored, not deflated
COMPRESSED = frozenset({
    ".7z", ".avif", ".bz2", ".ckpt", ".gif", ".gz", ".h5", ".jpeg", ".jpg", ".keras", ".mp3", ".mp4", ".npz",
    ".onnx", ".parquet", ".png", ".pt", ".pth", ".safetensors", ".tgz", ".webp", ".xz", ".zip", ".zst",
})
# ZIP_AUTO picks zip64 for any size past zip32's bound; stating one keeps every stored member zip64,
# as the deflated ones are, whatever size the blob turns out to have by its turn.
_STORED = ZIP_AUTO(1 << 32, level=0)
HASH_OFF_LOOP = 256 * 1024  # chunks at least this big are hashed in a thread (hashlib frees the GIL)
HASH_AHEAD = 1  # chunks handed to a hashing thread and not yet hashed, per digest (each holds its bytes)
# One thread each for members' and the archive's digests: each digest's chunks are hashed in the
# order given, and the two run beside each other, and beside the zip writer and the transfers.
_MEMBER_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-member-sha256")
_ARCHIVE_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-archive-sha256")


def method_for(name: str, size: int) -> Method:
    """Stored when big or compressed already (by its extension), deflated (the archive's level) otherwise."""
    if size >= STORE_FROM or PurePosixPath(name).suffix.lower() in COMPRESSED:
        return _STORED
    return ZIP_64


class PipelinedSha256:
    """SHA-256 fed chunk by chunk without waiting for each: big chunks are hashed in a thread while
    the caller goes on; at most HASH_AHEAD are outstanding (their bytes stay referenced until hashed)."""

    def __init__(self, archive: bool = False) -> None:
        self._digest = hashlib.sha256()
        self._executor = _ARCHIVE_HASHER if archive else _MEMBER_HASHER
        self._pending: deque[Future[None]] = deque()

    async def update(self, chunk: bytes) -> None:
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()
        if len(chunk) < HASH_OFF_LOOP and not self._pending:
            self._digest.update(chunk)  # cheaper than a thread hop, and nothing is queued before it
            return
        self._pending.append(self._executor.submit(self._digest.update, chunk))
        if len(self._pending) > HASH_AHEAD:
            await asyncio.wrap_future(self._pending.popleft())

    async def hexdigest(self) -> str:
        while self._pending:
            await asyncio.wrap_future(self._pending.popleft())
        return self._digest.hexdigest()

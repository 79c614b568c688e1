"""One export (or its raw baseline) in a process of its own, so its peak memory is its own.

    python -m bench.export_child export|server|raw|preview|list CONNECTION_STRING CONTAINER RUN ARM_ENDPOINT

Prints one JSON line: seconds, bytes, items, the RSS when the work started and its peak during it.
`export` is the real ExportRun (preview, then execute: download, zip, SHA-256 manifest, upload to
the exports container, link), its control plane the stand-in at ARM_ENDPOINT (run in its
environment); `server` is the same ExportRun planned server-side (the storage service copies the
blobs into the export's container; amlbot reads none of their bytes). `raw` downloads the same
blobs with azure-storage-blob directly, as fast as it goes: 32 small blobs at once, a large one
with the SDK's parallel ranged reads. `preview` is the real ExportRun's preview (the run's job
read, its blobs listed and planned) with the plan's stored form and hash, as the bot makes them
before the card; `list` lists the same blobs with azure-storage-blob, keeping nothing.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from typing import Any

from bench.common import NullCheckpoint, PeakRss, Stopwatch, context, intent, proc_status, workspace_config

RAW_SMALL_CONCURRENCY = 32
RAW_BIG_CONCURRENCY = 4


class NullSink:
    """A seekable stream that keeps nothing, so the SDK may write ranges in parallel."""

    def __init__(self) -> None:
        self.position = 0
        self.written = 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        self.position += len(data)
        return len(data)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = offset
        return offset

    def tell(self) -> int:
        return self.position


def _export_run(connection: str, container: str, arm_endpoint: str) -> tuple[Any, Any, Any]:
    """The real ExportRun, its context and its storage door (to close) on the bench's workspace."""
    from commands.azure.blobs import WorkspaceBlobs
    from commands.intents import Action
    from commands.operations import operation_for

    config = workspace_config(connection, container, arm_endpoint)
    door = WorkspaceBlobs(config)
    operation = operation_for(Action.parse("export run"))
    assert operation is not None
    return operation, context(config, door), door


async def _execute(operation: Any, plan: Any, ctx: Any) -> tuple[Any, dict[str, Any]]:
    """`plan` executed: its execution, and the figures every export row has (time, memory, size)."""
    start_rss = proc_status()["VmRSS"]
    with PeakRss() as peak:
        watch = Stopwatch()
        execution = await operation.execute(plan, ctx, NullCheckpoint())
        seconds = watch.seconds
    return execution, {
        "items": len(plan.items), "bytes": plan.total_bytes, "seconds": seconds, "rss_start": start_rss, "rss_peak": peak.peak,
    }


async def export(connection: str, container: str, run: str, arm_endpoint: str) -> dict[str, Any]:
    operation, ctx, door = _export_run(connection, container, arm_endpoint)
    try:
        watch = Stopwatch()
        plan = await operation.preview(intent(f"export run {run}"), ctx)
        preview_s = watch.seconds
        execution, run = await _execute(operation, plan, ctx)
    finally:
        await door.close()
    return run | {"preview_s": preview_s, "archive_bytes": execution.extras.get("size"), "vmhwm": proc_status()["VmHWM"]}


async def server(connection: str, container: str, run: str, arm_endpoint: str) -> dict[str, Any]:
    operation, ctx, door = _export_run(connection, container, arm_endpoint)
    ctx = replace(ctx, server_export_over=1)  # any export of a byte or more runs server-side
    try:
        plan = await operation.preview(intent(f"export run {run}"), ctx)
        assert plan.server_side, "the bench's server-side export was planned as a zip"
        execution, run = await _execute(operation, plan, ctx)
    finally:
        await door.close()
    return run | {"copied_bytes": execution.extras["size"], "copied": execution.extras["copied"]}


async def preview(connection: str, container: str, run: str, arm_endpoint: str) -> dict[str, Any]:
    operation, ctx, door = _export_run(connection, container, arm_endpoint)
    start_rss = proc_status()["VmRSS"]
    try:
        with PeakRss() as peak:
            watch = Stopwatch()
            plan = await operation.preview(intent(f"export run {run}"), ctx)
            preview_s = watch.seconds
            stored = json.dumps(plan.to_dict())  # what the bot stores with the request, and the hash it shows
            digest = plan.hash
            seconds = watch.seconds
    finally:
        await door.close()
    return {
        "items": len(plan.items), "bytes": plan.total_bytes, "seconds": seconds, "preview_s": preview_s,
        "stored_bytes": len(stored), "plan_hash": digest, "rss_start": start_rss, "rss_peak": peak.peak,
    }


async def listing(connection: str, container: str, run: str) -> dict[str, Any]:
    from azure.storage.blob.aio import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection)
    client = service.get_container_client(container)
    start_rss = proc_status()["VmRSS"]
    try:
        with PeakRss() as peak:
            watch = Stopwatch()
            count = 0
            async for _ in client.list_blobs(name_starts_with=f"ExperimentRun/dcid.{run}/"):
                count += 1
            seconds = watch.seconds
    finally:
        await service.close()
    return {"items": count, "seconds": seconds, "rss_start": start_rss, "rss_peak": peak.peak}


async def raw(connection: str, container: str, run: str) -> dict[str, Any]:
    from azure.storage.blob.aio import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection)
    client = service.get_container_client(container)
    try:
        watch = Stopwatch()
        blobs = [(b.name, b.size) async for b in client.list_blobs(name_starts_with=f"ExperimentRun/dcid.{run}/")]
        list_s = watch.seconds
        start_rss = proc_status()["VmRSS"]
        gate = asyncio.Semaphore(RAW_SMALL_CONCURRENCY)

        async def small(name: str) -> int:
            async with gate:
                return len(await (await client.download_blob(name)).readall())

        async def big(name: str) -> int:
            sink = NullSink()
            downloader = await client.download_blob(name, max_concurrency=RAW_BIG_CONCURRENCY)
            await downloader.readinto(sink)
            return sink.written

        with PeakRss() as peak:
            watch = Stopwatch()
            sizes = await asyncio.gather(*(big(n) if s > 64 * 1024 * 1024 else small(n) for n, s in blobs))
            seconds = watch.seconds
    finally:
        await service.close()
    return {
        "items": len(blobs), "bytes": sum(sizes), "list_s": list_s, "seconds": seconds,
        "rss_start": start_rss, "rss_peak": peak.peak, "vmhwm": proc_status()["VmHWM"],
    }


def main(argv: list[str]) -> int:
    mode, connection, container, run, arm_endpoint = argv
    work = {
        "export": lambda: export(connection, container, run, arm_endpoint),
        "server": lambda: server(connection, container, run, arm_endpoint),
        "raw": lambda: raw(connection, container, run),
        "preview": lambda: preview(connection, container, run, arm_endpoint),
        "list": lambda: listing(connection, container, run),
    }[mode]
    result = asyncio.run(work())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

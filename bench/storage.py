"""Export and delete throughput against Azurite, each beside its raw azure-storage-blob baseline."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

from bench.common import (
    MB,
    PYTHON,
    NullCheckpoint,
    Stopwatch,
    context,
    control_plane,
    environment,
    intent,
    seed_big,
    seed_small,
    workspace_config,
)

CONTAINER = "bench-runs"
BATCH_CONTAINER, SINGLE_CONTAINER = "bench-delete-batch", "bench-delete-single"


def _child(mode: str, connection: str, run: str, arm_endpoint: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, "-m", "bench.export_child", mode, connection, CONTAINER, run, arm_endpoint],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.export_child {mode} {run} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


async def export_throughput(connection: str, small_count: int, big_bytes: int, log: Any) -> dict[str, Any]:
    from azure.storage.blob.aio import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection)
    try:
        watch = Stopwatch()
        await seed_small(service, CONTAINER, "ExperimentRun/dcid.bench_small/", small_count)
        log(f"seeded {small_count} small blobs in {watch.seconds:.1f} s")
        watch = Stopwatch()
        await seed_big(service, CONTAINER, "ExperimentRun/dcid.bench_big/outputs/model.bin", big_bytes)
        ingest_s = watch.seconds  # the SDK's parallel block upload: what Azurite can take in
        log(f"seeded one {big_bytes // MB} MiB blob in {ingest_s:.1f} s")
    finally:
        await service.close()
    results: dict[str, Any] = {}
    runs = {"small": "bench_small", "big": "bench_big"}
    # The export plans each run's job and its tree: the control plane is the tests' stand-in.
    async with control_plane(runs.values()) as (azure, env):
        for name, run in runs.items():
            raw = await asyncio.to_thread(_child, "raw", connection, run, azure.url, env)
            log(f"raw download ({name}): {raw['bytes'] / MB:.0f} MiB in {raw['seconds']:.1f} s")
            export = await asyncio.to_thread(_child, "export", connection, run, azure.url, env)
            log(f"ExportRun ({name}): {export['bytes'] / MB:.0f} MiB in {export['seconds']:.1f} s, peak RSS {export['rss_peak'] / MB:.0f} MiB")
            results[name] = {"raw": raw, "export": export}
    results["big"]["raw_upload"] = {"bytes": big_bytes, "seconds": ingest_s}
    return results


async def delete_throughput(connection: str, count: int, one_by_one_count: int, log: Any) -> dict[str, Any]:
    from azure.storage.blob.aio import BlobServiceClient

    from commands.azure.blobs import WorkspaceBlobs
    from commands.operations import operation_for

    service = BlobServiceClient.from_connection_string(connection)
    try:
        watch = Stopwatch()
        # Each set in a container of its own: Azurite's deletes cost more the more blobs a container holds.
        await seed_small(service, BATCH_CONTAINER, "ExperimentRun/dcid.bench_delete_batch/", count, size=512)
        await seed_small(service, SINGLE_CONTAINER, "ExperimentRun/dcid.bench_delete_single/", one_by_one_count, size=512)
        log(f"seeded {count + one_by_one_count} blobs to delete in {watch.seconds:.1f} s")

        operation = operation_for("delete run")
        assert operation is not None
        async with control_plane(["bench_delete_batch"]) as (azure, env):
            config = workspace_config(connection, BATCH_CONTAINER, azure.url)
            door = WorkspaceBlobs(config)
            ctx = context(config, door, "R-BENCHDEL")
            try:
                with environment(env):
                    plan = await operation.preview(intent("delete run bench_delete_batch"), ctx)
                    watch = Stopwatch()
                    execution = await operation.execute(plan, ctx, NullCheckpoint())
                    batch_s = watch.seconds
            finally:
                await door.close()
        deleted = sum(1 for r in execution.results.values() if r.status.value == "deleted")
        log(f"DeleteRun: {deleted} blobs in {batch_s:.1f} s")

        client = service.get_container_client(SINGLE_CONTAINER)
        names = [b.name async for b in client.list_blobs(name_starts_with="ExperimentRun/dcid.bench_delete_single/")]
        watch = Stopwatch()
        for name in names:
            await client.delete_blob(name)
        single_s = watch.seconds
        log(f"one-by-one: {len(names)} blobs in {single_s:.1f} s")
        left = [b async for b in client.list_blobs()]
        left += [b async for b in service.get_container_client(BATCH_CONTAINER).list_blobs()]
    finally:
        await service.close()
    return {
        "batch": {"items": len(plan.items), "deleted": deleted, "seconds": batch_s},
        "one_by_one": {"items": len(names), "seconds": single_s},
        "left_behind": len(left),
    }

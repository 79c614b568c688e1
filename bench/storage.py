"""Export and delete throughput against Azurite, each beside its raw azure-storage-blob baseline."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections import Counter
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError

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
        results["big"]["server"] = await _server_side(connection, runs["big"], azure.url, env)
        log(f"ExportRun server-side (big): {results['big']['server']['seconds']:.2f} s, "
            f"{results['big']['server']['bytes_through']} B through amlbot")
    results["big"]["raw_upload"] = {"bytes": big_bytes, "seconds": ingest_s}
    return results


async def _server_side(connection: str, run: str, arm_endpoint: str, env: dict[str, str]) -> dict[str, Any]:
    """The big run exported server-side, the child reaching Azurite through the counting proxy:
    every byte amlbot sends or is sent is counted (Azurite's own checks of each copy's source
    pass the proxy too, and are told apart by their User-Agent)."""
    from tests.support.storage_proxy import StorageFaultProxy

    async with StorageFaultProxy(connection) as proxy:
        server = await asyncio.to_thread(_child, "server", proxy.connection_string, run, arm_endpoint, env)
        bot = [e for e in proxy.exchanges if e.agent.startswith("azsdk-python-storage-blob")]
    server["requests"] = len(bot)
    server["bytes_through"] = sum(e.request_bytes + e.response_bytes for e in bot)
    # A blob's bytes reach amlbot only as the answer to a GET of it in the runs' container.
    server["blob_bytes_through"] = sum(e.response_bytes for e in bot if e.method == "GET" and f"/{CONTAINER}/" in e.path_qs)
    return server


async def preview_cost(connection: str, count: int, log: Any) -> dict[str, Any]:
    """The preview (plan) of one run of `count` blobs, in a process of its own for its memory,
    beside a bare listing of the same blobs."""
    from azure.storage.blob.aio import BlobServiceClient

    run = "bench_preview"
    service = BlobServiceClient.from_connection_string(connection)
    try:
        watch = Stopwatch()
        await seed_small(service, CONTAINER, f"ExperimentRun/dcid.{run}/", count, size=16)
        log(f"seeded {count} blobs to preview in {watch.seconds:.1f} s")
    finally:
        await service.close()
    async with control_plane([run]) as (azure, env):
        listed = await asyncio.to_thread(_child, "list", connection, run, azure.url, env)
        log(f"listing: {listed['items']} blobs in {listed['seconds']:.1f} s, peak RSS {listed['rss_peak'] / MB:.0f} MiB")
        planned = await asyncio.to_thread(_child, "preview", connection, run, azure.url, env)
        log(f"preview: {planned['items']} items in {planned['seconds']:.1f} s, peak RSS {planned['rss_peak'] / MB:.0f} MiB")
    return {"list": listed, "preview": planned}


async def delete_throughput(connection: str, count: int, latency: float, log: Any) -> dict[str, Any]:
    """`DeleteRun` and one request a blob, each on `count` blobs of their own: on loopback, then
    through a proxy that adds `latency` seconds to every request, as a network would."""
    from tests.support.storage_proxy import StorageFaultProxy

    results = {"loopback": await _delete_both(connection, count, "loop", log)}
    async with StorageFaultProxy(connection, latency=latency) as proxy:
        results["latency"] = await _delete_both(proxy.connection_string, count, "late", log)
    results["latency"]["latency_s"] = latency
    return results


async def _delete_both(connection: str, count: int, tag: str, log: Any) -> dict[str, Any]:
    from azure.storage.blob.aio import BlobServiceClient

    from commands.azure.blobs import WorkspaceBlobs
    from commands.intents import Action
    from commands.operations import operation_for

    run, batch_container, single_container = f"bench_delete_{tag}", f"{BATCH_CONTAINER}-{tag}", f"{SINGLE_CONTAINER}-{tag}"
    service = BlobServiceClient.from_connection_string(connection)
    try:
        # Each set in a container of its own, seeded only when its turn comes: an Azurite delete
        # costs time in proportion to every blob the account holds (its index scans), so both ways
        # start from the same `count`.
        watch = Stopwatch()
        await seed_small(service, batch_container, f"ExperimentRun/dcid.{run}/", count, size=512)
        log(f"seeded {count} blobs to delete ({tag}) in {watch.seconds:.1f} s")

        operation = operation_for(Action.parse("delete run"))
        assert operation is not None
        async with control_plane([run]) as (azure, env):
            config = workspace_config(connection, batch_container, azure.url)
            door = WorkspaceBlobs(config)
            ctx = context(config, door, "R-BENCHDEL")
            try:
                with environment(env):
                    plan = await operation.preview(intent(f"delete run {run}"), ctx)
                    watch = Stopwatch()
                    execution = await operation.execute(plan, ctx, NullCheckpoint())
                    batch_s = watch.seconds
            finally:
                await door.close()
        outcomes = Counter(r.status.value for r in execution.results.values())
        log(f"DeleteRun ({tag}): {dict(outcomes)} in {batch_s:.1f} s")

        await seed_small(service, single_container, f"ExperimentRun/dcid.{run}/", count, size=512)
        client = service.get_container_client(single_container)
        blobs = [(b.name, b.etag) async for b in client.list_blobs(name_starts_with=f"ExperimentRun/dcid.{run}/")]
        refused = 0
        watch = Stopwatch()
        for name, etag in blobs:  # conditional, as DeleteRun's are
            try:
                await client.delete_blob(name, etag=etag, match_condition=MatchConditions.IfNotModified)
            except HttpResponseError:  # a retry of a delete whose first try landed (412): counted, not fatal
                refused += 1
        single_s = watch.seconds
        log(f"one-by-one ({tag}): {len(blobs)} blobs in {single_s:.1f} s ({refused} refused)")
        left = [b async for b in client.list_blobs()]
        left += [b async for b in service.get_container_client(batch_container).list_blobs()]
    finally:
        await service.close()
    return {
        "batch": {"items": len(plan.items), "outcomes": dict(outcomes), "seconds": batch_s},
        "one_by_one": {"items": len(blobs), "refused": refused, "seconds": single_s},
        "left_behind": len(left),
    }

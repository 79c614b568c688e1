"""A run's storage-level data: run-history documents, logs and outputs under its blob prefixes.

`delete run` removes those blobs in batches; `export run` streams them into one zip archive with a
manifest of SHA-256 sums. Both plan the exact blob list first and follow it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from stream_zip import ZIP_64, async_stream_zip

from commands.azure.door import ItemResult, Status
from commands.intents import Intent
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.plan import ItemKind, Plan, PlanItem

STEP = 1024  # items between checkpoints: a crash repeats at most this much (idempotently)


def run_prefixes(intent: Intent, ctx: Context) -> list[tuple[str, str]]:
    """Where a run keeps its data: the artifact store's `ExperimentRun/dcid.<run-id>/`."""
    assert intent.target
    return [(ctx.config.artifact_container, f"ExperimentRun/dcid.{intent.target}/")]


async def plan_blobs(intent: Intent, ctx: Context, prefixes: list[tuple[str, str]]) -> Plan:
    items: list[PlanItem] = []
    for container, prefix in prefixes:
        for blob in await ctx.door.list_blobs(container, prefix):
            items.append(PlanItem(ItemKind.BLOB, blob.name, blob.size, container))
    if not items:
        where = ", ".join(f"`{c}/{p}`" for c, p in prefixes)
        raise OperationError(f"Nothing found for {intent.kind.value} `{intent.target}` in workspace `{ctx.alias}` (looked under {where}).")
    return Plan(
        action=intent.action,
        workspace=ctx.alias,
        target=intent.target or "",
        items=tuple(sorted(items, key=lambda item: (item.container or "", item.ref))),
        notes={"prefixes": [[c, p] for c, p in prefixes]},
    )


async def _appeared(plan: Plan, ctx: Context) -> list[str]:
    """Blobs under the plan's prefixes that the plan did not name: left alone, and reported."""
    planned = {(item.container, item.ref) for item in plan.items}
    found = []
    for container, prefix in plan.notes.get("prefixes", []):
        for blob in await ctx.door.list_blobs(container, prefix):
            if (container, blob.name) not in planned:
                found.append(f"{container}/{blob.name}")
    return found


async def delete_planned_blobs(plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
    """Delete exactly the plan's blobs, in batches, checkpointing after each step."""
    results = dict(checkpoint.done)
    todo = [item for item in plan.items if item.key not in results]
    for start in range(0, len(todo), STEP):
        if await checkpoint.cancelled():
            return Execution(results, stopped_early=True)
        step = todo[start : start + STEP]
        by_container: dict[str, list[PlanItem]] = {}
        for item in step:
            by_container.setdefault(item.container or "", []).append(item)
        outcome: dict[str, ItemResult] = {}
        for container, items in by_container.items():
            deleted = await ctx.door.delete_blobs(container, [item.ref for item in items])
            outcome.update({item.key: deleted[item.ref] for item in items})
        await checkpoint.record(outcome)
        results.update(outcome)
        done_bytes = sum(item.size or 0 for item in plan.items if item.key in results)
        await checkpoint.progress(len(results), len(plan.items), done_bytes, plan.total_bytes)
    return Execution(results, extras={"appeared": await _appeared(plan, ctx)})


class DeleteRun:
    action = "delete run"

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        return await plan_blobs(intent, ctx, run_prefixes(intent, ctx))

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await delete_planned_blobs(plan, ctx, checkpoint)


class ExportRun:
    action = "export run"

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        return await plan_blobs(intent, ctx, run_prefixes(intent, ctx))

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        # One archive, written in one pass: a resumed export starts the archive again (it
        # overwrites the same blob), so it never yields two links.
        request_id = ctx.settings["request_id"]
        archive = f"exports/{request_id}/{request_id}.zip"
        manifest: list[dict[str, object]] = []
        state = {"done": 0, "bytes": 0}
        total = len(plan.items)

        async def member(item: PlanItem) -> AsyncIterator[bytes]:
            digest = hashlib.sha256()
            size = 0
            async for chunk in ctx.door.read_blob(item.container or "", item.ref):
                digest.update(chunk)
                size += len(chunk)
                yield chunk
            manifest.append({"path": f"{item.container}/{item.ref}", "source": f"{item.container}/{item.ref}", "size": size, "sha256": digest.hexdigest()})
            state["done"] += 1
            state["bytes"] += size
            await checkpoint.progress(state["done"], total, state["bytes"], plan.total_bytes)

        async def manifest_member() -> AsyncIterator[bytes]:
            yield json.dumps({"request_id": request_id, "plan_hash": plan.hash, "files": manifest}, indent=2).encode()

        async def members():  # type: ignore[no-untyped-def]
            modified = datetime.now(UTC)
            for item in plan.items:
                yield f"{item.container}/{item.ref}", modified, 0o600, ZIP_64, member(item)
            yield "manifest.json", modified, 0o600, ZIP_64, manifest_member()

        archive_sha = hashlib.sha256()

        async def archive_bytes() -> AsyncIterator[bytes]:
            async for chunk in async_stream_zip(members()):
                archive_sha.update(chunk)
                yield chunk

        size = await ctx.door.write_blob(ctx.config.exports_container, archive, archive_bytes())
        expiry: timedelta = ctx.settings.get("link_expiry", timedelta(days=7))
        link = await ctx.door.read_link(ctx.config.exports_container, archive, expiry)
        results = {item.key: ItemResult(Status.EXPORTED) for item in plan.items}
        await checkpoint.record(results)
        expires = (datetime.now(UTC) + expiry).isoformat(timespec="seconds")
        return Execution(
            results,
            extras={"link": link, "archive": f"{ctx.config.exports_container}/{archive}", "size": size, "sha256": archive_sha.hexdigest(), "expires_at": expires},
        )

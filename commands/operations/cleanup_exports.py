"""`cleanup exports --older-than <duration>`: remove export archives past their retention, and the
containers of server-side exports (each blob in them, then the emptied container)."""

from __future__ import annotations

from datetime import UTC, datetime

from commands.azure.door import ItemResult
from commands.durations import format_duration
from commands.intents import Action, Intent, Kind, Verb
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.run_data import archive_of, delete_planned_blobs, stored_item
from commands.operations.server_export import export_container, export_containers
from commands.plan import ItemKind, Plan

EXPORTS_PREFIX = "exports/"


class CleanupExports:
    action = Action(Verb.CLEANUP, Kind.EXPORTS)

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        assert intent.older_than is not None
        cutoff = datetime.now(UTC) - intent.older_than
        container = ctx.config.exports_container
        stale = [
            blob
            for blob in await ctx.door.list_blobs(container, EXPORTS_PREFIX)
            if blob.modified is not None and blob.modified < cutoff
        ]
        # A server-side export's age is its container's: made when the export started.
        prefix, pattern = export_containers(container)
        old = sorted(
            name for name, modified in await ctx.door.list_containers(prefix)
            if pattern.fullmatch(name) and modified is not None and modified < cutoff
        )
        for name in old:
            stale += await ctx.door.list_blobs(name, "")
        if not stale:
            raise OperationError(f"No exports older than `{format_duration(intent.older_than)}` in `{container}` of workspace `{ctx.alias}`.")
        return Plan(
            action=intent.action,
            workspace=ctx.alias,
            target=f"exports older than {cutoff.isoformat(timespec='minutes')}",
            items=tuple(stored_item(ItemKind.BLOB, b) for b in sorted(stale, key=lambda b: (b.container, b.name))),
            # No prefix to re-list: exports written after the plan are simply not in it.
            warnings=(f"The {len(old)} container(s) of server-side exports among them are deleted once emptied.",) if old else (),
            notes={"export_containers": old} if old else {},
        )

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        execution = await delete_planned_blobs(plan, ctx, checkpoint)
        for name in plan.notes.get("export_containers", []):
            if not await ctx.door.list_blobs(name, ""):  # a blob not in the plan keeps its container
                await ctx.door.delete_container(name)
        return execution


async def delete_archive(ctx: Context, request_id: str, archive: str) -> ItemResult:
    """Delete one export's archive, which kills its download link (`/aml revoke`). The stored
    `<container>/<name>` must be exactly that request's archive in the workspace's exports
    container, or the container of that request's server-side export: nothing else is ever
    deleted this way."""
    if archive == export_container(ctx.config.exports_container, request_id):
        return await ctx.door.delete_container(archive)
    container, _, name = archive.partition("/")
    if container != ctx.config.exports_container or name != archive_of(request_id):
        raise OperationError(f"`{archive}` is not the export archive of {request_id}: nothing was deleted.")
    return (await ctx.door.delete_blobs(container, {name: None}))[name]  # whatever version is there

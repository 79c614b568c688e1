"""`export data <name>[:<version>]` / `delete data … [--include-shared]`: data asset versions and the
files they point at.

A deletion deletes the files at the storage level, in batches, then each version through the REST
API (`DELETE …/data/<name>/versions/<v>`, api-version 2024-04-01; azure-ai-ml only archives). A
version the service refuses to delete is archived and reported as kept. Files that other assets or runs point at too are kept and listed with who
uses them, unless `--include-shared`; either way the plan names them.
"""

from __future__ import annotations

from dataclasses import replace

from commands.intents import Action, Intent, Kind, Verb
from commands.operations.assets import DATA, catalog, delete_version, holders, keep_shared, plan_assets, sharing, users_of, versions
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.datastores import Stores
from commands.operations.run_data import delete_planned, export_planned, list_jobs, ordered
from commands.plan import Plan

ONLY_ARCHIVES = (
    "The Azure ML SDK only archives data asset versions: amlbot deletes their files at the storage "
    "level, then each version through the REST API. Where the service refuses, the version is "
    "archived and reported as retained."
)


class _DataVersions:
    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        chosen = [v for v in await versions(ctx, DATA, intent.target) if intent.version in (None, v.version)]
        target = f"{intent.target}:{intent.version}" if intent.version else intent.target or ""
        if not chosen:
            raise OperationError(f"No data asset `{target}` in workspace `{ctx.alias}`.")
        stores = Stores(ctx)
        planned = await plan_assets(ctx, stores, [(DATA, v) for v in chosen])
        plan = Plan(
            action=intent.action,
            workspace=ctx.alias,
            target=target,
            items=ordered([*planned.records, *planned.files]),
            warnings=(*([ONLY_ARCHIVES] if intent.destructive else []), *planned.warnings),
            notes={"prefixes": [[c, p] for c, p in planned.prefixes]},
        )
        if not intent.destructive:
            return plan
        found = await holders(ctx, stores, await list_jobs(ctx), await catalog(ctx))
        shared = sharing(planned.files, found, {record.key for record in planned.records})
        if not intent.include_shared:
            return keep_shared(plan, shared, "`--include-shared` deletes them too.")
        if not shared:
            return plan
        warning = f"{len(shared)} file(s) are also used by {users_of(shared)}: deleted anyway (`--include-shared`)."
        return replace(plan, warnings=(*plan.warnings, warning))


class DeleteData(_DataVersions):
    action = Action(Verb.DELETE, Kind.DATA)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await delete_planned(plan, ctx, checkpoint, delete_version(ctx))


class ExportData(_DataVersions):
    action = Action(Verb.EXPORT, Kind.DATA)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await export_planned(plan, ctx, checkpoint)

"""`export model <name>[:<version>]` / `delete model …`: model versions, their records and files.

A version's files are blobs under the datastore path its URI names
(`azureml://…/datastores/<store>/paths/<path>`). azure-ai-ml can only archive a version; the REST
API deletes it (`DELETE …/models/<name>/versions/<v>`), sent here through the resource manager.
"""

from __future__ import annotations

from typing import Any

from commands.intents import Action, Intent, Kind, Verb
from commands.operations.assets import MODEL, Catalog, catalog, delete_version, keep_what_others_use, plan_assets, versions
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.datastores import Stores
from commands.operations.run_data import delete_planned, export_planned, list_jobs, ordered
from commands.plan import Plan

ONLY_ARCHIVES = (
    "The Azure ML SDK only archives model versions: amlbot deletes each version through the REST API "
    "and its files at the storage level. Where the service refuses, the version is archived and "
    "reported as retained."
)


async def _versions(intent: Intent, ctx: Context) -> tuple[list[Any], Catalog]:
    """The versions asked for, and (for a deletion) every asset version of the workspace; archived
    ones included (their files are still there)."""
    assets = await catalog(ctx) if intent.destructive else {MODEL: await versions(ctx, MODEL, intent.target)}
    chosen = [v for v in assets[MODEL] if v.name.lower() == (intent.target or "").lower() and intent.version in (None, v.version)]
    if not chosen:
        what = f"{intent.target}:{intent.version}" if intent.version else intent.target
        raise OperationError(f"No model `{what}` in workspace `{ctx.alias}`.")
    return chosen, assets


class _ModelVersions:
    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        chosen, assets = await _versions(intent, ctx)
        stores = Stores(ctx)
        planned = await plan_assets(ctx, stores, [(MODEL, v) for v in chosen])
        plan = Plan(
            action=intent.action,
            workspace=ctx.alias,
            target=f"{intent.target}:{intent.version}" if intent.version else intent.target or "",
            items=ordered([*planned.records, *planned.files]),
            warnings=(*([ONLY_ARCHIVES] if intent.destructive else []), *planned.warnings),
            notes={"prefixes": [[c, p] for c, p in planned.prefixes]},
        )
        if not intent.destructive:
            return plan
        # Files another version, a data asset or a run still uses stay.
        return await keep_what_others_use(ctx, plan, stores, await list_jobs(ctx), assets)


class DeleteModel(_ModelVersions):
    action = Action(Verb.DELETE, Kind.MODEL)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await delete_planned(plan, ctx, checkpoint, delete_version(ctx))


class ExportModel(_ModelVersions):
    action = Action(Verb.EXPORT, Kind.MODEL)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await export_planned(plan, ctx, checkpoint)

"""`export model <name>[:<version>]` / `delete model …`: model versions, their records and files.

A version's files are blobs under the datastore path its URI names
(`azureml://…/datastores/<store>/paths/<path>`). azure-ai-ml can only archive a version; the REST
API deletes it (`DELETE …/models/<name>/versions/<v>`), sent here through the resource manager.
"""

from __future__ import annotations

from typing import Any

from commands.intents import Intent
from commands.operations.assets import MODEL, asset_item, delete_version, versions
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.datastores import Stores, files_at, within
from commands.operations.run_data import Prefix, delete_planned, export_planned, ordered
from commands.plan import Plan

ONLY_ARCHIVES = (
    "The Azure ML SDK only archives model versions: amlbot deletes each version through the REST API "
    "and its files at the storage level. Where the service refuses, the version is archived and "
    "reported as retained."
)


def _label(version: Any) -> str:
    return f"{version.name}:{version.version}"


async def _versions(intent: Intent, ctx: Context) -> tuple[list[Any], list[Any]]:
    """The versions asked for and the model's other versions, archived ones included (their
    files are still there)."""
    every = await versions(ctx, MODEL, intent.target)
    chosen = [v for v in every if intent.version in (None, v.version)]
    if not chosen:
        what = f"{intent.target}:{intent.version}" if intent.version else intent.target
        raise OperationError(f"No model `{what}` in workspace `{ctx.alias}`.")
    return chosen, [v for v in every if v.version not in {c.version for c in chosen}]


class _ModelVersions:
    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        chosen, others = await _versions(intent, ctx)
        stores = Stores(ctx)
        items = [asset_item(ctx, MODEL, v) for v in chosen]
        prefixes: list[Prefix] = []
        warnings = [ONLY_ARCHIVES] if intent.destructive else []
        # A deletion must not take files that a version it keeps still points at.
        shared = [(await stores.locate(v.path), _label(v)) for v in others] if intent.destructive else []
        for version in chosen:
            container, path = await stores.locate(version.path)
            if container is None:
                warnings.append(f"{_label(version)}'s files are left alone: {path}.")
                continue
            files, prefix = await files_at(ctx, container, path)
            held = {f.key: label for f in files for (c, p), label in shared if c == container and within(f.ref, p)}
            if held:
                files = [f for f in files if f.key not in held]
                holders = ", ".join(sorted(set(held.values())))
                warnings.append(f"{_label(version)} shares {len(held)} file(s) with {holders}, which stays: those files are kept.")
                prefix = None  # the kept files would otherwise read as late arrivals
            items += files
            prefixes += [prefix] if prefix else []
        return Plan(
            action=intent.action,
            workspace=ctx.alias,
            target=f"{intent.target}:{intent.version}" if intent.version else intent.target or "",
            items=ordered(items),
            warnings=tuple(warnings),
            notes={"prefixes": [[c, p] for c, p in prefixes]},
        )


class DeleteModel(_ModelVersions):
    action = "delete model"

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await delete_planned(plan, ctx, checkpoint, delete_version(ctx))


class ExportModel(_ModelVersions):
    action = "export model"

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await export_planned(plan, ctx, checkpoint)

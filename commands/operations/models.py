"""`export model <name>[:<version>]` / `delete model …`: model versions, their records and files.

A version's files are blobs under the datastore path its URI names
(`azureml://…/datastores/<store>/paths/<path>`). azure-ai-ml can only archive a version; the REST
API deletes it (`DELETE …/models/<name>/versions/<v>`), sent here through the resource manager.
"""

from __future__ import annotations

import re
from typing import Any

from commands.azure.control import outcome_of_delete
from commands.azure.door import ItemResult, Status
from commands.intents import Intent
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.run_data import (
    ML_API_VERSION,
    Prefix,
    RecordDelete,
    blob_items,
    delete_planned,
    export_planned,
    ordered,
    record_name,
)
from commands.plan import ItemKind, Plan, PlanItem

_URI = re.compile(
    r"azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/[^/]+/)?datastores/(?P<store>[^/]+)/paths/(?P<path>.+)",
    re.IGNORECASE,
)
ARTIFACT_STORE = "workspaceartifactstore"
ARCHIVED = "archived: the service only archives"
ONLY_ARCHIVES = (
    "The Azure ML SDK only archives model versions: amlbot deletes each version through the REST API "
    "and its files at the storage level. Where the service refuses, the version is archived and "
    "reported as retained."
)


def version_id(ctx: Context, version: Any) -> str:
    # Built, not read: `models.get` prefixes the id with `azureml:`, `models.list` does not.
    return ctx.control.child_id("models", f"{version.name}/versions/{version.version}")


def _label(version: Any) -> str:
    return f"{version.name}:{version.version}"


def _within(name: str, path: str) -> bool:
    path = path.rstrip("/")
    return name == path or name.startswith(path + "/")


async def _versions(intent: Intent, ctx: Context) -> tuple[list[Any], list[Any]]:
    """The versions asked for and the model's other versions, archived ones included (their
    files are still there)."""
    from azure.core.exceptions import ResourceNotFoundError

    def every_version() -> list[Any]:
        from azure.ai.ml.constants import ListViewType

        return list(ctx.control.ml().models.list(name=intent.target, list_view_type=ListViewType.ALL))

    try:
        every = await ctx.control.call(every_version)
    except ResourceNotFoundError:
        every = []
    chosen = [v for v in every if intent.version in (None, v.version)]
    if not chosen:
        what = f"{intent.target}:{intent.version}" if intent.version else intent.target
        raise OperationError(f"No model `{what}` in workspace `{ctx.alias}`.")
    return chosen, [v for v in every if v.version not in {c.version for c in chosen}]


class _Stores:
    """Datastore name -> its container in the workspace's own storage account (the one amlbot
    reaches); None with the reason when a version's files are elsewhere. Looked up once per plan."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._datastores: dict[str, Any] = {}

    async def _datastore(self, name: str) -> Any:
        if name not in self._datastores:
            control = self.ctx.control
            self._datastores[name] = await control.call(lambda: control.ml().datastores.get(name))
        return self._datastores[name]

    async def container(self, store: str) -> tuple[str | None, str]:
        from azure.core.exceptions import ResourceNotFoundError

        if store.lower() == ARTIFACT_STORE:
            return self.ctx.config.artifact_container, ""
        try:
            datastore, home = await self._datastore(store), await self._datastore(ARTIFACT_STORE)
        except ResourceNotFoundError:
            return None, f"datastore `{store}` does not exist"
        container = getattr(datastore, "container_name", None)
        if not container:
            return None, f"datastore `{store}` is not blob storage"
        if datastore.account_name != home.account_name:
            return None, f"datastore `{store}` is in storage account `{datastore.account_name}`, not the workspace's"
        return container, ""

    async def locate(self, version: Any) -> tuple[str | None, str]:
        """(container, path) of a version's files; (None, why) when they cannot be reached."""
        match = _URI.fullmatch(version.path or "")
        if match is None:
            return None, f"their URI `{version.path}` names no datastore path"
        container, why = await self.container(match["store"])
        return (container, match["path"]) if container else (None, why)


async def _files(ctx: Context, container: str, path: str) -> tuple[list[PlanItem], Prefix | None]:
    """A folder's blobs (with its prefix, to notice late arrivals), or the one blob a file path names."""
    folder = (container, path.rstrip("/") + "/")
    items = await blob_items(ctx, [folder])
    if items:
        return items, folder
    return [i for i in await blob_items(ctx, [(container, path.rstrip("/"))]) if i.ref == path.rstrip("/")], None


class _ModelVersions:
    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        chosen, others = await _versions(intent, ctx)
        stores = _Stores(ctx)
        items = [PlanItem(ItemKind.MODEL_VERSION, version_id(ctx, v)) for v in chosen]
        prefixes: list[Prefix] = []
        warnings = [ONLY_ARCHIVES] if intent.destructive else []
        # A deletion must not take files that a version it keeps still points at.
        shared = [(await stores.locate(v), _label(v)) for v in others] if intent.destructive else []
        for version in chosen:
            container, path = await stores.locate(version)
            if container is None:
                warnings.append(f"{_label(version)}'s files are left alone: {path}.")
                continue
            files, prefix = await _files(ctx, container, path)
            held = {f.key: label for f in files for (c, p), label in shared if c == container and _within(f.ref, p)}
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


def _refused(result: ItemResult) -> bool:
    """The service turned the REST delete down as unsupported (its acceptance is unconfirmed)."""
    reason = result.reason.lower()
    return result.status is Status.FAILED and ("support" in reason or reason.startswith(("methodnotallowed", "http 405")))


def delete_version(ctx: Context) -> RecordDelete:
    control = ctx.control

    def delete(item: PlanItem) -> ItemResult:
        deleted = outcome_of_delete(lambda: control.arm().resources.begin_delete_by_id(item.ref, api_version=ML_API_VERSION))
        if not _refused(deleted):
            return deleted
        name, version = record_name(item).rsplit(":", 1)
        archived = outcome_of_delete(lambda: control.ml().models.archive(name, version=version))
        if archived.status is Status.DELETED:  # the archive call went through
            return ItemResult(Status.RETAINED, ARCHIVED, archived.azure_request_id)
        return archived

    return delete


class DeleteModel(_ModelVersions):
    action = "delete model"

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await delete_planned(plan, ctx, checkpoint, delete_version(ctx))


class ExportModel(_ModelVersions):
    action = "export model"

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await export_planned(plan, ctx, checkpoint)

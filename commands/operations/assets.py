"""Versioned assets — data, environments, components, models: listed, located, shared, archived.

azure-ai-ml only archives asset versions (GET, then PUT with `isArchived`); model and data versions
are deleted through the REST API instead, environment and component versions archived. Their files
stay until deleted at the storage level. Files are often shared: uploads
are content-addressed, so identical data, build contexts or code land in one `LocalUpload/<hash>/`
folder, and runs point at data by URI or by asset reference. Before deleting files, a plan asks
what else in the workspace points at them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from commands.azure.control import outcome_of_delete
from commands.azure.door import ItemResult, Status
from commands.azure.sdk import ResourceNotFoundError, every_view
from commands.operations.base import Context
from commands.operations.datastores import Located, Stores, files_at, within
from commands.operations.run_data import (
    KEPT_LISTED,
    ML_API_VERSION,
    STORAGE,
    Prefix,
    RecordDelete,
    keep,
    record_name,
)
from commands.plan import ItemKind, Plan, PlanItem

ARCHIVED = "archived: the service keeps the record, hidden from lists"


@dataclass(frozen=True)
class AssetKind:
    item: ItemKind
    collection: str  # the REST collection, also the MLClient attribute
    label: str  # for people


DATA = AssetKind(ItemKind.DATA_VERSION, "data", "data")
ENVIRONMENT = AssetKind(ItemKind.ENVIRONMENT_VERSION, "environments", "environment")
COMPONENT = AssetKind(ItemKind.COMPONENT_VERSION, "components", "component")
MODEL = AssetKind(ItemKind.MODEL_VERSION, "models", "model")
KINDS = {kind.item: kind for kind in (DATA, ENVIRONMENT, COMPONENT, MODEL)}
Catalog = dict[AssetKind, list[Any]]  # every version of every asset, by kind

# How runs name an asset: `azureml:<name>:<version>`, `azureml:<name>@<label>`, or by id.
_REFERENCE = re.compile(r"azureml:(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@[^:@/]+)?")
_ASSET_ID = re.compile(r".*/(?:data|models)/(?P<name>[^/]+)/versions/(?P<version>[^/]+)")


def asset_item(ctx: Context, kind: AssetKind, asset: Any) -> PlanItem:
    # Built, not read: `get` prefixes the id with `azureml:`, `list` does not.
    return PlanItem(kind.item, ctx.control.child_id(kind.collection, f"{asset.name}/versions/{asset.version}"))


async def versions(ctx: Context, kind: AssetKind, name: str | None = None) -> list[Any]:
    """Every version of one asset, or of all of them, archived ones too (their files are still there)."""
    def every() -> list[Any]:
        operations = getattr(ctx.control.ml(), kind.collection)
        names = [name] if name else [c.name for c in operations.list(list_view_type=every_view())]
        return [v for n in names for v in operations.list(name=n, list_view_type=every_view())]

    try:
        return await ctx.control.call(every)
    except ResourceNotFoundError:
        return []


async def catalog(ctx: Context) -> Catalog:
    return {kind: await versions(ctx, kind) for kind in KINDS.values()}


async def locate(stores: Stores, kind: AssetKind, asset: Any) -> Located:
    """Where an asset version's own files are: a datastore path (data, models), an environment's
    uploaded build context, or a component's code."""
    if kind is ENVIRONMENT:
        if asset.build is None:
            return None, f"it is built from the image `{asset.image}`, with no files of its own"
        return await stores.locate_url(asset.build.path)
    if kind is COMPONENT:
        return await stores.locate_code(asset.code)
    return await stores.locate(asset.path)


@dataclass
class AssetPlan:
    """What a plan takes for some asset versions: their records, their files and where to look for
    late arrivals; warnings for files that cannot be reached."""

    records: list[PlanItem] = field(default_factory=list)
    files: list[PlanItem] = field(default_factory=list)
    prefixes: list[Prefix] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


async def plan_assets(ctx: Context, stores: Stores, chosen: list[tuple[AssetKind, Any]]) -> AssetPlan:
    planned = AssetPlan()
    for kind, asset in chosen:
        planned.records.append(asset_item(ctx, kind, asset))
        container, path = await locate(stores, kind, asset)
        if container is None:
            planned.warnings.append(f"{kind.label} {asset.name}:{asset.version}'s files are left alone: {path}.")
            continue
        files, prefix = await files_at(ctx, container, path)
        planned.files += files
        planned.prefixes += [prefix] if prefix else []
    return planned


@dataclass(frozen=True)
class Holder:
    """Something that points at files: an asset version, or a run through an input, output or code."""

    container: str
    path: str
    owner: str  # the plan key of its record
    label: str  # for people: `data churn:2`, `run train-7`


async def holders(ctx: Context, stores: Stores, jobs: list[Any], assets: Catalog) -> list[Holder]:
    """Everything in the workspace that points at files, and where."""
    found: list[Holder] = []
    by_reference: dict[str, list[tuple[str | None, Holder]]] = {}  # data/model name -> (version, holder)
    for kind, listed in assets.items():
        for asset in listed:
            container, path = await locate(stores, kind, asset)
            if container is None:
                continue
            holder = Holder(container, path, asset_item(ctx, kind, asset).key, f"{kind.label} {asset.name}:{asset.version}")
            found.append(holder)
            if kind in (DATA, MODEL):
                by_reference.setdefault(asset.name.lower(), []).append((str(asset.version), holder))
    for job in jobs:
        owner = PlanItem(ItemKind.JOB, ctx.control.child_id("jobs", job.name)).key
        for container, path in await _run_targets(stores, job, by_reference):
            found.append(Holder(container, path, owner, f"run {job.name}"))
    return found


async def _run_targets(stores: Stores, job: Any, by_reference: dict[str, list[tuple[str | None, Holder]]]) -> list[tuple[str, str]]:
    """Where a run's inputs, outputs and code point."""
    values = [*(getattr(job, "inputs", None) or {}).values(), *(getattr(job, "outputs", None) or {}).values()]
    uris = [value.path for value in values if isinstance(getattr(value, "path", None), str)]
    targets: list[Located] = [await stores.locate_code(job.code)] if isinstance(getattr(job, "code", None), str) else []
    for uri in uris:
        named = _ASSET_ID.fullmatch(uri) or _REFERENCE.fullmatch(uri)
        if named is None:
            targets.append(await stores.locate(uri))
            continue
        # A reference without a version (`@latest`) may mean any of them: count them all.
        versions_named = by_reference.get(named["name"].lower(), [])
        targets += [(h.container, h.path) for version, h in versions_named if named["version"] in (None, version)]
    return [(container, path) for container, path in targets if container]


def sharing(files: list[PlanItem], found: list[Holder], planned: set[str]) -> dict[str, list[str]]:
    """Each file that something outside `planned` (plan keys of records going away) points at,
    with what points at it."""
    shared = {}
    for item in files:
        labels = sorted({h.label for h in found if h.owner not in planned and h.container == item.container and within(item.ref, h.path)})
        if labels:
            shared[item.key] = labels
    return shared


def users_of(shared: dict[str, list[str]]) -> str:
    labels = sorted({label for labels in shared.values() for label in labels})
    more = f" and {len(labels) - KEPT_LISTED} more" if len(labels) > KEPT_LISTED else ""
    return ", ".join(f"`{label}`" for label in labels[:KEPT_LISTED]) + more


def keep_shared(plan: Plan, shared: dict[str, list[str]], hint: str) -> Plan:
    """Keep the files other records use, each listed with who uses it."""
    if not shared:
        return plan
    reasons = {key: "also used by " + ", ".join(labels) for key, labels in shared.items()}
    return keep(plan, reasons, f"{len(shared)} file(s) are also used by {users_of(shared)}: they are kept. {hint}")


async def keep_what_others_use(
    ctx: Context, plan: Plan, stores: Stores, jobs: list[Any], assets: Catalog, hint: str = "Ask again once nothing else uses them."
) -> Plan:
    """A deletion keeps each of its blobs that a record staying in the workspace points into — a
    model, data asset, environment, component or job (`LocalUpload/<hash>/` folders are shared by
    content, and models and data are registered from runs' outputs) — listed with who uses it.
    `jobs` and `assets` are everything in the workspace."""
    retained = set(plan.notes.get("retained", {}))
    going = {item.key for item in plan.items if item.kind not in STORAGE} - retained
    files = [item for item in plan.items if item.kind is ItemKind.BLOB and item.key not in retained]
    return keep_shared(plan, sharing(files, await holders(ctx, stores, jobs, assets), going), hint)


def archive_version(ctx: Context) -> RecordDelete:
    """Archive an environment or component version: the most azure-ai-ml does to one."""

    def archive(item: PlanItem) -> ItemResult:
        done = outcome_of_delete(lambda: _archive(ctx, item))
        return replace(done, status=Status.ARCHIVED, reason=ARCHIVED) if done.status is Status.DELETED else done

    return archive


def delete_version(ctx: Context) -> RecordDelete:
    """Delete a model or data version through the REST API: api-version 2024-04-01 has
    `DELETE …/{models|data}/{name}/versions/{version}` (200 or 204), which azure-ai-ml never calls (it
    only archives). Where the service refuses it, the version is archived and reported as kept."""

    def delete(item: PlanItem) -> ItemResult:
        deleted = outcome_of_delete(lambda: ctx.control.arm().resources.begin_delete_by_id(item.ref, api_version=ML_API_VERSION))
        if not _refused(deleted):
            return deleted
        archived = outcome_of_delete(lambda: _archive(ctx, item))
        if archived.status is Status.DELETED:  # the archive call went through
            return ItemResult(Status.RETAINED, ONLY_ARCHIVED, archived.azure_request_id)
        return archived

    return delete


ONLY_ARCHIVED = "archived: the service only archives"


def _archive(ctx: Context, item: PlanItem) -> Any:
    name, version = record_name(item).rsplit(":", 1)
    return getattr(ctx.control.ml(), KINDS[item.kind].collection).archive(name, version=version)


def _refused(result: ItemResult) -> bool:
    """The service turned the REST delete down as unsupported (its acceptance is unconfirmed)."""
    reason = result.reason.lower()
    return result.status is Status.FAILED and ("support" in reason or reason.startswith(("methodnotallowed", "http 405")))

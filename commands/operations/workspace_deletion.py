"""`delete workspace <alias> [--with-dependents] [--purge]`: the workspace, and the resources it uses.

azure-ai-ml's `delete_dependent_resources=True` deletes the storage account, Key Vault, Application
Insights, the Log Analytics workspace behind it and the container registry without waiting for any
of them, and whether another workspace shares them or not. amlbot deletes the workspace alone
through the SDK, then each dependent through the resource manager, waiting for each; a dependent
another workspace (or another Application Insights) uses is kept and listed with the reason.
What stays recoverable after a deletion (soft-deleted vaults and Log Analytics workspaces, a
storage account Azure may restore) is said in the plan and in the receipt, never hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from commands.azure.control import outcome_of_delete
from commands.azure.door import ItemResult, Status
from commands.azure.sdk import (
    HttpResponseError,
    ResourceNotFoundError,
    subscription_scope,
)
from commands.intents import Action, Intent, Kind, Verb
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.run_data import delete_planned
from commands.plan import ItemKind, Plan, PlanItem

WORKSPACE_RETENTION_DAYS = 14  # the service's soft-delete retention for workspaces
LOG_ANALYTICS_RETENTION_DAYS = 14  # a deleted Log Analytics workspace is soft-deleted this long
STORAGE_RESTORE_DAYS = 14  # how long Azure may restore a deleted storage account


@dataclass(frozen=True)
class DependentKind:
    label: str
    provider: str  # lower-case resource provider namespace
    api_version: str


APP_INSIGHTS = DependentKind("Application Insights", "microsoft.insights", "2020-02-02")
LOG_ANALYTICS = DependentKind("Log Analytics workspace", "microsoft.operationalinsights", "2023-01-01")
STORAGE = DependentKind("storage account", "microsoft.storage", "2023-05-01")
KEY_VAULT = DependentKind("Key Vault", "microsoft.keyvault", "2023-07-01")
REGISTRY = DependentKind("container registry", "microsoft.containerregistry", "2023-07-01")
# The order of deletion: Application Insights before the Log Analytics workspace it writes to.
_ATTRIBUTES = (("application_insights", APP_INSIGHTS), ("storage_account", STORAGE), ("key_vault", KEY_VAULT), ("container_registry", REGISTRY))
KINDS = {kind.provider: kind for kind in (APP_INSIGHTS, LOG_ANALYTICS, STORAGE, KEY_VAULT, REGISTRY)}


def kind_of(resource_id: str) -> DependentKind:
    provider = resource_id.split("/providers/", 1)[-1].split("/")[0].lower()
    return KINDS[provider]


def _name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def vault_recovery(properties: dict[str, Any]) -> dict[str, Any]:
    """What a Key Vault's deletion leaves (`enableSoftDelete`, `softDeleteRetentionInDays`,
    `enablePurgeProtection` of its REST properties); soft delete is on for every vault made since 2020."""
    if properties.get("enableSoftDelete") is False:
        return {}
    return {"days": int(properties.get("softDeleteRetentionInDays") or 90), "purge_protection": bool(properties.get("enablePurgeProtection"))}


def recovery_warning(resource_id: str, recovery: dict[str, Any]) -> str | None:
    """The plan's word on what stays recoverable after deleting one dependent."""
    kind, name = kind_of(resource_id), _name(resource_id)
    if kind is KEY_VAULT:
        if not recovery:
            return f"Key Vault `{name}` has soft delete off: once deleted it cannot be recovered."
        guard = ("purge protection is on: nobody can purge it sooner" if recovery["purge_protection"]
                 else "purge protection is off: an owner can purge it sooner")
        return (
            f"Key Vault `{name}` is soft-deleted: it and its secrets stay recoverable for {recovery['days']} days ({guard}); "
            "its name stays taken meanwhile."
        )
    if kind is LOG_ANALYTICS:
        return f"Log Analytics workspace `{name}` is soft-deleted: its logs stay recoverable for {LOG_ANALYTICS_RETENTION_DAYS} days."
    if kind is STORAGE:
        return f"Storage account `{name}`: Azure may restore a deleted account for {STORAGE_RESTORE_DAYS} days, unless a new account takes its name."
    return None


def deleted_outcome(resource_id: str, recovery: dict[str, Any], at: datetime) -> ItemResult:
    """What a successful deletion of one dependent leaves, as the receipt says it."""
    kind = kind_of(resource_id)
    if kind is KEY_VAULT and recovery:
        until = (at + timedelta(days=recovery["days"])).date().isoformat()
        purge = "purge protection on" if recovery["purge_protection"] else "purge protection off: an owner can purge it sooner"
        return ItemResult(Status.SOFT_DELETED, f"soft-deleted: recoverable until {until} ({purge})")
    if kind is LOG_ANALYTICS:
        until = (at + timedelta(days=LOG_ANALYTICS_RETENTION_DAYS)).date().isoformat()
        return ItemResult(Status.SOFT_DELETED, f"soft-deleted: recoverable until {until}")
    if kind is STORAGE:
        until = (at + timedelta(days=STORAGE_RESTORE_DAYS)).date().isoformat()
        return ItemResult(Status.DELETED, f"Azure may restore the account until {until} if no new account takes its name")
    return ItemResult(Status.DELETED)


class DeleteWorkspace:
    action = Action(Verb.DELETE, Kind.WORKSPACE)

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        ml = await ctx.control.client()
        try:
            workspace = await ctx.control.call(ml.workspaces.get, ctx.config.workspace_name)
        except ResourceNotFoundError:
            raise OperationError(f"Workspace `{ctx.config.workspace_name}` (alias `{ctx.alias}`) does not exist.") from None
        items = [PlanItem(ItemKind.RESOURCE, ctx.control.workspace_id)]
        warnings = ["Computes, endpoints, running jobs and role assignments go at once."]
        notes: dict[str, Any] = {"purge": intent.purge, "with_dependents": intent.with_dependents}
        if intent.purge:
            warnings.append("Permanent deletion (--purge): the workspace itself cannot be recovered.")
        else:
            warnings.append(
                f"Soft delete: the workspace and its data are kept {WORKSPACE_RETENTION_DAYS} days and can be recovered; add --purge for an erasure."
            )
        if not intent.with_dependents:
            warnings.append(
                "The storage account (with the runs' files), Key Vault, container registry and Application Insights are kept; "
                "add --with-dependents to delete them."
            )
        else:
            dependents = await _dependents(ctx, workspace)
            kept = await _shared(ctx, workspace, dependents)
            recovery = await _recoveries(ctx, [d for d in dependents if d not in kept])
            items += [PlanItem(ItemKind.RESOURCE, d) for d in dependents]
            notes["retained"] = {PlanItem(ItemKind.RESOURCE, d).key: reason for d, reason in kept.items()}
            notes["recovery"] = recovery
            warnings += [f"Kept: {kind_of(d).label} `{_name(d)}`, {reason}." for d, reason in kept.items()]
            warnings += [w for d in dependents if d not in kept and (w := recovery_warning(d, recovery.get(d, {})))]
            if not intent.purge:
                warnings.append("Recovering the soft-deleted workspace needs the dependents deleted with it.")
            warnings.append(
                f"Sharing was checked against the workspaces and Application Insights amlbot can read in subscription "
                f"`{ctx.config.subscription_id}`; other users of these resources (apps, other subscriptions) are not visible to it."
            )
        return Plan(
            action=intent.action, workspace=ctx.alias, target=ctx.config.workspace_name, items=tuple(items),
            warnings=tuple(warnings), notes=notes,
        )

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        workspace_key = plan.items[0].key
        first = dict(checkpoint.done)

        def delete(item: PlanItem) -> ItemResult:
            if item.key == workspace_key:
                return _delete_workspace(ctx, bool(plan.notes["purge"]))
            gone = first.get(workspace_key)
            if gone is None or gone.status not in (Status.DELETED, Status.SOFT_DELETED, Status.ALREADY_ABSENT):
                return ItemResult(Status.FAILED, "not attempted: the workspace still uses it (its deletion failed)")
            kind = kind_of(item.ref)
            done = outcome_of_delete(lambda: ctx.control.arm().resources.begin_delete_by_id(item.ref, api_version=kind.api_version))
            if done.status is not Status.DELETED:
                return done
            return deleted_outcome(item.ref, plan.notes.get("recovery", {}).get(item.ref, {}), datetime.now(UTC))

        def recorded(item: PlanItem) -> ItemResult:
            result = delete(item)
            first.setdefault(item.key, result)
            return result

        return await delete_planned(plan, ctx, checkpoint, recorded)


def _delete_workspace(ctx: Context, purge: bool) -> ItemResult:
    """The workspace alone, polled to the end; its dependents are deleted one by one afterwards."""
    ml = ctx.control.ml()
    deleted = outcome_of_delete(
        lambda: ml.workspaces.begin_delete(ctx.config.workspace_name, delete_dependent_resources=False, permanently_delete=purge)
    )
    if deleted.status is Status.DELETED and not purge:
        return ItemResult(Status.SOFT_DELETED, f"recoverable for {WORKSPACE_RETENTION_DAYS} days", deleted.azure_request_id)
    return deleted


async def _dependents(ctx: Context, workspace: Any) -> list[str]:
    """The workspace's dependents in deletion order, the Log Analytics workspace behind its
    Application Insights included (the SDK deletes that one too)."""
    found: list[str] = []
    for attribute, kind in _ATTRIBUTES:
        resource_id = getattr(workspace, attribute, None)
        if not resource_id:
            continue
        found.append(resource_id)
        if kind is APP_INSIGHTS and (logs := await _log_analytics_of(ctx, resource_id)):
            found.append(logs)
    return found


async def _log_analytics_of(ctx: Context, insights_id: str) -> str | None:
    document = await ctx.control.call(ctx.control.document, insights_id, APP_INSIGHTS.api_version)
    return ((document or {}).get("properties") or {}).get("WorkspaceResourceId") or None


async def _shared(ctx: Context, workspace: Any, dependents: list[str]) -> dict[str, str]:
    """Dependents something else uses, with the reason: another workspace (storage, Key Vault,
    registry, Application Insights) or another Application Insights (a Log Analytics workspace)."""
    ours = ctx.control.workspace_id.lower()
    try:
        others = [w for w in await ctx.control.call(lambda: list(ctx.control.ml().workspaces.list(scope=subscription_scope())))
                  if (w.id or "").lower() != ours]
        insights = await ctx.control.call(_other_insights, ctx, getattr(workspace, "application_insights", None))
    except HttpResponseError as error:
        raise OperationError(
            f"amlbot cannot tell whether the dependents are shared: listing subscription `{ctx.config.subscription_id}` "
            f"failed ({error.reason or error.status_code}). Give it Reader on the subscription."
        ) from None
    users: dict[str, list[str]] = {}
    for other in others:
        for attribute, _ in _ATTRIBUTES:
            if resource_id := getattr(other, attribute, None):
                users.setdefault(resource_id.lower(), []).append(f"workspace `{other.name}`")
    for insights_id, logs in insights:
        users.setdefault(logs.lower(), []).append(f"Application Insights `{_name(insights_id)}`")
    return {d: "also used by " + ", ".join(sorted(users[d.lower()])) for d in dependents if d.lower() in users}


def _other_insights(ctx: Context, ours: str | None) -> list[tuple[str, str]]:
    """Every other Application Insights in the subscription, with the Log Analytics workspace it writes to."""
    arm = ctx.control.arm()
    found = []
    for component in arm.resources.list(filter="resourceType eq 'Microsoft.Insights/components'"):
        if ours and component.id.lower() == ours.lower():
            continue
        document = ctx.control.document(component.id, APP_INSIGHTS.api_version) or {}
        if logs := (document.get("properties") or {}).get("WorkspaceResourceId"):
            found.append((component.id, logs))
    return found


async def _recoveries(ctx: Context, dependents: list[str]) -> dict[str, dict[str, Any]]:
    """What each Key Vault's deletion leaves recoverable, read from its properties."""
    vaults = [d for d in dependents if kind_of(d) is KEY_VAULT]
    found = {}
    for vault in vaults:
        document = await ctx.control.call(ctx.control.document, vault, KEY_VAULT.api_version)
        found[vault] = vault_recovery((document or {}).get("properties") or {})
    return found

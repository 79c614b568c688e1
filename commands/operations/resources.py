"""Deleting whole resources: a compute, an online or batch endpoint, idle computes (the workspace
itself: `workspace_deletion`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from commands.azure.control import outcome_of_delete
from commands.azure.door import ItemResult, Status
from commands.azure.sdk import ResourceNotFoundError
from commands.durations import format_duration
from commands.intents import Action, Intent, Kind, Verb
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.compute_activity import ComputeActivity, compute_activity
from commands.operations.run_data import RecordDelete, delete_planned
from commands.plan import ItemKind, Plan, PlanItem


def _deleting(delete: Callable[[PlanItem], Any]) -> RecordDelete:
    """A record delete for `delete_planned`: runs one SDK delete to completion, 404 as already absent."""
    return lambda item: outcome_of_delete(lambda: delete(item))


class DeleteCompute:
    action = Action(Verb.DELETE, Kind.COMPUTE)

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        resource_id = ctx.control.child_id("computes", intent.target or "")
        raw = await ctx.control.call_or_none(ctx.control.arm().resources.get_by_id, resource_id, api_version=COMPUTE_API)
        if raw is None:
            raise OperationError(f"No compute `{intent.target}` in workspace `{ctx.alias}`.")
        activity = compute_activity(raw.properties or {})
        warnings = []
        if activity.attached:
            warnings.append(
                f"`{intent.target}` is attached ({activity.compute_type}): it is detached from the workspace; the resource behind it is kept."
            )
        if activity.busy_nodes:
            warnings.append(f"{activity.busy_nodes} node(s) are running or preparing jobs: those jobs will be stopped.")
        elif activity.resizing:
            warnings.append("The cluster is resizing (work may be queued on it): that work will be stopped.")
        # underlyingResourceAction: the resource behind an attached compute is not ours to delete.
        action = "Detach" if activity.attached else "Delete"
        return Plan(
            action=intent.action, workspace=ctx.alias, target=intent.target or "",
            items=(PlanItem(ItemKind.RESOURCE, resource_id),), warnings=tuple(warnings),
            notes={"name": intent.target, "type": activity.compute_type, "action": action, "busy": activity.busy},
        )

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        ml = await ctx.control.client()
        action = plan.notes.get("action", "Delete")

        def delete(item: PlanItem) -> ItemResult:
            done = outcome_of_delete(lambda: ml.compute.begin_delete(plan.notes["name"], action=action))
            return replace(done, reason=DETACHED) if action == "Detach" and done.status is Status.DELETED else done

        def as_approved(activity: ComputeActivity) -> bool:
            """Approved busy, it goes busy; approved idle, it is kept if it got busy meanwhile."""
            return not activity.busy or bool(plan.notes.get("busy"))

        return await delete_planned(plan, ctx, checkpoint, _if_still(ctx, as_approved, delete))


DETACHED = "detached from the workspace; the resource behind it is kept"


class DeleteEndpoint:
    action = Action(Verb.DELETE, Kind.ENDPOINT)

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        ml = await ctx.control.client()
        found = []
        for kind, operations, collection in (
            ("online", ml.online_endpoints, "onlineEndpoints"),
            ("batch", ml.batch_endpoints, "batchEndpoints"),
        ):
            if await ctx.control.call_or_none(operations.get, intent.target) is not None:
                found.append((kind, collection))
        if not found:
            raise OperationError(f"No online or batch endpoint `{intent.target}` in workspace `{ctx.alias}`.")
        return Plan(
            action=intent.action, workspace=ctx.alias, target=intent.target or "",
            items=tuple(PlanItem(ItemKind.RESOURCE, ctx.control.child_id(c, intent.target or "")) for _, c in found),
            warnings=("Its deployments are deleted with it; callers of its scoring URI get errors.",),
            notes={"name": intent.target, "kinds": [k for k, _ in found]},
        )

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        ml = await ctx.control.client()
        name = plan.notes["name"]

        def delete(item: PlanItem) -> Any:
            operations = ml.online_endpoints if "/onlineEndpoints/" in item.ref else ml.batch_endpoints
            return operations.begin_delete(name=name)

        return await delete_planned(plan, ctx, checkpoint, _deleting(delete))


class CleanupComputes:
    """`cleanup computes --idle <duration>`: AmlCompute clusters at zero nodes whose allocation has
    not changed for that long."""

    action = Action(Verb.CLEANUP, Kind.COMPUTES)

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        assert intent.idle is not None
        cutoff = datetime.now(UTC) - intent.idle
        ml, arm = await ctx.control.client(), ctx.control.arm()
        items = []
        for compute in await ctx.control.call(lambda: list(ml.compute.list())):
            resource_id = ctx.control.child_id("computes", compute.name)
            # The SDK's compute entity drops node counts and allocation times; the raw resource keeps them.
            raw = await ctx.control.call_or_none(arm.resources.get_by_id, resource_id, api_version=COMPUTE_API)
            if raw is None or not compute_activity(raw.properties or {}).idle_since(cutoff):
                continue
            items.append(PlanItem(ItemKind.RESOURCE, resource_id))
        if not items:
            raise OperationError(f"No compute in workspace `{ctx.alias}` has been idle for `{format_duration(intent.idle)}`.")
        return Plan(
            action=intent.action, workspace=ctx.alias, target=f"computes idle since {cutoff.isoformat(timespec='minutes')}",
            items=tuple(sorted(items, key=lambda item: item.ref)), notes={"idle_since": cutoff.isoformat()},
        )

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        ml = await ctx.control.client()
        delete = _deleting(lambda item: ml.compute.begin_delete(item.ref.rsplit("/", 1)[1]))
        cutoff = datetime.fromisoformat(plan.notes["idle_since"]) if "idle_since" in plan.notes else datetime.now(UTC)
        return await delete_planned(plan, ctx, checkpoint, _if_still(ctx, lambda activity: activity.idle_since(cutoff), delete))


def _if_still(ctx: Context, fine: Callable[[ComputeActivity], bool], delete: RecordDelete) -> RecordDelete:
    """A compute is looked at again just before its delete: one whose activity is no longer what
    was approved (busy now, or used since the plan) is kept, with what it is doing."""
    arm = ctx.control.arm()

    def checked(item: PlanItem) -> ItemResult:
        try:
            raw = arm.resources.get_by_id(item.ref, api_version=COMPUTE_API)
        except ResourceNotFoundError:
            return ItemResult(Status.ALREADY_ABSENT)
        activity = compute_activity(raw.properties or {})
        if fine(activity):
            return delete(item)
        if activity.busy_nodes:
            now = f"{activity.busy_nodes} node(s) running or preparing jobs"
        elif activity.resizing:
            now = "resizing"
        else:
            now = f"used since the plan ({activity.nodes} node(s) now)"
        return ItemResult(Status.RETAINED, f"busy now: {now}; kept, since it was approved idle. Ask again to delete it as it is")

    return checked


COMPUTE_API = "2024-04-01"  # GA: AmlCompute's REST properties carry node counts and allocation times

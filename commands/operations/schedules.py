"""`delete schedule <name>`, and the schedules a person created: each would start new runs.

"A schedule must be disabled to be deleted" (Microsoft Learn): an enabled one is disabled first
(`schedules.begin_disable`), then deleted (`schedules.begin_delete`), both long-running operations
polled to completion through azure-ai-ml.
"""

from __future__ import annotations

from typing import Any

from commands.azure.control import outcome_of_delete
from commands.azure.door import ItemResult
from commands.azure.sdk import ResourceNotFoundError
from commands.intents import Action, Intent, Kind, Verb
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.run_data import RecordDelete, delete_planned, record_name
from commands.plan import ItemKind, Plan, PlanItem


def schedule_item(ctx: Context, name: str) -> PlanItem:
    return PlanItem(ItemKind.SCHEDULE, ctx.control.child_id("schedules", name))


def describe(schedule: Any) -> str:
    """What a schedule does, for the plan: `nightly` (cron `0 3 * * *`, experiment `churn`, enabled)."""
    trigger = schedule.trigger
    expression = getattr(trigger, "expression", None)
    when = f"cron `{expression}`" if expression else f"every {trigger.interval} {trigger.frequency}"
    experiment = getattr(schedule.create_job, "experiment_name", None)
    runs = f", experiment `{experiment}`" if experiment else ""
    return f"`{schedule.name}` ({when}{runs}, {'enabled' if schedule.is_enabled else 'disabled'})"


async def every_schedule(ctx: Context) -> list[Any]:
    """Every schedule, enabled or not (a disabled one can be enabled again)."""
    return await ctx.control.call(lambda: list(ctx.control.ml().schedules.list(list_view_type="All")))


def delete_schedule(ctx: Context) -> RecordDelete:
    def delete(item: PlanItem) -> ItemResult:
        schedules = ctx.control.ml().schedules
        name = record_name(item)

        def disable_then_delete() -> Any:
            if schedules.get(name).is_enabled:
                schedules.begin_disable(name).result()
            return schedules.begin_delete(name)

        return outcome_of_delete(disable_then_delete)

    return delete


class DeleteSchedule:
    action = Action(Verb.DELETE, Kind.SCHEDULE)

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        assert intent.target
        try:
            schedule = await ctx.control.call((await ctx.control.client()).schedules.get, intent.target)
        except ResourceNotFoundError:
            raise OperationError(f"No schedule `{intent.target}` in workspace `{ctx.alias}`.") from None
        step = "it is disabled first, as the service requires, then deleted" if schedule.is_enabled else "it is deleted"
        return Plan(
            action=intent.action,
            workspace=ctx.alias,
            target=intent.target,
            items=(schedule_item(ctx, schedule.name),),
            warnings=(f"Schedule {describe(schedule)} starts no more runs: {step}.",),
        )

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await delete_planned(plan, ctx, checkpoint, delete_schedule(ctx))

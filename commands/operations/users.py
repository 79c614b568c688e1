"""`export user <who>` / `delete user <who>`: the runs a person created, and what else names them.

The control plane shows a job's creator as a UPN or a display name; the run-history record has the
object id and the UPN. A deletion takes the runs' files and records. Model versions the person
registered name them too: exported, and on deletion listed as kept with the reason, never hidden.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from commands.intents import Intent, UserRefType
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.models import version_id
from commands.operations.run_data import delete_job, delete_planned, export_planned, list_jobs, plan_runs, record_name
from commands.plan import ItemKind, Plan, PlanItem


@dataclass(frozen=True)
class _Person:
    upns: frozenset[str]
    object_ids: frozenset[str]

    def created(self, creator: dict[str, Any]) -> bool:
        """Whether a run-history `createdBy` is this person."""
        return (creator.get("userObjectId") or "").lower() in self.object_ids or (creator.get("upn") or "").lower() in self.upns


def _person(intent: Intent, ctx: Context) -> _Person:
    ref = intent.user
    assert ref is not None
    if ref.type is UserRefType.OBJECT_ID:
        return _Person(frozenset(), frozenset({ref.value.lower()}))
    # Azure knows people by UPN, not by Slack id: the bot resolves a mention to an email if it can.
    email = ref.value if ref.type is UserRefType.EMAIL else ctx.settings.get("user_email")
    if not email:
        raise OperationError(
            f"I can't tell who {ref} is in Azure. Name them by email or Entra object id, "
            f"e.g. `/aml {intent.action} jane.doe@contoso.com`."
        )
    return _Person(frozenset({email.lower()}), frozenset())


def _shown_creator(entity: Any) -> str:
    """The creator the control plane shows: a UPN or a display name."""
    creator = getattr(entity.creation_context, "created_by", None) if entity.creation_context else None
    return creator if isinstance(creator, str) else ""


async def _their_jobs(ctx: Context, person: _Person) -> tuple[list[Any], _Person]:
    """Their top-level jobs, and the person with every UPN run history gave for them."""
    jobs = await list_jobs(ctx)
    # The shown creator settles it when it is a UPN and no object id was given; else ask run history.
    unsure = [job for job in jobs if person.object_ids or "@" not in _shown_creator(job)]
    creators = await asyncio.gather(*(ctx.control.call(ctx.control.run_creator, job.name) for job in unsure))
    by_history = {job.name: creator for job, creator in zip(unsure, creators, strict=True) if person.created(creator)}
    theirs = [job for job in jobs if job.name in by_history or _shown_creator(job).lower() in person.upns]
    learned = {creator["upn"].lower() for creator in by_history.values() if creator.get("upn")}
    return theirs, replace(person, upns=person.upns | learned)


async def _their_model_versions(ctx: Context, person: _Person) -> list[Any]:
    """Model versions they registered (archived too); models name their creator by UPN only."""
    if not person.upns:
        return []

    def versions() -> list[Any]:
        from azure.ai.ml.constants import ListViewType

        models = ctx.control.ml().models
        every = ListViewType.ALL
        return [v for model in models.list(list_view_type=every) for v in models.list(name=model.name, list_view_type=every)]

    return [v for v in await ctx.control.call(versions) if _shown_creator(v).lower() in person.upns]


class _UserData:
    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        jobs, person = await _their_jobs(ctx, _person(intent, ctx))
        versions = await _their_model_versions(ctx, person)
        if not jobs and not versions:
            raise OperationError(f"Nothing created by {intent.user} in workspace `{ctx.alias}`.")
        records = tuple(PlanItem(ItemKind.MODEL_VERSION, version_id(ctx, v)) for v in versions)
        kept = {
            r.key: f"a model version they registered; `/aml delete model {record_name(r)}` deletes it"
            for r in records
            if intent.destructive
        }
        plan = await plan_runs(intent, ctx, jobs, str(intent.user), other_records=records, other_kept=kept)
        if person.upns:
            return plan
        # Only an object id, and no run told its UPN: model versions could not be searched.
        return replace(plan, warnings=(*plan.warnings, "Model versions were not searched: they name their creator by UPN, and no run gave this person's UPN."))


class DeleteUser(_UserData):
    action = "delete user"

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await delete_planned(plan, ctx, checkpoint, delete_job(ctx))


class ExportUser(_UserData):
    action = "export user"

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await export_planned(plan, ctx, checkpoint)

"""`export user <who>` / `delete user <who>`: everything a person created, and what else names them.

The control plane shows a creator as a UPN or a display name; the run-history record has the object
id and the UPN. A plan takes their runs (files and records), the data, environment and component
versions they created (files deleted; data versions deleted through the REST API, environment and
component versions archived, the most the service allows; files that something else uses are kept
and listed), the schedules they created (deleted first, so they start
no new runs) and their Studio notebooks. Model versions they registered are exported, and on
deletion listed as kept with the reason, never hidden.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from commands.intents import Intent
from commands.operations.assets import (
    COMPONENT,
    DATA,
    ENVIRONMENT,
    MODEL,
    archive_version,
    asset_item,
    catalog,
    delete_version,
    holders,
    keep_shared,
    plan_assets,
    sharing,
)
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.datastores import Stores
from commands.operations.notebooks import notebooks_of, with_shares
from commands.operations.people import Person, person_of, shown_creator
from commands.operations.run_data import (
    STORAGE,
    by_kind,
    delete_job,
    delete_planned,
    export_planned,
    list_jobs,
    ordered,
    plan_runs,
    record_name,
)
from commands.operations.schedules import delete_schedule, describe, schedule_item, their_schedules
from commands.plan import ItemKind, Plan


async def _their_jobs(ctx: Context, person: Person, jobs: list[Any]) -> tuple[list[Any], Person]:
    """Their top-level jobs, and the person with every UPN run history gave for them."""
    # The shown creator settles it when it is a UPN and no object id was given; else ask run history.
    unsure = [job for job in jobs if person.object_ids or "@" not in shown_creator(job)]
    creators = await asyncio.gather(*(ctx.control.call(ctx.control.run_creator, job.name) for job in unsure))
    by_history = {job.name: creator for job, creator in zip(unsure, creators, strict=True) if person.created(creator)}
    theirs = [job for job in jobs if job.name in by_history or person.made(job)]
    learned = {creator["upn"].lower() for creator in by_history.values() if creator.get("upn")}
    return theirs, replace(person, upns=person.upns | learned)


async def _plan(intent: Intent, ctx: Context) -> Plan:
    jobs = await list_jobs(ctx)
    theirs, person = await _their_jobs(ctx, person_of(intent, ctx), jobs)
    assets = await catalog(ctx)
    models = [version for version in assets[MODEL] if person.made(version)]
    chosen = [(kind, asset) for kind in (DATA, ENVIRONMENT, COMPONENT) for asset in assets[kind] if person.made(asset)]
    schedules = await their_schedules(ctx, person)
    notebooks = await notebooks_of(ctx, person, with_folders=intent.destructive)
    if not (theirs or models or chosen or schedules or notebooks.items):
        raise OperationError(" ".join([f"Nothing created by {intent.user} in workspace `{ctx.alias}`.", *notebooks.warnings]))
    stores = Stores(ctx)
    planned = await plan_assets(ctx, stores, chosen)
    model_items = [asset_item(ctx, MODEL, version) for version in models]
    kept = {
        item.key: f"a model version they registered; `/aml delete model {record_name(item)}` deletes it"
        for item in model_items
        if intent.destructive
    }
    records = (*model_items, *planned.records, *(schedule_item(ctx, s.name) for s in schedules))
    plan = await plan_runs(intent, ctx, theirs, str(intent.user), other_records=records, other_kept=kept)
    warnings = [*planned.warnings, *notebooks.warnings]
    if schedules and intent.destructive:
        named = ", ".join(describe(s) for s in schedules)
        warnings.insert(0, f"Schedules they created are disabled and deleted first, so they start no more runs: {named}.")
    if not person.upns:  # only an object id, and no run told its UPN
        warnings.append("Model versions, data, environments, components and schedules were not searched: "
                        "they name their creator by UPN, and no run gave this person's UPN.")
    plan = replace(
        plan,
        items=ordered([*plan.items, *planned.files, *notebooks.items]),
        warnings=(*plan.warnings, *warnings),
        notes={**plan.notes, "prefixes": [*plan.notes["prefixes"], *([c, p] for c, p in planned.prefixes)], "folders": notebooks.folders},
    )
    if not intent.destructive:
        return plan
    # Files their records share with someone else's (or with a record that stays) stay too.
    going = {item.key for item in plan.items if item.kind not in STORAGE} - set(plan.notes.get("retained", {}))
    shared = sharing(planned.files, await holders(ctx, stores, jobs, assets), going)
    return keep_shared(plan, shared, "Ask again once nothing else uses them.")


class _UserData:
    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        async with with_shares(ctx) as opened:
            return await _plan(intent, opened)


class DeleteUser(_UserData):
    action = "delete user"

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        async with with_shares(ctx) as opened:
            archive = archive_version(opened)
            delete = by_kind({
                ItemKind.JOB: delete_job(opened),
                ItemKind.DATA_VERSION: delete_version(opened),
                ItemKind.ENVIRONMENT_VERSION: archive,
                ItemKind.COMPONENT_VERSION: archive,
                ItemKind.SCHEDULE: delete_schedule(opened),
            })
            return await delete_planned(plan, opened, checkpoint, delete)


class ExportUser(_UserData):
    action = "export user"

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        async with with_shares(ctx) as opened:
            return await export_planned(plan, opened, checkpoint)

"""`export user <who>` / `delete user <who>`: everything a person created, and what else names them.

Who the person is comes from Microsoft Graph (`people.identify`); each record is matched on the
firmest ground it offers (run history: object id; the control plane: UPN, mail or display name), and
the plan notes the basis of every match, lists display-name-only matches apart, and says which
matches were impossible without Graph. A plan takes their runs (files and records), the data,
environment and component versions they created (files deleted; data versions deleted through the
REST API, environment and component versions archived, the most the service allows; files that
something else uses are kept and listed), the schedules they created (deleted first, so they start
no new runs) and their Studio notebooks. Model versions they registered are exported, and on
deletion listed as kept with the reason, never hidden.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from commands.intents import Action, Intent, Kind, Verb
from commands.operations.assets import (
    COMPONENT,
    DATA,
    ENVIRONMENT,
    MODEL,
    archive_version,
    asset_item,
    catalog,
    delete_version,
    keep_what_others_use,
    plan_assets,
)
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.datastores import Stores
from commands.operations.notebooks import notebooks_of, with_shares
from commands.operations.people import CERTAIN, Identity, Matches, identify, namesakes, shown_creator
from commands.operations.run_data import (
    by_kind,
    delete_job,
    delete_planned,
    export_planned,
    list_jobs,
    ordered,
    record_name,
)
from commands.operations.runs import plan_runs
from commands.operations.schedules import delete_schedule, describe, every_schedule, schedule_item
from commands.plan import ItemKind, Plan

LISTED = 20  # ambiguous matches named on the card; all are in the plan's notes


async def _their_jobs(ctx: Context, person: Identity, jobs: list[Any], matches: Matches) -> tuple[list[Any], Identity]:
    """Their top-level jobs, and the person with what run history certainly says of them."""
    # Run history names the creator by object id: ask it whenever that is known; else for the jobs
    # whose shown creator is no address (a display name or a GUID cannot settle it), and for those
    # shown as theirs (their records tell the object id).
    asked = [job for job in jobs if person.object_ids or "@" not in shown_creator(job) or person.by_shown(shown_creator(job))]
    creators = await asyncio.gather(*(ctx.control.call(ctx.control.run_creator, job.name) for job in asked))
    history = {job.name: creator for job, creator in zip(asked, creators, strict=True) if creator}
    # What records certainly theirs say (an object id, a UPN) finds the records that say only that.
    for creator in history.values():
        if person.by_history(creator) in CERTAIN:
            person = person.learned(creator)
    theirs = []
    for job in jobs:
        recorded = history.get(job.name)
        basis = person.by_history(recorded) if recorded else person.by_shown(shown_creator(job))
        if basis is not None and matches.take(basis, f"run {job.name}"):
            theirs.append(job)
    return theirs, person


def _matched(person: Identity, matches: Matches, label: str, records: list[Any]) -> list[Any]:
    """The records the control plane shows as theirs, each noted with the basis of the match."""
    chosen = []
    for record in records:
        version = f":{record.version}" if getattr(record, "version", None) else ""
        if (basis := person.by_shown(shown_creator(record))) and matches.take(basis, f"{label} {record.name}{version}"):
            chosen.append(record)
    return chosen


def _identity_warnings(person: Identity, matches: Matches) -> list[str]:
    warnings = []
    if ambiguous := sorted(matches.ambiguous):
        more = f" …and {len(ambiguous) - LISTED} more (the plan's notes list all)" if len(ambiguous) > LISTED else ""
        warnings.append(
            f"Matched by display name only, so possibly someone else of the same name — check before approving: "
            f"{', '.join(ambiguous[:LISTED])}{more}."
        )
    if matches.left_out:
        warnings.append(
            f"Left out: matched by display name only, and {matches.namesakes} people in the directory are called "
            f"{person.shown_name} — if they are theirs, delete them by name: {', '.join(sorted(matches.left_out)[:LISTED])}."
        )
    if impossible := person.impossible():
        warnings.append("Not resolved through Microsoft Graph, so some records could not be matched: " + "; ".join(impossible) + ".")
    return warnings


async def _plan(intent: Intent, ctx: Context) -> Plan:
    jobs = await list_jobs(ctx)
    person = await identify(intent, ctx)
    matches = Matches(await namesakes(ctx, person) if intent.destructive else None)
    theirs, person = await _their_jobs(ctx, person, jobs, matches)
    assets = await catalog(ctx)
    models = _matched(person, matches, MODEL.label, assets[MODEL])
    chosen = [(kind, asset) for kind in (DATA, ENVIRONMENT, COMPONENT) for asset in _matched(person, matches, kind.label, assets[kind])]
    schedules = _matched(person, matches, "schedule", await every_schedule(ctx))
    notebooks = await notebooks_of(ctx, person, with_folders=intent.destructive)
    if not (theirs or models or chosen or schedules or notebooks.items):
        why = [f"Nothing created by {intent.user} in workspace `{ctx.alias}`.", *notebooks.warnings, *_identity_warnings(person, matches)]
        raise OperationError(" ".join(why))
    stores = Stores(ctx)
    planned = await plan_assets(ctx, stores, chosen)
    model_items = [asset_item(ctx, MODEL, version) for version in models]
    kept = {
        item.key: f"a model version they registered; `/aml delete model {record_name(item)}` deletes it"
        for item in model_items
        if intent.destructive
    }
    records = (*model_items, *planned.records, *(schedule_item(ctx, s.name) for s in schedules))
    plan = await plan_runs(intent, ctx, stores, theirs, str(intent.user), other_records=records, other_kept=kept)
    warnings = [*_identity_warnings(person, matches), *planned.warnings, *notebooks.warnings]
    if schedules and intent.destructive:
        named = ", ".join(describe(s) for s in schedules)
        warnings.insert(0, f"Schedules they created are disabled and deleted first, so they start no more runs: {named}.")
    plan = replace(
        plan,
        items=ordered([*plan.items, *planned.files, *notebooks.items]),
        warnings=(*plan.warnings, *warnings),
        notes={
            **plan.notes,
            "prefixes": [*plan.notes["prefixes"], *([c, p] for c, p in planned.prefixes)],
            "folders": notebooks.folders,
            "identity": {**person.describe(), "matches": matches.notes(), "impossible": person.impossible()},
        },
    )
    if not intent.destructive:
        return plan
    # Files their records share with someone else's (or with a record that stays) stay too.
    return await keep_what_others_use(ctx, plan, stores, jobs, assets)


class _UserData:
    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        async with with_shares(ctx) as opened:
            return await _plan(intent, opened)


class DeleteUser(_UserData):
    action = Action(Verb.DELETE, Kind.USER)

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
    action = Action(Verb.EXPORT, Kind.USER)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        async with with_shares(ctx) as opened:
            return await export_planned(plan, opened, checkpoint)

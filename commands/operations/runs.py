"""Runs planned whole: each job's run tree in run history and every place its runs write.

A job's runs are the job's own and every run under it, at any depth (pipeline steps, the steps of
pipelines inside pipelines, sweep trials, AutoML children, nested MLflow runs). Each keeps its
history, logs and artifacts under `ExperimentRun/dcid.<run>/` in the artifact store and its default
outputs under `azureml/<run>/` and `dataset/<run>/` on the default datastore; outputs a job names
explicitly (`outputs[*].uri`) may be on any datastore of the workspace.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from commands.intents import Action, Intent, Kind, Verb
from commands.operations.assets import catalog, keep_what_others_use
from commands.operations.base import Checkpoint, Context, Execution
from commands.operations.datastores import URI, Stores, files_at
from commands.operations.run_data import (
    Prefix,
    blob_items,
    delete_job,
    delete_planned,
    export_planned,
    job_or_none,
    keep,
    list_jobs,
    ordered,
    plan_blobs,
    run_prefixes_of,
    unfinished,
)
from commands.plan import ItemKind, Plan, PlanItem

TREE_READS = 8  # run-history reads at once while walking a run tree


async def run_tree(ctx: Context, roots: list[str]) -> list[str]:
    """The runs and every run under them, at any depth. Run history is read a level at a time, a
    few runs at once."""
    reads = asyncio.Semaphore(TREE_READS)

    async def children(run: str) -> list[str]:
        async with reads:
            return [child["runId"] for child in await ctx.control.call(ctx.control.run_children, run)]

    found = dict.fromkeys(roots)  # ordered, and a set for the look-ups
    level = list(found)
    while level:
        below = await asyncio.gather(*(children(run) for run in level))
        fresh = dict.fromkeys(run for runs in below for run in runs if run not in found)
        found |= fresh
        level = list(fresh)
    return list(found)


def output_uris(job: Any) -> list[str]:
    """The datastore paths a job's outputs name (`azureml://datastores/<store>/paths/<path>`), with
    the `${{name}}` and `${{output_name}}` placeholders the service fills in resolved."""
    uris = []
    for name, output in (getattr(job, "outputs", None) or {}).items():
        path = getattr(output, "path", None)
        if isinstance(path, str) and URI.fullmatch(path):
            uris.append(path.replace("${{name}}", job.name).replace("${{output_name}}", name))
    return uris


async def output_files(ctx: Context, stores: Stores, jobs: list[Any]) -> tuple[list[PlanItem], list[Prefix], list[str]]:
    """The files of the jobs' explicit outputs, wherever in the workspace's storage they are; a
    warning for each output amlbot cannot reach."""
    files: list[PlanItem] = []
    prefixes: list[Prefix] = []
    warnings: list[str] = []
    for job in jobs:
        for uri in output_uris(job):
            container, path = await stores.locate(uri)
            if container is None:
                warnings.append(f"An output of run {job.name} is left alone: {path}.")
                continue
            found, prefix = await files_at(ctx, container, path)
            files += found
            prefixes += [prefix] if prefix else []
    return files, prefixes, warnings


async def plan_runs(
    intent: Intent,
    ctx: Context,
    stores: Stores,
    jobs: list[Any],
    target: str,
    *,
    other_records: tuple[PlanItem, ...] = (),
    other_kept: dict[str, str] | None = None,
) -> Plan:
    """Each job's record, its runs' files and explicit outputs, and (exports) each run's run-history
    record; plus other records (and why some of those are kept).

    A deletion keeps unfinished jobs: they are still writing."""
    records, reasons = list(other_records), dict(other_kept or {})
    taken: list[Any] = []
    for job in jobs:
        record = PlanItem(ItemKind.JOB, ctx.control.child_id("jobs", job.name))
        records.append(record)
        if intent.destructive and (why := unfinished(job)):
            reasons[record.key] = f"{why}; its files are kept too"
            continue
        taken.append(job)
    runs = await run_tree(ctx, [job.name for job in taken])
    if not intent.destructive:  # who created each run, as run history has it (a job deletion takes them along)
        records += [PlanItem(ItemKind.RUN_RECORD, run) for run in runs]
    prefixes = await run_prefixes_of(ctx, runs)
    outputs, output_prefixes, warnings = await output_files(ctx, stores, taken)
    plan = Plan(
        action=intent.action,
        workspace=ctx.alias,
        target=target,
        items=ordered([*records, *await blob_items(ctx, prefixes), *outputs]),
        warnings=tuple(warnings),
        notes={"prefixes": [[c, p] for c, p in [*prefixes, *output_prefixes]]},
    )
    return keep(plan, reasons)


async def keep_used(intent: Intent, ctx: Context, stores: Stores, plan: Plan, every: list[Any] | None = None) -> Plan:
    """A deletion keeps the files a model, data asset, environment, component or job staying in the
    workspace uses, each listed with who uses it. `every` is every job of the workspace, if known."""
    if not intent.destructive:
        return plan
    every = await list_jobs(ctx) if every is None else every
    return await keep_what_others_use(ctx, plan, stores, every, await catalog(ctx))


async def plan_run(intent: Intent, ctx: Context, job: Any | None) -> Plan:
    """One run as experiment operations plan each of theirs (`job` is its job, None if the control
    plane has none). A run with no job (a v1 run known only to run history, or a job deleted whose
    files remain) has only its own prefixes planned, and the plan says so."""
    assert intent.target
    stores = Stores(ctx)
    if job is not None:
        plan = await plan_runs(intent, ctx, stores, [job], intent.target)
    else:
        plan = await plan_blobs(intent, ctx, await run_prefixes_of(ctx, [intent.target]))
        note = (
            f"Run `{intent.target}` has no job on the control plane (a v1 run, or a job deleted whose files "
            "remain): only its own files are planned, not runs under it or outputs elsewhere."
        )
        plan = replace(plan, warnings=(*plan.warnings, note))
    return await keep_used(intent, ctx, stores, plan)


class _OneRun:
    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        assert intent.target
        return await plan_run(intent, ctx, await job_or_none(ctx, intent.target))


class DeleteRun(_OneRun):
    action = Action(Verb.DELETE, Kind.RUN)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        """The job is asked again first: one running again since the approval (resumed, or queued
        then) keeps its record and every file, each listed in the receipt with the reason."""
        if why := unfinished(await job_or_none(ctx, plan.target)):
            reason = f"since the approval its job is {why}"
            plan = keep(plan, dict.fromkeys((item.key for item in plan.items), reason), warning=reason)
        return await delete_planned(plan, ctx, checkpoint, delete_job(ctx))


class ExportRun(_OneRun):
    action = Action(Verb.EXPORT, Kind.RUN)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await export_planned(plan, ctx, checkpoint)

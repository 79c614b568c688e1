"""Runs planned whole: each job's run tree in run history and every place its runs write.

A job's runs are the job's own and every run under it, at any depth (pipeline steps, the steps of
pipelines inside pipelines, sweep trials, AutoML children, nested MLflow runs). Each keeps its
history, logs and artifacts under `ExperimentRun/dcid.<run>/` in the artifact store and its default
outputs under `azureml/<run>/` and `dataset/<run>/` on the default datastore; outputs a job names
explicitly (`outputs[*].uri`) may be on any datastore of the workspace.
"""

from __future__ import annotations

import asyncio
from typing import Any

from commands.intents import Intent
from commands.operations.base import Context
from commands.operations.datastores import URI, Stores, files_at
from commands.operations.run_data import (
    FINISHED,
    Prefix,
    blob_items,
    job_status,
    keep,
    ordered,
    run_prefixes_of,
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

    found, level = list(dict.fromkeys(roots)), list(dict.fromkeys(roots))
    while level:
        below = await asyncio.gather(*(children(run) for run in level))
        level = [run for runs in below for run in runs if run not in found]
        found += level
    return found


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
        if intent.destructive and job_status(job) not in FINISHED:
            reasons[record.key] = f"still {job_status(job)}: cancel it or let it finish, then ask again; its files are kept too"
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

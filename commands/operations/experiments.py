"""`export experiment <name>` / `delete experiment <name>`: every run of it — files and records."""

from __future__ import annotations

from commands.intents import Action, Intent, Kind, Verb
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.datastores import Stores
from commands.operations.run_data import delete_job, delete_planned, export_planned, list_jobs
from commands.operations.runs import keep_used, plan_runs
from commands.plan import Plan


class _ExperimentRuns:
    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        # The jobs API has no experiment filter: the SDK lists every job and we pick.
        every = await list_jobs(ctx)
        jobs = [job for job in every if job.experiment_name == intent.target]
        if not jobs:
            raise OperationError(f"No runs of experiment `{intent.target}` in workspace `{ctx.alias}`.")
        stores = Stores(ctx)
        plan = await plan_runs(intent, ctx, stores, jobs, intent.target or "")
        # A model or data asset registered from a run's outputs keeps those files.
        return await keep_used(intent, ctx, stores, plan, every)


class DeleteExperiment(_ExperimentRuns):
    action = Action(Verb.DELETE, Kind.EXPERIMENT)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await delete_planned(plan, ctx, checkpoint, delete_job(ctx))


class ExportExperiment(_ExperimentRuns):
    action = Action(Verb.EXPORT, Kind.EXPERIMENT)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        return await export_planned(plan, ctx, checkpoint)

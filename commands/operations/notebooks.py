"""`export notebooks <who>` / `delete notebooks <who>`: a person's Studio notebooks and files.

Studio keeps them in the Azure Files share of the `workspaceworkingdirectory` datastore, one
`Users/<alias>/` folder per person. A deletion removes the files, then the emptied folders.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from commands.azure.files import WorkspaceFiles
from commands.azure.sdk import AzureError
from commands.intents import Action, Intent, Kind, Verb
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.datastores import Stores
from commands.operations.people import Identity, identify
from commands.operations.run_data import (
    delete_planned,
    export_planned,
    ordered,
    shares,
    stored_item,
)
from commands.plan import ItemKind, Plan, PlanItem

NOTEBOOKS_STORE = "workspaceworkingdirectory"


@asynccontextmanager
async def with_shares(ctx: Context) -> AsyncIterator[Context]:
    """The context with the workspace's file shares open, for one preview or one execution."""
    files = WorkspaceFiles(ctx.config)
    try:
        yield replace(ctx, files=files)
    finally:
        await files.close()


@dataclass
class Notebooks:
    """A person's notebook files (and, for a deletion, their folders), where they were looked for,
    and why some could not be."""

    items: list[PlanItem] = field(default_factory=list)
    folders: list[list[str]] = field(default_factory=list)  # [share, folder], for late arrivals
    warnings: list[str] = field(default_factory=list)


async def notebooks_of(ctx: Context, person: Identity, *, with_folders: bool) -> Notebooks:
    found = Notebooks()
    share, why = await Stores(ctx).share(NOTEBOOKS_STORE)
    if share is None:
        found.warnings.append(f"Notebooks were not searched: {why}.")
        return found
    for alias in sorted(person.aliases):
        folder = f"Users/{alias}"
        try:
            files, directories = await shares(ctx).walk(share, folder)
        except (AzureError, ValueError) as error:
            found.warnings.append(f"Notebooks were not searched: {str(error).splitlines()[0]}.")
            return found
        found.items += [stored_item(ItemKind.FILE, file) for file in files]
        if with_folders:
            found.items += [PlanItem(ItemKind.DIRECTORY, directory, container=share) for directory in directories]
        if directories:
            found.folders.append([share, folder])
            if with_folders:  # folders are named by alias, and two UPNs can share one
                found.warnings.append(f"`{folder}/` is the folder of every account whose UPN starts `{alias}@`.")
    if not person.aliases - person.object_ids:
        found.warnings.append("Studio names a person's folder after their UPN, which is not known here: "
                              f"name them by email to reach it ({person.unresolved}).")
    return found


class _PersonNotebooks:
    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        async with with_shares(ctx) as opened:
            person = await identify(intent, opened)
            found = await notebooks_of(opened, person, with_folders=intent.destructive)
        if not found.items:
            looked = ", ".join(f"`Users/{alias}/`" for alias in sorted(person.aliases))
            reasons = " ".join(found.warnings)
            raise OperationError(f"No notebooks of {intent.user} in workspace `{ctx.alias}` (looked in {looked}). {reasons}".strip())
        return Plan(
            action=intent.action,
            workspace=ctx.alias,
            target=str(intent.user),
            items=ordered(found.items),
            warnings=tuple(found.warnings),
            notes={"folders": found.folders},
        )


class DeleteNotebooks(_PersonNotebooks):
    action = Action(Verb.DELETE, Kind.NOTEBOOKS)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        async with with_shares(ctx) as opened:
            return await delete_planned(plan, opened, checkpoint)


class ExportNotebooks(_PersonNotebooks):
    action = Action(Verb.EXPORT, Kind.NOTEBOOKS)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        async with with_shares(ctx) as opened:
            return await export_planned(plan, opened, checkpoint)

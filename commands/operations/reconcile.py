"""Before a deletion's receipt is written, storage is listed again and each file's outcome is
checked against what is there, so the receipt says what is true rather than what was recorded.

A delete whose outcome was never recorded (the job stopped, the database failed) shows up as gone;
a "deleted" file still there with its planned ETag is a failure; files under the plan's prefixes
and folders that it never named are listed as appeared and left alone. If storage cannot be listed,
the outcomes stay as the service answered each delete, and the receipt says it could not confirm.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import replace

from commands.azure.door import ItemResult, Status
from commands.azure.sdk import AzureError
from commands.operations.base import Context, Execution
from commands.operations.notebooks import with_shares
from commands.operations.run_data import CONTENT, shares
from commands.plan import ItemKind, Plan, PlanItem

log = logging.getLogger(__name__)

Place = tuple[str, str]  # (container or share, name)
GONE = frozenset({Status.DELETED, Status.SOFT_DELETED, Status.ALREADY_ABSENT})  # a soft-deleted blob is not listed


async def reconcile(plan: Plan, ctx: Context, execution: Execution) -> Execution:
    """The execution with its storage outcomes checked against a fresh listing, and in its extras
    `appeared` (names the plan never had) and, when storage could not be listed, `unverified`."""
    if not any(item.kind in CONTENT for item in plan.items):
        return execution
    try:
        async with AsyncExitStack() as stack:
            if ctx.files is None and any(item.kind is ItemKind.FILE for item in plan.items):
                ctx = await stack.enter_async_context(with_shares(ctx))
            present, listed = await _listing(plan, ctx)
    except (AzureError, ValueError):
        log.warning("storage could not be listed again before the receipt", exc_info=True)
        note = "Storage could not be listed again to confirm these outcomes: they are as the service answered each delete."
        return replace(execution, extras={**execution.extras, "appeared": [], "unverified": note})
    results = dict(execution.results)
    planned = {(item.container or "", item.ref) for item in plan.items}
    appeared = {place for place in listed if place not in planned}
    for item in plan.items:
        if item.kind not in CONTENT:
            continue
        place = (item.container or "", item.ref)
        recorded = results.get(item.key)
        checked = _checked(item, recorded, place in present, present.get(place))
        if checked is not None:
            results[item.key] = checked
        elif place in present and recorded is not None and recorded.status in GONE:
            appeared.add(place)  # written again after its deletion: a new file, left alone
    return replace(execution, results=results, extras={**execution.extras, "appeared": sorted(f"{c}/{n}" for c, n in appeared)})


def _checked(item: PlanItem, result: ItemResult | None, there: bool, etag: str | None) -> ItemResult | None:
    """The outcome storage shows, where it differs from the recorded one; None where it agrees."""
    if result is not None and result.status in (Status.RETAINED, Status.CHANGED):
        return None  # kept on purpose: whatever happened to it since is not the job's doing
    if not there:
        if result is None or result.status not in GONE:
            said = "its delete was not recorded" if result is None else f"its delete had answered: {result.reason or result.status.value}"
            return ItemResult(Status.ALREADY_ABSENT, f"gone when storage was listed again ({said})", result.azure_request_id if result else None)
        return None
    if result is not None and result.status in GONE and (item.etag is None or etag == item.etag):
        return ItemResult(Status.FAILED, "still in storage when listed again after its delete", result.azure_request_id)
    return None


async def _listing(plan: Plan, ctx: Context) -> tuple[dict[Place, str | None], list[Place]]:
    """Every file now at the plan's places, with its ETag; and which of them lie under the plan's
    prefixes and folders (where newcomers count as appeared)."""
    present: dict[Place, str | None] = {}
    prefixes = [(c, p) for c, p in plan.notes.get("prefixes", [])]
    folders = [(s, f.rstrip("/") + "/") for s, f in plan.notes.get("folders", [])]
    for container, prefix in prefixes:
        present |= {(container, b.name): b.etag for b in await ctx.door.list_blobs(container, prefix)}
    for share, folder in folders:
        files, _ = await shares(ctx).walk(share, folder)
        present |= {(share, f.name): f.etag for f in files}
    listed = list(present)
    # Planned files outside those places (cleanups, asset paths): their own folder is listed.
    places = prefixes + folders
    elsewhere = {
        (item.kind, item.container or "", item.ref[: item.ref.rfind("/") + 1])
        for item in plan.items
        if item.kind in CONTENT and not any(item.container == c and item.ref.startswith(p) for c, p in places)
    }
    for kind, container, folder in sorted(elsewhere):
        if kind is ItemKind.BLOB:
            present |= {(container, b.name): b.etag for b in await ctx.door.list_blobs(container, folder)}
        else:
            files, _ = await shares(ctx).walk(container, folder)
            present |= {(container, f.name): f.etag for f in files}
    return present, listed

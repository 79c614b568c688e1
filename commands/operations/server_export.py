"""Server-side exports: the storage service copies the planned blobs, amlbot reads none of their bytes.

An export whose planned files exceed the configured threshold is planned to run this way (the plan
says so, so the card shows it and the job follows it). Each planned blob is copied with Copy Blob
into a container of the export's own, pinned to the ETag it had when planned (the source's
If-Match): a blob rewritten since is reported as changed and never exported in its newer version.
The records and a manifest are written beside the copies, and the link is a read-and-list SAS on
that container alone.

Why a container per export: a blob SAS reaches one blob and a container SAS the whole container;
Azure has no SAS for a prefix of a flat-namespace container (the directory SAS needs a
hierarchical namespace). A container holding exactly one export is the one scope that a read-only,
expiring SAS can give whole (`azcopy copy --recursive` lists and reads it) and alone. Deleting the
container deletes the export and kills every link to it at once: that is how `/aml revoke` and
`cleanup exports` end it, as they delete a zip export's archive.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from commands.azure.door import ItemResult, Status
from commands.intents import Action, Intent, Verb
from commands.operations.base import Checkpoint, Context, Execution, Operation
from commands.operations.run_data import STEP, STORAGE, member_name, record_documents, record_path
from commands.plan import SERVER_SIDE, ItemKind, Plan, PlanItem

COPIES_AT_ONCE = 16  # Copy Blob requests in flight: each is one small request, the service moves the bytes
SHARE_FILES_STAY = (
    "The planned files are over the server-side export threshold, but some are in a file share, which "
    "the storage copy does not take here: the export runs as one zip archive through amlbot."
)
UNVERIFIED = (
    "amlbot read none of the copied bytes. Each copy was made only while its source still had the ETag "
    "listed here (the service refuses the copy otherwise), and its size is the planned one; a hash is "
    "listed where the storage service keeps one (Content-MD5, base64)."
)
MANIFEST = "manifest.json"


ID_PART = len("-r-abcd2345")  # "-" and a request id (R- and 8 characters), lower-cased


def _base(exports_container: str) -> str:
    return exports_container[: 63 - ID_PART].rstrip("-")  # a container name has at most 63 characters


def export_container(exports_container: str, request_id: str) -> str:
    """The container of one server-side export: the exports container's name and the request's id
    (`amlbot-exports-r-abcd2345`)."""
    return f"{_base(exports_container)}-{request_id.lower()}"


def export_containers(exports_container: str) -> tuple[str, re.Pattern[str]]:
    """The prefix of the names `export_container` makes for the workspace, and the pattern that
    matches them and no other container's name."""
    prefix = f"{_base(exports_container)}-r-"
    return prefix, re.compile(re.escape(prefix) + r"[a-z0-9]{8}")


def with_export_way(plan: Plan, threshold: int) -> Plan:
    """An export's plan, marked to run server-side when its files exceed `threshold` bytes (0: never)."""
    if plan.action.verb is not Verb.EXPORT or threshold <= 0 or plan.total_bytes <= threshold:
        return plan
    if any(item.kind is ItemKind.FILE for item in plan.items):
        return replace(plan, warnings=(*plan.warnings, SHARE_FILES_STAY))
    return replace(plan, notes={**plan.notes, "export": SERVER_SIDE})


def azcopy_command(link: str, folder: str) -> str:
    return f"azcopy copy '{link}' '{folder}' --recursive"


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class _Copies:
    """The copies of one export, a few at once, with what the manifest says of each."""

    def __init__(self, ctx: Context, container: str) -> None:
        self.ctx = ctx
        self.container = container
        self.results: dict[str, ItemResult] = {}
        self.files: list[dict[str, Any]] = []
        self.copied_bytes = 0
        self._gate = asyncio.Semaphore(COPIES_AT_ONCE)

    async def copy(self, item: PlanItem) -> None:
        source = f"{item.container}/{item.ref}"
        path = member_name(source)
        async with self._gate:
            copied = await self.ctx.door.copy_blob((item.container or "", item.ref), item.etag, self.container, path)
        result = copied.result
        if result.status is Status.EXPORTED and copied.size != item.size:
            # Pinned to its ETag the copy is the planned blob; without an ETag it might not be.
            result = ItemResult(Status.FAILED, f"copied {copied.size} bytes where {item.size} were planned", result.azure_request_id)
        self.results[item.key] = result
        if result.status is Status.EXPORTED:
            self.copied_bytes += copied.size or 0
            self.files.append({"source": source, "etag": item.etag, "size": copied.size, "path": path,
                               "content_md5": copied.content_md5})

    async def write(self, path: str, data: bytes) -> None:
        await self.ctx.door.write_blob(self.container, path, _once(data))


async def export_server_side(plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
    """Copy the plan's blobs into the export's container, write its records and manifest there, and
    hand back a read-and-list link to it. A cancellation between steps deletes the container: no
    export, no link. A resumed job copies again from the start (each copy overwrites its own)."""
    assert ctx.request_id is not None, "an export runs for a stored request"
    container = export_container(ctx.config.exports_container, ctx.request_id)
    await ctx.door.ensure_container(container)
    copies = _Copies(ctx, container)
    blobs = [item for item in plan.items if item.kind is ItemKind.BLOB]  # the way is never server-side with share files
    for start in range(0, len(blobs) + STEP, STEP):  # and once more after the last copies, before any link
        if await checkpoint.cancelled():
            await ctx.door.delete_container(container)
            return Execution({}, stopped_early=True)
        if start < len(blobs):
            await asyncio.gather(*(copies.copy(item) for item in blobs[start : start + STEP]))
            await checkpoint.progress(len(copies.results), len(plan.items), copies.copied_bytes, plan.total_bytes)
    records = []
    documents = await record_documents(plan, ctx)
    for item in plan.items:
        if item.kind in STORAGE:
            continue
        document = documents.get(item.key)
        if document is None:  # gone from the control plane since the plan
            copies.results[item.key] = ItemResult(Status.ALREADY_ABSENT)
            continue
        path = member_name(record_path(item))
        await copies.write(path, document)
        copies.results[item.key] = ItemResult(Status.EXPORTED)
        records.append({"source": item.ref, "path": path, "size": len(document), "sha256": hashlib.sha256(document).hexdigest()})
    not_exported = [
        {"source": f"{item.container}/{item.ref}", "etag": item.etag, "status": result.status.value, "reason": result.reason}
        for item in blobs if (result := copies.results[item.key]).status is not Status.EXPORTED
    ]
    manifest = {
        "request_id": ctx.request_id, "plan_hash": plan.hash, "way": SERVER_SIDE,
        "files": copies.files, "records": records, "not_exported": not_exported, "unverified": UNVERIFIED,
    }
    await copies.write(MANIFEST, json.dumps(manifest, indent=2).encode())
    link = await ctx.door.container_link(container, ctx.link_expiry)
    where, _, signature = link.partition("?")
    await checkpoint.record(copies.results)
    counted = [copies.results[item.key].status for item in blobs]
    return Execution(
        copies.results,
        extras={
            "way": SERVER_SIDE, "link": link, "manifest": f"{where}/{MANIFEST}?{signature}",
            "archive": container, "size": copies.copied_bytes,
            "expires_at": (datetime.now(UTC) + ctx.link_expiry).isoformat(timespec="seconds"),
            "azcopy": azcopy_command(link, ctx.request_id),
            "copied": counted.count(Status.EXPORTED), "changed": counted.count(Status.CHANGED),
            "missing": counted.count(Status.ALREADY_ABSENT),
            "failed": len(counted) - sum(counted.count(s) for s in (Status.EXPORTED, Status.CHANGED, Status.ALREADY_ABSENT)),
        },
    )


@dataclass(frozen=True)
class ExportWay:
    """An export that its preview plans to run server-side when it is big enough, and that then
    runs the way its approved plan says: the card and the job read the same note."""

    inner: Operation

    @property
    def action(self) -> Action:
        return self.inner.action

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        return with_export_way(await self.inner.preview(intent, ctx), ctx.server_export_over)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        if plan.server_side:
            return await export_server_side(plan, ctx, checkpoint)
        return await self.inner.execute(plan, ctx, checkpoint)

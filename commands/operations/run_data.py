"""Runs' data: their blobs in storage and their records on the control plane, planned then followed.

Every data operation (run, experiment, model, data, notebooks, user) plans the exact blobs and share
files under known prefixes and folders, plus the control-plane records (jobs, asset versions,
schedules) that go with them. Deletion removes the files (blobs in batches or one request each,
whichever this job finds faster), then emptied folders, then the records one by one; an export
streams files and records into one zip archive with a manifest of SHA-256 sums. Items the plan
marks as retained are reported with their reason, never touched.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from stream_zip import ZIP_64

from commands.azure.control import outcome_of_delete
from commands.azure.door import (
    UNADDRESSABLE,
    BlobInfo,
    Gone,
    ItemResult,
    ShareDoor,
    Status,
    Unaddressable,
)
from commands.azure.sdk import every_view
from commands.intents import Intent
from commands.operations.archive_members import PipelinedSha256, method_for
from commands.operations.base import Checkpoint, Context, Execution, OperationError
from commands.operations.delete_pace import Pace
from commands.operations.zip_stream import Member, zip_stream
from commands.plan import ItemKind, Plan, PlanItem

STEP = 1024  # items between checkpoints: a crash repeats at most this much (idempotently)
ML_API_VERSION = "2024-04-01"  # GA api-version of the REST documents read by id (jobs, asset versions, schedules)
# Job states after which nothing writes to a run any more (azure-ai-ml RunHistoryConstants).
FINISHED = frozenset({"completed", "failed", "canceled", "notresponding", "paused"})
KEPT_LISTED = 5  # retained items spelled out in the plan's warning; the receipt has them all

Prefix = tuple[str, str]  # (container, blob-name prefix)
RecordDelete = Callable[[PlanItem], ItemResult]  # blocking: runs in a worker thread
CONTENT = frozenset({ItemKind.BLOB, ItemKind.FILE})  # items whose bytes are in storage
STORAGE = CONTENT | {ItemKind.DIRECTORY}
# Records named `<name>:<version>`, and the file each one's document is exported as.
VERSIONED = frozenset({ItemKind.MODEL_VERSION, ItemKind.DATA_VERSION, ItemKind.ENVIRONMENT_VERSION, ItemKind.COMPONENT_VERSION})
# Export tuning. Deflate at level 1: several times level 9's speed (stream-zip's default), and run
# data (checkpoints, parquet, images) is mostly compressed already, so the archive barely grows.
ZIP_LEVEL = 1
ZIP_CHUNK = 1024 * 1024  # archive pieces handed from stream-zip's thread to the upload
PREFETCH = 16  # small members read ahead, concurrently, in plan order
PREFETCH_MAX = 4 * 1024 * 1024  # only members this small are read ahead, and at most this much of one is held
PREFETCH_BYTES = 16 * 1024 * 1024  # bytes read ahead at once (planned sizes), across members
BATCH = 256  # members read ahead and handed to the zip writer at once, at most
RECORD_FILE = {
    ItemKind.JOB: "run",
    ItemKind.RUN_RECORD: "run-history",
    ItemKind.MODEL_VERSION: "model",
    ItemKind.DATA_VERSION: "data",
    ItemKind.ENVIRONMENT_VERSION: "environment",
    ItemKind.COMPONENT_VERSION: "component",
    ItemKind.SCHEDULE: "schedule",
}


def by_kind(deletes: dict[ItemKind, RecordDelete]) -> RecordDelete:
    """One record delete for plans that hold records of several kinds."""
    return lambda item: deletes[item.kind](item)


async def blobstore_container(ctx: Context) -> str | None:
    """The default datastore's container: from the config, else the workspace's datastore marked
    `isDefault` (usually `workspaceblobstore`, but a workspace may make another one the default)."""
    if ctx.config.blobstore_container:
        return ctx.config.blobstore_container

    def default() -> Any:
        try:  # the SDK asks for `…/datastores?isDefault=true` and takes the first
            return ctx.control.ml().datastores.get_default()
        except StopIteration:  # no datastore is the default
            return None

    return getattr(await ctx.control.call(default), "container_name", None)


async def run_prefixes_of(ctx: Context, runs: list[str]) -> list[Prefix]:
    """Where runs keep their data: run history and logs in the artifact store under
    `ExperimentRun/dcid.<run>/`, and outputs on the default datastore under `azureml/<run>/`
    (v2 named outputs) and `dataset/<run>/` (v1 pipeline outputs)."""
    blobstore = await blobstore_container(ctx) if runs else None
    prefixes: list[Prefix] = []
    for run in runs:
        prefixes.append((ctx.config.artifact_container, f"ExperimentRun/dcid.{run}/"))
        if blobstore:
            prefixes += [(blobstore, f"azureml/{run}/"), (blobstore, f"dataset/{run}/")]
    return prefixes


def stored_item(kind: ItemKind, found: BlobInfo) -> PlanItem:
    """A blob or share file as planned: with its ETag, so that only these bytes are deleted."""
    return PlanItem(kind, found.name, found.size, found.container, found.etag)


async def blob_items(ctx: Context, prefixes: list[Prefix]) -> list[PlanItem]:
    listings = await asyncio.gather(*(ctx.door.list_blobs(container, prefix) for container, prefix in prefixes))
    return [stored_item(ItemKind.BLOB, blob) for listing in listings for blob in listing]


def ordered(items: Iterable[PlanItem]) -> tuple[PlanItem, ...]:
    """Each item once (overlapping prefixes list a blob twice), in a stable order."""
    unique = {item.key: item for item in items}
    return tuple(sorted(unique.values(), key=lambda item: (item.kind.value, item.container or "", item.ref)))


async def plan_blobs(intent: Intent, ctx: Context, prefixes: list[Prefix]) -> Plan:
    items = await blob_items(ctx, prefixes)
    if not items:
        where = ", ".join(f"`{c}/{p}`" for c, p in prefixes)
        raise OperationError(f"Nothing found for {intent.kind.value} `{intent.target}` in workspace `{ctx.alias}` (looked under {where}).")
    return Plan(
        action=intent.action,
        workspace=ctx.alias,
        target=intent.target or "",
        items=ordered(items),
        notes={"prefixes": [[c, p] for c, p in prefixes]},
    )


def record_name(item: PlanItem) -> str:
    """A record as people name it: `<run>` for a job, `<name>:<version>` for an asset version."""
    parts = item.ref.rstrip("/").split("/")
    return f"{parts[-3]}:{parts[-1]}" if item.kind in VERSIONED else parts[-1]


def keep(plan: Plan, reasons: dict[str, str], warning: str | None = None) -> Plan:
    """Mark items as retained: listed in the plan and the receipt with the reason, never touched.
    `warning` summarises them on the card instead of the first few items one by one."""
    if not reasons:
        return plan
    if warning is None:
        names = {item.key: record_name(item) for item in plan.items}
        listed = "; ".join(f"{names[key]} ({reason})" for key, reason in list(reasons.items())[:KEPT_LISTED])
        more = f" …and {len(reasons) - KEPT_LISTED} more" if len(reasons) > KEPT_LISTED else ""
        warning = f"{len(reasons)} item(s) will be kept, not deleted: {listed}{more}"
    retained = {**plan.notes.get("retained", {}), **reasons}
    return replace(plan, warnings=(*plan.warnings, warning), notes={**plan.notes, "retained": retained})


# ---- runs (jobs) ---------------------------------------------------------------------------


def job_status(job: Any) -> str:
    # The SDK's status is a str enum whose str() is `JobStatus.RUNNING`: use its value.
    return str(getattr(job.status, "value", job.status) or "").lower()


def unfinished(job: Any | None) -> str | None:
    """Why a job's files must not be deleted now: it has not finished, so it may still write them.
    None for a finished job, and for a run with no job (a v1 run, or a job deleted whose files stay)."""
    if job is None:
        return None
    status = job_status(job)
    return None if status in FINISHED else f"still {status or 'in an unknown state'}: cancel it or let it finish, then ask again"


async def job_or_none(ctx: Context, name: str) -> Any | None:
    """The job named `name` (a pipeline step too: the SDK reads those from run history), None when
    the control plane has no job of that name."""
    if not name.strip("."):  # no job is named so, and `.`/`..` in its URL would climb out of `jobs/`
        return None
    return await ctx.control.call_or_none((await ctx.control.client()).jobs.get, name)


async def list_jobs(ctx: Context) -> list[Any]:
    """Every top-level job of the workspace, archived ones too (their data is still there)."""

    def every_job() -> list[Any]:
        # The SDK yields None for a job it cannot parse; such a job cannot be planned by name.
        return [job for job in ctx.control.ml().jobs.list(list_view_type=every_view()) if job]

    return await ctx.control.call(every_job)


def delete_job(ctx: Context) -> RecordDelete:
    def delete(item: PlanItem) -> ItemResult:
        assert item.kind is ItemKind.JOB, item
        return outcome_of_delete(lambda: ctx.control.ml().jobs.begin_delete(record_name(item)))

    return delete


# ---- deletion ------------------------------------------------------------------------------


def shares(ctx: Context) -> ShareDoor:
    assert ctx.files is not None, "the operation must open the file shares for a plan with share files"
    return ctx.files


def _done_bytes(plan: Plan, results: dict[str, ItemResult]) -> int:
    return sum(item.size or 0 for item in plan.items if item.key in results)


async def _delete_blobs(ctx: Context, pace: Pace, container: str, etags: dict[str, str | None]) -> dict[str, ItemResult]:
    """Blobs of one container, part by part, each part the way `pace` says and timed for it."""
    names, outcome = list(etags), dict[str, ItemResult]()
    while len(outcome) < len(names):
        method, count = pace.next_part(len(names) - len(outcome))
        part = {name: etags[name] for name in names[len(outcome) : len(outcome) + count]}
        outcome |= await pace.timed(method, count, ctx.door.delete_blobs(container, part, method))
    return outcome


async def delete_planned_blobs(plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
    """Delete exactly the plan's blobs and share files, but not those it keeps, checkpointing
    after each step: blobs in batches or one request each, whichever this job finds faster."""
    pace = Pace()
    results = dict(checkpoint.done)
    kept = plan.notes.get("retained", {})
    todo = [item for item in plan.items if item.kind in CONTENT and item.key not in results and item.key not in kept]
    for start in range(0, len(todo), STEP):
        if await checkpoint.cancelled():
            return Execution(results, stopped_early=True)
        step = todo[start : start + STEP]
        by_place: dict[tuple[ItemKind, str], list[PlanItem]] = {}
        for item in step:
            by_place.setdefault((item.kind, item.container or ""), []).append(item)
        outcome: dict[str, ItemResult] = {}
        for (kind, container), items in by_place.items():
            etags = {item.ref: item.etag for item in items}
            if kind is ItemKind.BLOB:
                deleted = await _delete_blobs(ctx, pace, container, etags)
            else:
                deleted = await shares(ctx).delete_files(container, etags)
            outcome.update({item.key: deleted[item.ref] for item in items})
        await checkpoint.record(outcome)
        results.update(outcome)
        await checkpoint.progress(len(results), len(plan.items), _done_bytes(plan, results), plan.total_bytes)
    return Execution(results)


async def delete_planned(
    plan: Plan, ctx: Context, checkpoint: Checkpoint, delete_record: RecordDelete | None = None
) -> Execution:
    """Schedules first (left in place, they would start new runs meanwhile); then the plan's files,
    their emptied folders deepest first, and its records one by one (a record left behind still
    names the data, so it can be asked for again). Retained items are recorded with their reason."""
    schedules = [item for item in plan.items if item.kind is ItemKind.SCHEDULE]
    first = await _delete_each(plan, ctx, checkpoint, delete_record, schedules, dict(checkpoint.done))
    if first.stopped_early:
        return first
    blobs = await delete_planned_blobs(plan, ctx, checkpoint)
    results = {**first.results, **blobs.results}
    if blobs.stopped_early:
        return Execution(results, stopped_early=True)
    folders = sorted((i for i in plan.items if i.kind is ItemKind.DIRECTORY), key=lambda i: i.ref.count("/"), reverse=True)
    rest = folders + [i for i in plan.items if i.kind not in STORAGE and i.kind is not ItemKind.SCHEDULE]
    rest += [i for i in plan.items if i.kind in CONTENT and i.key not in blobs.results]  # the kept ones
    return await _delete_each(plan, ctx, checkpoint, delete_record, rest, results)


async def _delete_each(
    plan: Plan, ctx: Context, checkpoint: Checkpoint, delete_record: RecordDelete | None,
    items: list[PlanItem], results: dict[str, ItemResult],
) -> Execution:
    kept: dict[str, str] = plan.notes.get("retained", {})
    for item in items:
        if item.key in results:
            continue
        if await checkpoint.cancelled():
            return Execution(results, stopped_early=True)
        if item.key in kept:
            result = ItemResult(Status.RETAINED, kept[item.key])
        elif item.kind is ItemKind.DIRECTORY:
            result = await shares(ctx).delete_directory(item.container or "", item.ref)
        else:
            assert delete_record is not None, f"no way to delete {item.kind.value} records"
            result = await ctx.control.call(delete_record, item)
        await checkpoint.record({item.key: result})
        results[item.key] = result
        await checkpoint.progress(len(results), len(plan.items), _done_bytes(plan, results), plan.total_bytes)
    return Execution(results)


# ---- export --------------------------------------------------------------------------------


def record_path(item: PlanItem) -> str:
    """Where a record's JSON goes in the archive: `<run>/run.json`, `<model>/<version>/model.json`,
    `<data>/<version>/data.json`, `<schedule>/schedule.json`, …"""
    return record_name(item).replace(":", "/") + f"/{RECORD_FILE[item.kind]}.json"


async def record_documents(plan: Plan, ctx: Context) -> dict[str, bytes]:
    """The REST documents of the plan's records that still exist, by item key."""
    wanted = [item for item in plan.items if item.kind not in STORAGE]
    documents = await asyncio.gather(*(ctx.control.call(_reader(ctx, item), item.ref) for item in wanted))
    return {
        item.key: json.dumps(document, indent=2, sort_keys=True, default=str).encode()
        for item, document in zip(wanted, documents, strict=True)
        if document is not None
    }


def _reader(ctx: Context, item: PlanItem) -> Callable[[str], dict[str, Any] | None]:
    """How a record is read: a run-history record from run history, the rest from the control plane."""
    if item.kind is ItemKind.RUN_RECORD:
        return ctx.control.run_record
    return lambda ref: ctx.control.document(ref, ML_API_VERSION)


def _deflate() -> Any:
    return zlib.compressobj(level=ZIP_LEVEL, wbits=-zlib.MAX_WBITS)


class _ReadAhead:
    """Reads the next small members while earlier ones are zipped: at most PREFETCH at once and
    PREFETCH_BYTES of planned size, each buffered up to PREFETCH_MAX (the rest streams on when its
    turn comes). Members are still handed out in plan order; big ones stream as they are zipped."""

    def __init__(self, read: Callable[[PlanItem], AsyncIterator[bytes]]) -> None:
        self._read = read
        self._tasks: dict[str, asyncio.Task[tuple[list[bytes], AsyncIterator[bytes] | None]]] = {}
        self._sizes: dict[str, int] = {}
        self._next = 0

    def fill(self, items: tuple[PlanItem, ...], current: int) -> None:
        self._next = max(self._next, current)
        while self._next < len(items) and len(self._tasks) < PREFETCH:
            item = items[self._next]
            if item.kind in CONTENT and (item.size or 0) < PREFETCH_MAX:
                size = item.size or 0
                if self._tasks and sum(self._sizes.values()) + size > PREFETCH_BYTES:
                    break
                self._tasks[item.key] = asyncio.create_task(self._buffer(item))
                self._sizes[item.key] = size
            self._next += 1

    async def _buffer(self, item: PlanItem) -> tuple[list[bytes], AsyncIterator[bytes] | None]:
        chunks: list[bytes] = []
        held = 0
        source = self._read(item)
        async for chunk in source:
            chunks.append(chunk)
            held += len(chunk)
            if held >= PREFETCH_MAX:
                return chunks, source  # grew since planned: the rest streams when zipped
        return chunks, None

    def ready(self, item: PlanItem) -> bool:
        """Whether the item was read ahead and its reading is over (done or failed): taking it does not wait."""
        task = self._tasks.get(item.key)
        return task is not None and task.done()

    async def take(self, item: PlanItem) -> list[bytes] | AsyncIterator[bytes]:
        """The item's bytes: all of them, in memory, when it was read ahead whole; else a stream."""
        task = self._tasks.pop(item.key, None)
        self._sizes.pop(item.key, None)
        if task is None:
            return self._read(item)
        chunks, rest = await task
        return chunks if rest is None else _replay(chunks, rest)

    def cancel(self) -> None:
        for task in self._tasks.values():
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the export failed elsewhere first
            task.cancel()
        self._tasks.clear()
        self._sizes.clear()


async def _replay(chunks: list[bytes], rest: AsyncIterator[bytes] | None) -> AsyncIterator[bytes]:
    while chunks:
        yield chunks.pop(0)
    if rest is not None:
        async for chunk in rest:
            yield chunk


def archive_of(request_id: str) -> str:
    """Where an export's archive is written in the exports container (`cleanup exports` and
    `/aml revoke` delete it there)."""
    return f"exports/{request_id}/{request_id}.zip"


def member_name(path: str) -> str:
    """A zip member name inside the archive root, whatever the blob is called: `%` and `\\` are
    percent-encoded, and so are segments that are empty (`//`, a leading `/`), `.` or `..`, so no
    extractor climbs out or writes outside it, and two names never share a member. The original
    name is in the manifest."""
    special = {"": "%2F", ".": "%2E", "..": "%2E%2E"}
    segments = path.replace("%", "%25").replace("\\", "%5C").split("/")
    return "/".join(special.get(segment, segment) for segment in segments)


class _Stop(Exception):
    """Carried out through the zip writer and the upload to abandon the archive: `cause` is the
    shutdown to raise again, None for a cancellation."""

    def __init__(self, cause: BaseException | None = None) -> None:
        super().__init__("the export was stopped between members")
        self.cause = cause


async def _stop_if_asked(checkpoint: Checkpoint) -> None:
    try:
        cancelled = await checkpoint.cancelled()
    except Exception:
        raise
    except BaseException as shutdown:  # the worker's stop signal: a BaseException the zip writer must not see
        raise _Stop(shutdown) from None
    if cancelled:
        raise _Stop()


async def export_planned(plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
    """One zip of the plan's blobs, share files and records, with a manifest; a read-only link to
    it. Files gone by their turn are listed in the manifest as missing; a cancellation between
    members abandons the archive."""
    # One archive, written in one pass: a resumed export starts the archive again (it
    # overwrites the same blob), so it never yields two links.
    assert ctx.request_id is not None, "an export runs for a stored request"
    request_id = ctx.request_id
    archive = archive_of(request_id)
    records = await record_documents(plan, ctx)
    manifest: list[dict[str, object]] = []
    skipped: dict[str, ItemResult] = {}  # item key -> why it is not in the archive
    state = {"done": 0, "bytes": 0}
    total, total_bytes = len(plan.items), plan.total_bytes  # a sum over the plan: not once a member

    async def listed(path: str, source: str, size: int, digest: PipelinedSha256) -> None:
        manifest.append({"path": path, "source": source, "size": size, "sha256": await digest.hexdigest()})
        state["done"] += 1
        state["bytes"] += size

    async def finished(path: str, source: str, chunks: list[bytes]) -> None:
        """An in-memory member's manifest line, from the very chunks handed to the zip writer."""
        digest = PipelinedSha256()
        for chunk in chunks:
            await digest.update(chunk)
        await listed(path, source, sum(map(len, chunks)), digest)

    async def report() -> None:
        await checkpoint.progress(state["done"], total, state["bytes"], total_bytes)

    async def streamed(path: str, source: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """A member too big to hold: hashed chunk by chunk as the zip writer takes them."""
        digest = PipelinedSha256()
        size = 0
        async for chunk in chunks:
            await digest.update(chunk)
            size += len(chunk)
            yield chunk
        await listed(path, source, size, digest)
        await report()

    def manifest_bytes() -> bytes:
        missing = [{"source": f"{i.container}/{i.ref}", "status": skipped[i.key].status.value, "reason": skipped[i.key].reason}
                   for i in plan.items if i.key in skipped]
        return json.dumps({"request_id": request_id, "plan_hash": plan.hash, "files": manifest, "missing": missing}, indent=2).encode()

    def read(item: PlanItem) -> AsyncIterator[bytes]:
        reader = ctx.door.read_blob if item.kind is ItemKind.BLOB else shares(ctx).read_file
        return reader(item.container or "", item.ref)

    async def opened(ahead: _ReadAhead, item: PlanItem) -> list[bytes] | AsyncIterator[bytes] | None:
        """The member's bytes (a stream with its first chunk already read): None if it cannot be
        read (then why is in `skipped`)."""
        try:
            source = await ahead.take(item)
            if isinstance(source, list):
                return source
            first = await anext(source, None)
        except Gone:
            skipped[item.key] = ItemResult(Status.ALREADY_ABSENT, "gone before its turn: listed in the manifest as missing")
            return None
        except Unaddressable:
            skipped[item.key] = ItemResult(Status.FAILED, UNADDRESSABLE)
            return None
        return _replay([] if first is None else [first], source)

    async def members() -> AsyncIterator[list[Member]]:
        """The members in plan order, in batches: those whose bytes are in memory go together (one
        crossing to the zip writer for all of them); a batch ends at a streamed member, and before
        a member whose reading would have to be waited for."""
        modified = datetime.now(UTC)
        ahead = _ReadAhead(read)
        batch: list[Member] = []
        try:
            for index, item in enumerate(plan.items):
                if item.kind in CONTENT:
                    ahead.fill(plan.items, index)
                    if batch and (len(batch) >= BATCH or not ahead.ready(item)):
                        yield batch  # zipped while this one is read
                        batch = []
                        await report()
                await _stop_if_asked(checkpoint)
                if item.kind in CONTENT:
                    source = f"{item.container}/{item.ref}"
                    name, method = member_name(source), method_for(item.ref, item.size or 0)
                    chunks = await opened(ahead, item)
                    if isinstance(chunks, list):
                        await finished(name, source, chunks)
                        batch.append((name, modified, 0o600, method, chunks))
                    elif chunks is not None:
                        yield [*batch, (name, modified, 0o600, method, streamed(name, source, chunks))]
                        batch = []
                elif item.key in records:
                    path = member_name(record_path(item))
                    await finished(path, item.ref, [records[item.key]])
                    batch.append((path, modified, 0o600, ZIP_64, [records[item.key]]))
            if batch:
                yield batch
                await report()
            # Every member before it is zipped by now: the zip writer asks for a batch once it is through the last.
            yield [("manifest.json", modified, 0o600, ZIP_64, [manifest_bytes()])]
        finally:
            ahead.cancel()

    archive_sha = PipelinedSha256(archive=True)

    async def archive_bytes() -> AsyncIterator[bytes]:
        async for chunk in zip_stream(members(), chunk_size=ZIP_CHUNK, get_compressobj=_deflate):
            await archive_sha.update(chunk)
            yield chunk

    try:
        size = await ctx.door.write_blob(ctx.config.exports_container, archive, archive_bytes())
    except _Stop as stop:
        if stop.cause is not None:
            raise stop.cause from None
        return Execution({}, stopped_early=True)  # nothing committed: no archive, no link
    link = await ctx.door.read_link(ctx.config.exports_container, archive, ctx.link_expiry)
    results = {
        item.key: skipped.get(item.key) or ItemResult(Status.EXPORTED if item.kind in CONTENT or item.key in records else Status.ALREADY_ABSENT)
        for item in plan.items
    }
    await checkpoint.record(results)
    expires = (datetime.now(UTC) + ctx.link_expiry).isoformat(timespec="seconds")
    return Execution(
        results,
        extras={
            "link": link, "archive": f"{ctx.config.exports_container}/{archive}", "size": size,
            "sha256": await archive_sha.hexdigest(), "expires_at": expires,
        },
    )

"""What storage keeps after a delete, said in the plan and in the receipt.

A deletion's blobs may outlive it: blob soft delete keeps deleted blobs (and their snapshots)
recoverable for some days, a legal hold stops any deletion in its container, an immutability policy
refuses files younger than its period. Every deletion plan that takes blobs reads these settings
through the storage door (the data plane: service and container properties) and says what they
mean; the receipt says, per file, what remains and until when. Blob versioning is a management-plane
setting: it is read through the resource manager (the blob service of the workspace's storage
account), and when it cannot be read the plan says so rather than promise that no version remains.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from commands.azure.door import ItemResult, Retention, Status
from commands.azure.sdk import HttpResponseError
from commands.intents import Action, Intent
from commands.operations.base import Checkpoint, Context, Execution, Operation
from commands.operations.run_data import keep
from commands.plan import ItemKind, Plan


def _blob_containers(plan: Plan) -> list[str]:
    """The containers a deletion plan deletes blobs in (none for exports)."""
    if not plan.action.destructive:
        return []
    return sorted({item.container or "" for item in plan.items if item.kind is ItemKind.BLOB})


def with_retention(plan: Plan, retention: Retention) -> Plan:
    """The plan, with blobs under a legal hold kept and what storage keeps of the rest said."""
    warnings = []
    if retention.soft_delete_days:
        warnings.append(
            f"Blob soft delete is on for this storage account: the deleted files and their snapshots stay "
            f"recoverable for {retention.soft_delete_days} days."
        )
    warnings += [f"{reason[0].upper()}{reason[1:]}; those are reported as failed." for reason in retention.guarded.values()]
    notes = {**plan.notes, "soft_delete_days": retention.soft_delete_days} if retention.soft_delete_days else plan.notes
    plan = replace(plan, warnings=(*plan.warnings, *warnings), notes=notes)
    held = {
        item.key: retention.holds[item.container or ""]
        for item in plan.items
        if item.kind is ItemKind.BLOB and (item.container or "") in retention.holds
    }
    containers = ", ".join(f"`{c}`" for c in sorted(retention.holds))
    return keep(plan, held, f"{len(held)} file(s) are under a legal hold ({containers}): they are kept until it is cleared.") if held else plan


def unread(plan: Plan, error: Exception) -> Plan:
    warning = (f"amlbot could not read the storage account's soft-delete and hold settings ({_reason(error)}): "
               "the deleted files may stay recoverable.")
    return replace(plan, warnings=(*plan.warnings, warning))


VERSIONS_KEPT = ("Blob versioning is on for this storage account: versions kept — deleting makes each file's current "
                 "version a previous version; previous versions remain until lifecycle rules or an explicit version "
                 "delete remove them.")


VERSIONS_TOLD = "previous versions kept (blob versioning)"


def with_versioning(plan: Plan, enabled: bool | None, reason: str = "") -> Plan:
    """The plan, saying what versioning keeps (None: it could not be read, so nothing is promised)."""
    if enabled is None:
        warning = (f"amlbot could not check blob versioning on the storage account ({reason}): "
                   "previous versions of the deleted files may remain.")
        return replace(plan, warnings=(*plan.warnings, warning))
    if not enabled:
        return plan
    return replace(plan, warnings=(*plan.warnings, VERSIONS_KEPT), notes={**plan.notes, "versions_kept": True})


def told(result: ItemResult, soft_delete_days: int | None, at: datetime, versions_kept: bool = False) -> ItemResult:
    """A deleted blob's outcome as it truly is: soft-deleted until a date when soft delete is on,
    its previous versions kept when versioning is on."""
    if result.status is not Status.DELETED:
        return result
    reasons = [VERSIONS_TOLD] if versions_kept else []
    if not soft_delete_days:
        # Told once: outcomes are told as recorded and again at the end; a reason already given stays.
        kept = [r for r in (result.reason,) if r and VERSIONS_TOLD not in r]
        return replace(result, reason="; ".join([*kept, *reasons])) if reasons else result
    until = (at + timedelta(days=soft_delete_days)).date().isoformat()
    reason = "; ".join([f"soft-deleted: recoverable until {until} (blob soft delete)", *reasons])
    return replace(result, status=Status.SOFT_DELETED, reason=reason)


def _reason(error: Exception) -> str:
    return getattr(error, "reason", None) or type(error).__name__


@dataclass(frozen=True)
class StorageTruth:
    """An operation whose deletion plans and receipts tell what storage keeps."""

    inner: Operation

    @property
    def action(self) -> Action:
        return self.inner.action

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        plan = await self.inner.preview(intent, ctx)
        containers = _blob_containers(plan)
        if not containers:
            return plan
        try:
            plan = with_retention(plan, await ctx.door.retention(containers))
        except HttpResponseError as error:
            plan = unread(plan, error)
        try:
            return with_versioning(plan, await _versioning(ctx))
        except HttpResponseError as error:
            return with_versioning(plan, None, _reason(error))

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        containers = _blob_containers(plan)
        if not containers:
            return await self.inner.execute(plan, ctx, checkpoint)
        days = await self._days_now(plan, ctx, containers)
        versions = await self._versions_now(plan, ctx)
        blobs = frozenset(item.key for item in plan.items if item.kind is ItemKind.BLOB)
        # Outcomes are told as they are recorded, so every receipt (a partial one after a crash too) has them.
        telling = _Telling(checkpoint, blobs, days, versions)
        execution = await self.inner.execute(plan, ctx, telling)
        return replace(execution, results=telling.tell(execution.results))

    @staticmethod
    async def _days_now(plan: Plan, ctx: Context, containers: list[str]) -> Any:
        """Soft delete as it is when the files go (it may have changed since the plan), else as planned."""
        try:
            return (await ctx.door.retention(containers)).soft_delete_days
        except HttpResponseError:
            return plan.notes.get("soft_delete_days")

    @staticmethod
    async def _versions_now(plan: Plan, ctx: Context) -> bool:
        """Versioning as it is when the files go, else as planned (unread: nothing is claimed)."""
        try:
            return await _versioning(ctx)
        except HttpResponseError:
            return bool(plan.notes.get("versions_kept"))


async def _versioning(ctx: Context) -> bool:
    """Whether the workspace storage account keeps previous versions of deleted blobs."""
    return bool((await ctx.control.call(ctx.control.blob_service)).get("isVersioningEnabled"))


@dataclass
class _Telling:
    """A checkpoint that records deleted blobs as soft-deleted, with their date, when soft delete is on."""

    inner: Checkpoint
    blobs: frozenset[str]
    days: int | None
    versions: bool = False

    @property
    def done(self) -> dict[str, ItemResult]:
        return self.inner.done

    def tell(self, results: dict[str, ItemResult]) -> dict[str, ItemResult]:
        at = datetime.now(UTC)
        return {key: told(result, self.days, at, self.versions) if key in self.blobs else result for key, result in results.items()}

    async def record(self, results: dict[str, ItemResult]) -> None:
        await self.inner.record(self.tell(results))

    async def progress(self, done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        await self.inner.progress(done, total, done_bytes, total_bytes)

    async def cancelled(self) -> bool:
        return await self.inner.cancelled()

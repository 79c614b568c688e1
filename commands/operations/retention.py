"""What storage keeps after a delete, said in the plan and in the receipt.

A deletion's blobs may outlive it: blob soft delete keeps deleted blobs (and their snapshots)
recoverable for some days, a legal hold stops any deletion in its container, an immutability policy
refuses files younger than its period. Every deletion plan that takes blobs reads these settings
through the storage door (the data plane: service and container properties) and says what they
mean; the receipt says, per file, what remains and until when. Blob versioning and container soft
delete are management-plane settings amlbot does not read: the README says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from commands.azure.door import ItemResult, Retention, Status
from commands.intents import Intent
from commands.operations.base import Checkpoint, Context, Execution, Operation
from commands.operations.run_data import keep
from commands.plan import ItemKind, Plan


def _blob_containers(plan: Plan) -> list[str]:
    """The containers a deletion plan deletes blobs in (none for exports)."""
    if not plan.action.startswith(("delete", "cleanup")):
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
    reason = getattr(error, "reason", None) or type(error).__name__
    warning = (f"amlbot could not read the storage account's soft-delete and hold settings ({reason}): "
               "the deleted files may stay recoverable.")
    return replace(plan, warnings=(*plan.warnings, warning))


def told(result: ItemResult, soft_delete_days: int | None, at: datetime) -> ItemResult:
    """A deleted blob's outcome as it truly is: soft-deleted until a date when soft delete is on."""
    if result.status is not Status.DELETED or not soft_delete_days:
        return result
    until = (at + timedelta(days=soft_delete_days)).date().isoformat()
    return replace(result, status=Status.SOFT_DELETED, reason=f"soft-deleted: recoverable until {until} (blob soft delete)")


@dataclass(frozen=True)
class StorageTruth:
    """An operation whose deletion plans and receipts tell what storage keeps."""

    inner: Operation

    @property
    def action(self) -> str:
        return self.inner.action

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        from azure.core.exceptions import HttpResponseError

        plan = await self.inner.preview(intent, ctx)
        containers = _blob_containers(plan)
        if not containers:
            return plan
        try:
            return with_retention(plan, await ctx.door.retention(containers))
        except HttpResponseError as error:
            return unread(plan, error)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        containers = _blob_containers(plan)
        if not containers:
            return await self.inner.execute(plan, ctx, checkpoint)
        days = await self._days_now(plan, ctx, containers)
        blobs = frozenset(item.key for item in plan.items if item.kind is ItemKind.BLOB)
        # Outcomes are told as they are recorded, so every receipt (a partial one after a crash too) has them.
        telling = _Telling(checkpoint, blobs, days)
        execution = await self.inner.execute(plan, ctx, telling)
        return replace(execution, results=telling.tell(execution.results))

    @staticmethod
    async def _days_now(plan: Plan, ctx: Context, containers: list[str]) -> Any:
        """Soft delete as it is when the files go (it may have changed since the plan), else as planned."""
        from azure.core.exceptions import HttpResponseError

        try:
            return (await ctx.door.retention(containers)).soft_delete_days
        except HttpResponseError:
            return plan.notes.get("soft_delete_days")


@dataclass
class _Telling:
    """A checkpoint that records deleted blobs as soft-deleted, with their date, when soft delete is on."""

    inner: Checkpoint
    blobs: frozenset[str]
    days: int | None

    @property
    def done(self) -> dict[str, ItemResult]:
        return self.inner.done

    def tell(self, results: dict[str, ItemResult]) -> dict[str, ItemResult]:
        at = datetime.now(UTC)
        return {key: told(result, self.days, at) if key in self.blobs else result for key, result in results.items()}

    async def record(self, results: dict[str, ItemResult]) -> None:
        await self.inner.record(self.tell(results))

    async def progress(self, done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        await self.inner.progress(done, total, done_bytes, total_bytes)

    async def cancelled(self) -> bool:
        return await self.inner.cancelled()

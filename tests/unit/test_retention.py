"""What storage keeps, as plans and receipts say it (pure parts of commands.operations.retention)."""

from __future__ import annotations

from datetime import UTC, datetime

from commands.azure.door import ItemResult, Retention, Status
from commands.intents import Action
from commands.operations.retention import VERSIONS_KEPT, told, with_retention, with_versioning
from commands.plan import ItemKind, Plan, PlanItem

HELD, FREE = PlanItem(ItemKind.BLOB, "a/1.txt", 1, "held"), PlanItem(ItemKind.BLOB, "a/2.txt", 1, "free")
PLAN = Plan(action=Action.parse("delete run"), workspace="dev", target="a", items=(HELD, FREE))


def test_files_under_a_legal_hold_are_kept_with_the_reason() -> None:
    plan = with_retention(PLAN, Retention(None, {"held": "legal hold on container `held`"}, {}))
    assert plan.notes["retained"] == {HELD.key: "legal hold on container `held`"}
    assert "1 file(s) are under a legal hold (`held`): they are kept until it is cleared." in plan.warnings


def test_immutability_policies_are_warned_and_soft_delete_noted() -> None:
    guarded = "container `free` has a time-based immutability policy: files younger than its period cannot be deleted"
    plan = with_retention(PLAN, Retention(14, {}, {"free": guarded}))
    assert plan.notes == {"soft_delete_days": 14} and "retained" not in plan.notes
    assert any(w.startswith("Container `free` has a time-based immutability policy") for w in plan.warnings)
    assert any("recoverable for 14 days" in w for w in plan.warnings)


def test_only_deleted_blobs_become_soft_deleted_and_only_with_soft_delete_on() -> None:
    at = datetime(2026, 1, 30, 23, 0, tzinfo=UTC)
    assert told(ItemResult(Status.DELETED), 7, at) == ItemResult(Status.SOFT_DELETED, "soft-deleted: recoverable until 2026-02-06 (blob soft delete)")
    assert told(ItemResult(Status.DELETED), None, at) == ItemResult(Status.DELETED)
    failed = ItemResult(Status.FAILED, "BlobImmutableDueToPolicy")
    assert told(failed, 7, at) == failed


def test_versioning_on_warns_versions_kept_and_unread_versioning_is_never_guessed_off() -> None:
    on = with_versioning(PLAN, True)
    assert on.notes == {"versions_kept": True} and VERSIONS_KEPT in on.warnings
    assert with_versioning(PLAN, False) == PLAN
    unread = with_versioning(PLAN, None, "Forbidden")
    assert "versions_kept" not in unread.notes
    assert unread.warnings == ("amlbot could not check blob versioning on the storage account (Forbidden): "
                               "previous versions of the deleted files may remain.",)


def test_a_deleted_blob_under_versioning_says_its_previous_versions_are_kept() -> None:
    at = datetime(2026, 1, 30, 23, 0, tzinfo=UTC)
    assert told(ItemResult(Status.DELETED), None, at, True) == ItemResult(Status.DELETED, "previous versions kept (blob versioning)")
    assert told(ItemResult(Status.DELETED), 7, at, True) == ItemResult(
        Status.SOFT_DELETED, "soft-deleted: recoverable until 2026-02-06 (blob soft delete); previous versions kept (blob versioning)")
    assert told(ItemResult(Status.FAILED, "x"), None, at, True) == ItemResult(Status.FAILED, "x")

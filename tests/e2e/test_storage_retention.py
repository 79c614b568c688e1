"""What storage keeps after a delete, told in the plan and the receipt: signed Slack requests, the
real storage SDK against Azurite with blob soft delete switched on in its service properties, and
blob versioning read through the resource manager (the control-plane stand-in's blob service)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import RetentionPolicy

from bot import cards
from bot.lifecycle import State
from sandbox.standins.azure.state import GenericResource
from tests.e2e.harness import APPROVER_1, RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, Harness

RUN = "churn_train_1700000000_soft"


@pytest.fixture
async def soft_delete(harness: Harness) -> AsyncIterator[None]:
    """Blob soft delete on (7 days) in Azurite, off again afterwards: the Azurite is shared by the session."""
    await harness.blobs.set_service_properties(delete_retention_policy=RetentionPolicy(enabled=True, days=7))
    try:
        yield
    finally:
        await harness.blobs.set_service_properties(delete_retention_policy=RetentionPolicy(enabled=False))


async def _seed_with_a_snapshot(harness: Harness) -> None:
    await harness.seed({f"ExperimentRun/dcid.{RUN}/user_logs/std_log.txt": b"log", f"ExperimentRun/dcid.{RUN}/outputs/model.pkl": b"m"})
    await harness.blobs.get_blob_client(harness.container, f"ExperimentRun/dcid.{RUN}/outputs/model.pkl").create_snapshot()


async def test_soft_delete_on_is_warned_in_the_plan_and_told_with_a_date_in_the_receipt(harness: Harness, soft_delete: None) -> None:
    await _seed_with_a_snapshot(harness)

    request = await harness.submit(f"delete run {RUN}")

    assert "the deleted files and their snapshots stay recoverable for 7 days" in " ".join(request.plan["warnings"])
    assert "recoverable for 7 days" in str(harness.card(request.id)["blocks"])
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.SUCCEEDED)
    receipt = await harness.receipt(request.id)
    until = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    assert {(i["status"], i["reason"]) for i in receipt["items"]} == {("soft_deleted", f"soft-deleted: recoverable until {until} (blob soft delete)")}
    assert receipt["totals"] == {"soft_deleted": 2}
    # Recorded so too: a receipt built from the records (after a crash, or a job given up) says the same.
    assert {outcome for outcome, _ in harness.store.item_outcomes(request.id).values()} == {"soft_deleted"}
    # The blob with a snapshot went too, snapshot and all (without that, the service refuses: 409).
    assert await harness.blob_names(f"ExperimentRun/dcid.{RUN}/") == set()


async def test_soft_delete_off_says_deleted_and_nothing_about_recovery(harness: Harness) -> None:
    await _seed_with_a_snapshot(harness)

    request = await harness.submit(f"delete run {RUN}")

    assert not [w for w in request.plan["warnings"] if "recoverable" in w]
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.SUCCEEDED)
    receipt = await harness.receipt(request.id)
    assert {(i["status"], i["reason"]) for i in receipt["items"]} == {("deleted", "")}


def _storage_account(harness: Harness) -> GenericResource:
    """The workspace's storage account as the control-plane stand-in keeps it."""
    assert harness.own_azure is not None
    state = harness.own_azure.state
    account = state.generic_resource(state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE).storage_account_id or "")
    assert account is not None
    return account


async def test_versioning_on_is_warned_in_the_plan_and_told_per_file_in_the_receipt(harness: Harness) -> None:
    _storage_account(harness).blob_service["isVersioningEnabled"] = True
    await _seed_with_a_snapshot(harness)

    request = await harness.submit(f"delete run {RUN}")

    assert any(w.startswith("Blob versioning is on for this storage account: versions kept") for w in request.plan["warnings"])
    assert "versions kept" in str(harness.card(request.id)["blocks"])
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.SUCCEEDED)
    receipt = await harness.receipt(request.id)
    assert {(i["status"], i["reason"]) for i in receipt["items"]} == {("deleted", "previous versions kept (blob versioning)")}
    assert {detail["reason"] for _, detail in harness.store.item_outcomes(request.id).values()} == {"previous versions kept (blob versioning)"}


async def test_versioning_unreadable_is_said_could_not_be_checked_never_guessed(harness: Harness) -> None:
    assert harness.own_azure is not None
    harness.own_azure.fail_next("GET", r"/blobServices/default$", status=403)
    await _seed_with_a_snapshot(harness)

    request = await harness.submit(f"delete run {RUN}")

    warnings = " ".join(request.plan["warnings"])
    assert "amlbot could not check blob versioning on the storage account (Forbidden)" in warnings
    assert "versions kept" not in warnings and "versions_kept" not in request.plan["notes"]

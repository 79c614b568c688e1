"""Attacks on execution: what runs is exactly what was approved, and the receipt says what happened.

Each test drives the real app with signed requests, against Azurite (through the fault proxy where
storage must misbehave), the Slack Web API stand-in and the store, and checks the effects there:
which blobs are left, what the receipt and the thread say, and what the audit log holds.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from yarl import URL

from bot import cards
from bot.lifecycle import State
from bot.store import schema
from bot.worker import Worker
from commands.azure.door import DeleteMethod, Status
from sandbox.standins.azure.files import AzureFilesStandIn
from sandbox.standins.azure.server import AzureStandIn
from sandbox.standins.azure.state import NOTEBOOKS_SHARE
from tests.e2e import test_azure_more_data
from tests.e2e.harness import APPROVER_1, ONCALL, RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, Harness, Submitted
from tests.e2e.test_azure_data import _download
from tests.e2e.test_azure_more_data import ALICE_NOTEBOOKS
from tests.support.storage_proxy import Hold, StorageFaultProxy

bot, files = test_azure_more_data.bot, test_azure_more_data.files  # fixtures: the bot with file shares

RUN = "attack_train_1700000000_exec0001"
PREFIX = f"ExperimentRun/dcid.{RUN}/"
OUTSIDER = "ExperimentRun/dcid.someone_else/outputs/model.bin"


def _files(count: int) -> dict[str, bytes]:
    return {f"{PREFIX}outputs/part-{i:03d}.txt": f"part {i}\n".encode() for i in range(count)}


def _statuses(receipt: dict[str, Any]) -> dict[str, str]:
    return {item["ref"]: item["status"] for item in receipt["items"]}


def _receipt_post(harness: Harness, request_id: str) -> str:
    return next(str(m.get("blocks")) for m in harness.thread(request_id) if "deletion receipt" in (m.get("text") or ""))


# ---- 5. the stored plan is checked against its hash before it runs ------------------------------


def _outsider_slipped_in(harness: Harness, request: Submitted) -> dict[str, Any]:
    """Another run's model added to the plan."""
    assert request.plan is not None
    outsider = {"kind": "blob", "ref": OUTSIDER, "size": 19, "container": harness.container}
    return {"plan": {**request.plan, "items": [*request.plan["items"], outsider]}}


def _size_understated(_: Harness, request: Submitted) -> dict[str, Any]:
    """The count the policy judges a request by (the on-call self-approval cap) lowered; the plan untouched."""
    return {"plan_items": 1}


@pytest.mark.parametrize("alteration", [_outsider_slipped_in, _size_understated])
async def test_a_plan_altered_in_the_database_after_approval_does_not_run(
    harness: Harness, alteration: Callable[[Harness, Submitted], dict[str, Any]]
) -> None:
    await harness.seed(_files(3) | {OUTSIDER: b"another run's model"})
    request = await harness.submit(f"delete run {RUN}")
    # Someone with write access to the database changes the request after it was planned.
    with harness.store.engine.begin() as conn:
        conn.execute(update(schema.requests).where(schema.requests.c.id == request.id).values(**alteration(harness, request)))

    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.FAILED, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED)

    assert done.state is State.FAILED
    assert await harness.blob_names() == set(_files(3)) | {OUTSIDER}  # nothing deleted
    assert "plan.altered" in harness.events(request.id)
    failure = await harness.wait_thread(request.id, "failed")
    assert "altered after approval" in failure and "nothing was run" in failure
    receipt = await harness.receipt(request.id)
    assert "deleted" not in receipt["totals"] and "altered" in receipt["error"]
    assert harness.store.verify_audit().ok


async def test_the_card_shows_the_stored_plan_hash_and_a_forged_one_does_not_run(harness: Harness) -> None:
    """The card renders the hash stored with the request, never recomputed from the plan: forged in
    the database, it shows on the card, and the worker, which hashes the plan itself, refuses to run."""
    await harness.seed(_files(3))
    request = await harness.submit(f"delete run {RUN}")
    assert request.plan_hash is not None and f"Plan `{request.plan_hash[:19]}…`" in str(harness.card(request.id)["blocks"])
    forged = "sha256:" + "0" * 64
    with harness.store.engine.begin() as conn:
        conn.execute(update(schema.requests).where(schema.requests.c.id == request.id).values(plan_hash=forged))

    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.FAILED, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED)

    assert done.state is State.FAILED and "plan.altered" in harness.events(request.id)
    assert await harness.blob_names() == set(_files(3))  # nothing deleted
    await harness.slack.wait_for(lambda: f"Plan `{forged[:19]}…`" in str(harness.card(request.id)["blocks"]))


# ---- 6. a blob rewritten after approval is kept ----------------------------------------------


async def test_a_blob_rewritten_after_approval_is_kept_and_reported_changed(harness: Harness) -> None:
    seeded = _files(3)
    await harness.seed(seeded)
    request = await harness.submit(f"delete run {RUN}")
    rewritten = f"{PREFIX}outputs/part-001.txt"
    # After the approvers saw the plan, a job writes new bytes under the same name.
    await harness.seed({rewritten: b"new results, never approved for deletion"})

    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)

    assert await harness.blob_names(PREFIX) == {rewritten}
    blob = harness.blobs.get_blob_client(harness.container, rewritten)
    assert await (await blob.download_blob()).readall() == b"new results, never approved for deletion"
    receipt = await harness.receipt(request.id)
    assert done.state is State.PARTIALLY_SUCCEEDED and receipt["state"] == "partially_succeeded"
    assert _statuses(receipt)[rewritten] == "changed"
    assert receipt["totals"] == {"deleted": 2, "changed": 1}
    item = next(i for i in receipt["items"] if i["ref"] == rewritten)
    assert "changed since the plan" in item["reason"] and item["azure_request_id"]
    assert "*Kept, changed since the plan*: 1 file" in _receipt_post(harness, request.id)


# ---- 9. a database failure while checkpointing ----------------------------------------------


def _failing_checkpoints(harness: Harness, times: int) -> list[int]:
    """The next `times` checkpoint writes fail as a lost database connection would; returns the
    count of failures served."""
    store, original, served = harness.store, harness.store.record_items, [0]

    def record_items(request_id: str, outcomes: list[tuple[str, str, dict[str, Any]]]) -> None:
        if served[0] < times:
            served[0] += 1
            raise OperationalError("INSERT INTO job_items", {}, Exception("server closed the connection unexpectedly"))
        original(request_id, outcomes)

    store.record_items = record_items  # type: ignore[method-assign]
    return served


async def test_a_database_blip_while_checkpointing_is_retried_and_the_job_succeeds(harness: Harness) -> None:
    await harness.seed(_files(5))
    request = await harness.submit(f"delete run {RUN}")
    served = _failing_checkpoints(harness, 2)
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)

    assert served == [2] and done.state is State.SUCCEEDED
    assert await harness.blob_names(PREFIX) == set()
    receipt = await harness.receipt(request.id)
    assert receipt["totals"] == {"deleted": 5} and "error" not in receipt
    assert {key for key, (outcome, _) in harness.store.item_outcomes(request.id).items() if outcome == "deleted"} == {
        f"blob:{harness.container}/{name}" for name in _files(5)
    }


async def test_a_database_down_for_good_while_checkpointing_still_gets_a_receipt_that_is_true(harness: Harness) -> None:
    await harness.seed(_files(4))
    request = await harness.submit(f"delete run {RUN}")
    _failing_checkpoints(harness, 1000)
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)

    assert await harness.blob_names(PREFIX) == set()
    receipt = await harness.receipt(request.id)
    # The blobs are gone, so the receipt says so: never "not attempted" for a deleted blob.
    assert set(_statuses(receipt).values()) == {"deleted"}, receipt["items"]
    assert all(item["azure_request_id"] for item in receipt["items"])
    assert receipt["state"] == done.state.value == "partially_succeeded" and "database failed" in receipt["error"]
    post = await harness.wait_thread(request.id, "database failed")
    assert "partly done" in post and ":x:" not in post


# ---- 10. storage unavailable for the final re-listing ------------------------------------------


async def test_a_503_storm_on_the_final_listing_leaves_state_receipt_and_thread_agreeing(
    proxied: Harness, proxy: StorageFaultProxy
) -> None:
    await proxied.seed(_files(3))
    request = await proxied.submit(f"delete run {RUN}")
    proxy.fail_next("GET", r"comp=list", status=503, times=10_000)  # every listing from now on
    await proxied.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await proxied.wait_state(request.id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)

    assert [e.status for e in proxy.exchanges if "comp=batch" in e.path_qs] == [202]
    assert proxy.injected >= 1  # the re-listing met the storm
    receipt = await proxied.receipt(request.id)
    assert receipt["state"] == done.state.value == "succeeded"
    assert receipt["totals"] == {"deleted": 3} and "error" not in receipt
    assert "could not be listed again" in receipt["unverified"]
    await proxied.wait_thread(request.id, "deletion receipt")
    assert not any(":x:" in text for text in proxied.thread_texts(request.id))
    assert "could not be listed again" in _receipt_post(proxied, request.id)
    assert "succeeded" in _receipt_post(proxied, request.id)
    assert (done.result or {})["summary"] == receipt["totals"]
    await proxied.slack.wait_for(lambda: ":white_check_mark: Done" in str(proxied.card(request.id)["blocks"]), description="the card")


# ---- 11. exports: files gone before their turn, names that try to climb out ----------------------


async def test_an_export_lists_a_blob_gone_before_its_turn_as_missing_and_completes(harness: Harness) -> None:
    seeded = _files(3)
    await harness.seed(seeded)
    request = await harness.submit(f"export run {RUN}")
    gone = f"{PREFIX}outputs/part-001.txt"
    await harness.blobs.get_blob_client(harness.container, gone).delete_blob()

    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)

    assert done.state is State.SUCCEEDED
    manifest, members = await _download(harness, request.id)
    assert members == {f"{harness.container}/{name}": data for name, data in seeded.items() if name != gone}
    assert [entry["source"] for entry in manifest["missing"]] == [f"{harness.container}/{gone}"]
    assert (done.result or {})["summary"] == {"exported": 2, "already_absent": 1}


async def test_an_export_of_many_small_members_and_a_big_one_keeps_plan_order_and_a_true_manifest(harness: Harness) -> None:
    # More small members than are read ahead at once (they reach the zip writer in batches) and one
    # streamed in ranges among them: each member's bytes, its manifest line and the order all hold.
    small = {f"{PREFIX}outputs/part-{i:03d}.txt": os.urandom(2048) for i in range(300)}
    big = {f"{PREFIX}outputs/part-150-weights.bin": os.urandom(5 * 1024 * 1024)}
    await harness.seed(small | big)
    request = await harness.submit(f"export run {RUN}")

    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)

    assert done.state is State.SUCCEEDED
    manifest, members = await _download(harness, request.id)  # checks every member against its manifest line
    in_order = [f"{harness.container}/{name}" for name in sorted(small | big)]
    assert list(members) == in_order and [entry["source"] for entry in manifest["files"]] == in_order
    assert members == {f"{harness.container}/{name}": data for name, data in (small | big).items()}


async def _put_by_raw_path(harness: Harness, name_in_path: str, data: bytes) -> None:
    """A blob written by another tool that sends its name percent-encoded (dots included), as the
    SDK never would: the only way a name with `..` segments gets into a container."""
    sas = generate_container_sas(
        harness.blobs.account_name, harness.container, account_key=harness.blobs.credential.account_key,
        permission=ContainerSasPermissions(write=True, create=True), expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    url = URL(f"{harness.blobs.get_container_client(harness.container).url}/{name_in_path}?{sas}", encoded=True)
    headers = {"x-ms-blob-type": "BlockBlob", "x-ms-version": "2021-08-06"}
    async with aiohttp.ClientSession() as session, session.put(url, data=data, headers=headers) as response:
        assert response.status == 201, await response.text()


async def test_an_export_keeps_every_member_inside_the_archive_root_whatever_the_blob_names(harness: Harness) -> None:
    plain = {f"{PREFIX}outputs/a//b.txt": b"empty segment", f"{PREFIX}outputs/100%.txt": b"percent", f"{PREFIX}x..y": b"dots"}
    await harness.seed(plain)
    climber = f"{PREFIX}../../tmp/escaped.txt"
    await _put_by_raw_path(harness, f"{PREFIX}%2E%2E/%2E%2E/tmp/escaped.txt", b"climber")
    await harness.seed({"tmp/escaped.txt": b"another blob, which the climber's path resolves to"})
    assert climber in await harness.blob_names(PREFIX)
    request = await harness.submit(f"export run {RUN}")

    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)

    manifest, members = await _download(harness, request.id)
    for name in members:
        segments = name.split("/")
        assert not name.startswith("/") and "\\" not in name and not {"", ".", ".."} & set(segments), name
    by_source = {entry["source"]: entry["path"] for entry in manifest["files"]}
    assert set(by_source) == {f"{harness.container}/{name}" for name in plain}
    assert {members[by_source[f"{harness.container}/{name}"]] for name in plain} == set(plain.values())
    # The climber's name is never sent: its path would read `tmp/escaped.txt` instead.
    [refused] = manifest["missing"]
    assert refused["source"] == f"{harness.container}/{climber}" and "segments" in refused["reason"]
    assert b"another blob" not in b"".join(members.values())
    assert done.state is State.PARTIALLY_SUCCEEDED


# ---- 12. a running export stops when asked -----------------------------------------------------


async def _export_held_at_its_first_member(harness: Harness, proxy: StorageFaultProxy) -> tuple[str, Hold]:
    await harness.seed(_files(30))
    request = await harness.submit(f"export run {RUN}")
    held = proxy.hold("GET", r"/part-000\.txt$")
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await held.reached.wait()
    return request.id, held


async def _archives(harness: Harness) -> set[str]:
    container = harness.blobs.get_container_client(f"exports-{harness.container}")
    return {blob.name async for blob in container.list_blobs()} if await container.exists() else set()


async def test_cancel_stops_a_running_export_between_members(proxied: Harness, proxy: StorageFaultProxy) -> None:
    request_id, held = await _export_held_at_its_first_member(proxied, proxy)
    status, _ = await proxied.command(f"cancel {request_id}")
    assert status == 200
    await proxied.slack.wait_for(lambda: "cancel.requested" in proxied.events(request_id), description="the cancel recorded")
    held.release.set()

    done = await proxied.wait_state(request_id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)
    assert (done.result or {})["stopped_early"] and "link" not in (done.result or {})["extras"]
    assert await _archives(proxied) == set()
    await proxied.wait_thread(request_id, "stopped on request: no archive was made")
    assert not any("Export ready" in str(m.get("blocks")) for m in proxied.thread(request_id))


async def test_a_shutdown_pauses_a_running_export_and_the_next_worker_finishes_it(
    proxied: Harness, proxy: StorageFaultProxy
) -> None:
    request_id, held = await _export_held_at_its_first_member(proxied, proxy)
    worker = proxied.bot.worker
    worker.stop()  # what SIGTERM does (bot.server._shut_down)
    held.release.set()
    await proxied.slack.wait_for(lambda: "job.interrupted" in proxied.events(request_id), description="the job handed back")
    await proxied.wait_thread(request_id, "Paused")
    assert proxied.request(request_id).state is State.RUNNING and await _archives(proxied) == set()

    successor = Worker(
        worker.config, worker.store, worker.publisher, worker.contexts, worker.requests, worker.wake, lease=worker.lease, poll=0.05
    )
    running = asyncio.create_task(successor.run())
    try:
        await proxied.wait_state(request_id, State.SUCCEEDED)
        manifest, members = await _download(proxied, request_id)
        assert len(members) == 30 and manifest["missing"] == []
    finally:
        successor.stop()
        await running


# ---- 7. computes are looked at again when the job runs ------------------------------------------


def _workspace(azure: AzureStandIn) -> Any:
    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    assert workspace is not None
    return workspace


async def test_a_cleanup_keeps_a_compute_that_got_busy_after_the_plan(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace, long_ago = _workspace(azure), datetime.now(UTC) - timedelta(days=30)
    for name in ("idle-cluster", "quiet-cluster"):
        workspace.add_compute(name, created_on=long_ago, allocation_changed=long_ago)
    request = await azure_harness.submit("cleanup computes --idle 7d", user=ONCALL)
    assert len(request.plan["items"]) == 2
    # A job lands on one of them while the request waits.
    workspace.add_compute("quiet-cluster", created_on=long_ago, current_nodes=2, running_nodes=2, allocation_changed=datetime.now(UTC))

    await azure_harness.click(cards.ActionId.APPROVE, request.id, ONCALL)
    done = await azure_harness.wait_state(request.id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)

    assert {path.rsplit("/", 1)[1] for path in azure.state.deleted if "/computes/" in path} == {"idle-cluster"}
    receipt = await azure_harness.receipt(request.id)
    assert done.state is State.PARTIALLY_SUCCEEDED and receipt["state"] == "partially_succeeded"
    kept = next(item for item in receipt["items"] if item["ref"].endswith("/quiet-cluster"))
    assert kept["status"] == "retained" and "busy now: 2 node(s) running" in kept["reason"]
    assert "busy now" in _receipt_post(azure_harness, request.id)


async def test_a_compute_approved_idle_but_busy_when_the_job_runs_is_kept(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace = _workspace(azure)
    workspace.add_compute("gpu-cluster")
    request = await azure_harness.submit("delete compute gpu-cluster")
    assert request.plan["warnings"] == []  # approvers are told nothing runs on it
    workspace.add_compute("gpu-cluster", current_nodes=1, preparing_nodes=1)

    await azure_harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await azure_harness.wait_state(request.id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)

    assert not [path for path in azure.state.deleted if "/computes/" in path]
    receipt = await azure_harness.receipt(request.id)
    [item] = receipt["items"]
    assert item["status"] == "retained" and "1 node(s) running or preparing jobs" in item["reason"]


async def test_a_notebook_rewritten_after_approval_is_kept_and_reported_changed(
    bot: Harness, files: AzureFilesStandIn
) -> None:
    for path, data in ALICE_NOTEBOOKS.items():
        files.add_file(NOTEBOOKS_SHARE, path, data)
    request = await bot.submit("delete notebooks alice@contoso.com")
    rewritten = "Users/alice/churn analysis.ipynb"
    files.add_file(NOTEBOOKS_SHARE, rewritten, b'{"cells": ["saved after the plan"]}')

    await bot.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await bot.wait_state(request.id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)

    assert files.files(NOTEBOOKS_SHARE) == {rewritten: b'{"cells": ["saved after the plan"]}'}
    receipt = await bot.receipt(request.id)
    assert _statuses(receipt)[rewritten] == "changed"
    assert _statuses(receipt)["Users/alice/scratch/notes.md"] == "deleted"


# ---- 9. a resumed delete whose first try reached storage unrecorded -----------------------------


@pytest.mark.parametrize("method", list(DeleteMethod))
async def test_a_conditional_delete_of_a_blob_already_gone_is_already_absent_not_changed(
    harness: Harness, azurite_connection: str, method: DeleteMethod
) -> None:
    """A worker dies after its deletes reached storage but before the outcomes were recorded; the
    next one sends the same If-Match deletes. Azure answers 412 for a blob that is no longer there
    (not 404): the receipt must say the blob is gone, never that it was rewritten and kept. The
    same in a batch and in requests of their own."""
    from commands.azure.blobs import WorkspaceBlobs
    from commands.azure.config import WorkspaceConfig

    seeded = _files(3)
    await harness.seed(seeded)
    blobs = WorkspaceBlobs(
        WorkspaceConfig(
            subscription_id=SUBSCRIPTION, resource_group=RESOURCE_GROUP, workspace_name=WORKSPACE,
            storage_connection_string=azurite_connection,
        )
    )
    try:
        planned = {blob.name: blob.etag for blob in await blobs.list_blobs(harness.container, PREFIX)}
        gone, rewritten, untouched = sorted(planned)
        await blobs.delete_blobs(harness.container, {gone: planned[gone]}, method)  # the unrecorded first try
        await harness.seed({rewritten: b"written again after the plan"})
        outcome = await blobs.delete_blobs(harness.container, planned | {f"{PREFIX}../escape.txt": None}, method)
    finally:
        await blobs.close()
    assert {name: result.status for name, result in outcome.items()} == {
        gone: Status.ALREADY_ABSENT, rewritten: Status.CHANGED, untouched: Status.DELETED,
        f"{PREFIX}../escape.txt": Status.FAILED,  # never sent: its path would resolve elsewhere
    }
    assert all(outcome[name].azure_request_id for name in (gone, rewritten, untouched))
    assert await harness.blob_names(PREFIX) == {rewritten}

"""Attacks on `delete run`: the files of a job that is still running are never deleted.

Each test drives the real app with signed requests and the real Azure SDK against the control-plane
stand-in (where a job's status can change while a request waits), with the run's files in Azurite,
and checks what is left there and what the requester, the card and the receipt are told.
"""

from __future__ import annotations

import pytest

from bot import cards
from bot.lifecycle import State
from sandbox.standins.azure.server import AzureStandIn
from tests.e2e.harness import APPROVER_1, Harness
from tests.e2e.test_azure_data import _approve, _workspace
from tests.e2e.test_azure_data import _run_files as _files

FINAL = (State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED)


def _set_status(azure: AzureStandIn, job: str, status: str) -> None:
    """The job's status, as the control plane and run history both show it."""
    workspace = _workspace(azure)
    with azure.state.lock:
        workspace.jobs[job.lower()]["properties"]["status"] = status
        if run := workspace.runs.get(job):
            run["status"] = status


@pytest.mark.parametrize("status", ["Running", "Queued"])
async def test_delete_run_of_an_unfinished_job_keeps_its_record_and_files(
    azure_harness: Harness, azure: AzureStandIn, status: str
) -> None:
    _workspace(azure).add_job("live-train-1", status=status)
    await azure_harness.seed(_files("live-train-1"))

    request = await azure_harness.submit("delete run live-train-1")
    assert any(f"still {status.lower()}" in warning for warning in request.plan["warnings"])
    assert f"still {status.lower()}" in str(azure_harness.card(request.id))
    await azure_harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await azure_harness.wait_state(request.id, *FINAL)

    assert await azure_harness.blob_names() == set(_files("live-train-1"))
    assert not [path for path in azure.state.deleted if "/jobs/" in path]
    receipt = await azure_harness.receipt(request.id)
    assert {item["status"] for item in receipt["items"]} == {"retained"}


async def test_delete_run_of_a_running_pipeline_step_keeps_its_files(azure_harness: Harness, azure: AzureStandIn) -> None:
    # A step is no job of its own on the control plane: the SDK reads its status from run history.
    workspace = _workspace(azure)
    workspace.add_job("pipe-1", job_type="Pipeline", status="Running")
    workspace.add_job("pipe-1-step-1", parent_job_name="pipe-1", status="Running")
    await azure_harness.seed(_files("pipe-1-step-1"))

    request = await azure_harness.submit("delete run pipe-1-step-1")

    assert any("still running" in warning for warning in request.plan["warnings"])
    assert not [item for item in request.plan["items"] if item["kind"] == "blob"]  # its files are not even listed


async def test_delete_run_of_a_finished_job_deletes_its_files(azure_harness: Harness, azure: AzureStandIn) -> None:
    _workspace(azure).add_job("done-train-1", status="Completed")
    await azure_harness.seed(_files("done-train-1") | _files("other-train-1"))

    request, _ = await _approve(azure_harness, "delete run done-train-1", *FINAL)

    assert azure_harness.request(request.id).state is State.SUCCEEDED
    assert await azure_harness.blob_names() == set(_files("other-train-1"))
    receipt = await azure_harness.receipt(request.id)
    assert {item["status"] for item in receipt["items"]} == {"deleted"}


async def test_delete_run_without_a_job_on_the_control_plane_still_deletes_its_files(
    azure_harness: Harness, azure: AzureStandIn
) -> None:
    # A v1 run, or a job deleted whose files remain: the control plane answers 404, which is no job, not a running one.
    _workspace(azure).add_job("someone-else-1", status="Running")
    await azure_harness.seed(_files("orphan-run-1"))

    request, _ = await _approve(azure_harness, "delete run orphan-run-1", *FINAL)

    assert azure_harness.request(request.id).state is State.SUCCEEDED
    assert await azure_harness.blob_names() == set()
    asked = [e for e in azure.exchanges if e.method == "GET" and e.path.endswith("/jobs/orphan-run-1")]
    assert asked and {e.status for e in asked} == {404}  # asked at preview and again at execution


async def test_a_job_running_again_when_the_approved_plan_runs_keeps_every_file(
    azure_harness: Harness, azure: AzureStandIn
) -> None:
    _workspace(azure).add_job("flaky-train-1", status="Failed")
    await azure_harness.seed(_files("flaky-train-1"))
    request = await azure_harness.submit("delete run flaky-train-1")
    assert len(request.plan["items"]) == 3  # its job record and its two files
    _set_status(azure, "flaky-train-1", "Running")  # resumed while the request waited

    await azure_harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await azure_harness.wait_state(request.id, *FINAL)

    assert await azure_harness.blob_names() == set(_files("flaky-train-1"))
    assert not [path for path in azure.state.deleted if "/jobs/" in path]
    receipt = await azure_harness.receipt(request.id)
    assert receipt["state"] == done.state.value == "failed"  # nothing done, as when every item is kept
    assert {item["status"] for item in receipt["items"]} == {"retained"}
    assert all("since the approval its job is still running" in item["reason"] for item in receipt["items"])
    posted = next(str(m["blocks"]) for m in azure_harness.thread(request.id) if "deletion receipt" in m["text"])
    assert "since the approval its job is still running" in posted


async def test_a_control_plane_error_refuses_the_preview_instead_of_guessing(
    azure_harness: Harness, azure: AzureStandIn
) -> None:
    _workspace(azure).add_job("done-train-2", status="Completed")
    await azure_harness.seed(_files("done-train-2"))
    azure.fail_next("GET", r"/jobs/done-train-2$", status=500, times=20, code="InternalServerError")

    await azure_harness.command("delete run done-train-2")

    reply = await azure_harness.wait_reply(containing="Could not plan")
    assert "HTTP 500, InternalServerError" in reply and "Nothing was requested" in reply
    assert azure_harness.store.list_requests(limit=10) == []
    assert await azure_harness.blob_names() == set(_files("done-train-2"))

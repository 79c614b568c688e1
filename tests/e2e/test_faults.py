"""Faults end to end: Azure busy in bursts, Slack rate limits, the database locked or failing.

Each test drives the real app with signed requests and checks the outcome is whole: the job
finishes after retries, nothing is lost, or the person is told clearly and nothing is half-written.

Storage faults come from a reverse proxy in front of Azurite (tests/support/storage_proxy.py, the
`proxy` and `proxied` fixtures of conftest.py); the control plane's from the Azure stand-in's
`fail_next`; Slack's from the Web API stand-in's `rate_limit`.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bot import cards
from bot.lifecycle import State
from sandbox.standins.azure.server import AzureStandIn
from sandbox.standins.slack_signing import app_home_opened_body
from tests.e2e.harness import (
    APPROVER_1,
    REQUESTER,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    TEAM,
    WORKSPACE,
    Harness,
)
from tests.support.storage_proxy import StorageFaultProxy

RUN = "churn_train_1700000000_faults01"
PREFIX = f"ExperimentRun/dcid.{RUN}/"


def _run_files(count: int) -> dict[str, bytes]:
    return {f"{PREFIX}logs/part-{i:04d}.txt": f"line {i}\n".encode() * 3 for i in range(count)}


# ---- Azure storage: busy in bursts ------------------------------------------------------------


async def test_storage_busy_bursts_are_retried_and_the_deletion_completes(
    proxied: Harness, proxy: StorageFaultProxy
) -> None:
    files = _run_files(300)  # fewer than two probes' worth: batch requests only, several at once
    await proxied.seed(files | {"ExperimentRun/dcid.other_run/keep.txt": b"keep"})
    # The preview's listing meets a busy account twice.
    proxy.fail_next("GET", r"comp=list", status=503, times=2, retry_after=1)
    request = await proxied.submit(f"delete run {RUN}")
    assert len(request.plan["items"]) == 300

    # Then the batch deletes: two "server busy" answers and one "operation timed out".
    proxy.fail_next("POST", r"comp=batch", status=503, times=2, retry_after=1)
    proxy.fail_next("POST", r"comp=batch", status=500, times=1)
    await proxied.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await proxied.wait_state(request.id, State.SUCCEEDED)

    assert proxy.pending() == 0 and proxy.injected == 5
    batches = [e for e in proxy.exchanges if "comp=batch" in e.path_qs]
    assert {e.status for e in batches if not e.injected} == {202}
    assert not [e for e in proxy.exchanges if e.method == "DELETE"]  # no single deletes
    assert await proxied.blob_names(PREFIX) == set()
    assert await proxied.blob_names("ExperimentRun/dcid.other_run/") == {"ExperimentRun/dcid.other_run/keep.txt"}
    receipt = await proxied.receipt(request.id)
    assert receipt["totals"] == {"deleted": 300}
    assert proxied.store.verify_audit().ok


async def test_storage_busy_during_an_export_is_retried_and_the_archive_is_whole(
    proxied: Harness, proxy: StorageFaultProxy
) -> None:
    import hashlib
    import io
    import zipfile

    import aiohttp

    files = {f"{PREFIX}outputs/model.bin": bytes(range(256)) * 64, **_run_files(3)}
    await proxied.seed(files)
    request = await proxied.submit(f"export run {RUN}")
    # Reads of the run's blobs and writes of the archive each meet a burst of busy answers.
    proxy.fail_next("GET", r"/dcid\.[^?]*$", status=503, times=2)
    proxy.fail_next("PUT", r"/exports/R-", status=503, times=2)
    await proxied.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await proxied.wait_state(request.id, State.SUCCEEDED)
    assert proxy.pending() == 0 and proxy.injected == 4

    message = await proxied.slack.wait_for(
        lambda: next((m for m in proxied.thread(request.id) if "Export ready" in str(m.get("blocks"))), None)
    )
    link = str(message["blocks"][0]["text"]["text"]).split("<", 1)[1].split("|", 1)[0]
    async with aiohttp.ClientSession() as session, session.get(link) as response:
        assert response.status == 200
        archive = await response.read()
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        manifest = json.loads(zipped.read("manifest.json"))
        members = {name: zipped.read(name) for name in zipped.namelist() if name != "manifest.json"}
    assert members == {f"{proxied.container}/{name}": data for name, data in files.items()}
    for entry in manifest["files"]:
        assert entry["sha256"] == hashlib.sha256(members[entry["path"]]).hexdigest()


# ---- Azure control plane: throttled and unavailable in bursts ---------------------------------


async def test_control_plane_429_and_503_bursts_are_retried_and_the_job_finishes(
    azure_harness: Harness, azure: AzureStandIn
) -> None:
    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    assert workspace is not None
    for name in ("faults-train-1", "faults-train-2"):
        workspace.add_job(name, experiment_name="faults")
    await azure_harness.seed({f"ExperimentRun/dcid.faults-train-{i}/log.txt": b"x" for i in (1, 2)})

    # Listing the jobs is throttled twice (Retry-After: 1 s, which azure-core honours).
    azure.fail_next("GET", r"/jobs$", status=429, times=2, retry_after=1)
    started = time.monotonic()
    request = await azure_harness.submit("delete experiment faults")
    assert time.monotonic() - started >= 2.0  # two Retry-After waits
    # Each job's delete meets the service unavailable twice.
    azure.fail_next("DELETE", r"/jobs/faults-train-1$", status=503, times=2)
    azure.fail_next("DELETE", r"/jobs/faults-train-2$", status=503, times=2)
    await azure_harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await azure_harness.wait_state(request.id, State.SUCCEEDED)

    statuses = [(e.method, e.path.rsplit("/", 1)[-1], e.status) for e in azure.exchanges]
    assert [s for m, p, s in statuses if m == "GET" and p == "jobs"][:3] == [429, 429, 200]
    for job in ("faults-train-1", "faults-train-2"):
        assert [s for m, p, s in statuses if m == "DELETE" and p == job][:2] == [503, 503]
    with azure.state.lock:
        assert not set(workspace.jobs) & {"faults-train-1", "faults-train-2"}
    receipt = await azure_harness.receipt(request.id)
    assert receipt["totals"] == {"deleted": 4}


# ---- Slack: 429 with Retry-After ----------------------------------------------------------------


def _waited_after_429(harness: Harness, method: str) -> list[float] | None:
    """For each 429 answer to `method`, the seconds until the bot sent the same call again (None:
    not all sent again yet)."""
    calls = harness.slack.calls_to(method)
    waits = []
    for i, call in enumerate(calls):
        if call.status == 429:
            again = next((c for c in calls[i + 1 :] if c.args == call.args), None)
            if again is None:
                return None
            waits.append(again.time - call.time)
    return waits


async def test_slack_rate_limits_are_honoured_and_nothing_is_lost(harness: Harness) -> None:
    files = _run_files(3)
    await harness.seed(files)
    harness.slack.rate_limit("chat.postMessage", times=1, retry_after=1)  # the card
    request = await harness.submit(f"delete run {RUN}")
    assert request.card_ts

    # The decision, the progress line, the receipt: each Web API method is throttled once.
    for method in ("chat.postMessage", "chat.update", "files.completeUploadExternal"):
        harness.slack.rate_limit(method, times=1, retry_after=1)
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.SUCCEEDED)
    receipt = await harness.receipt(request.id)
    assert receipt["totals"] == {"deleted": 3}

    for method in ("chat.postMessage", "chat.update", "files.completeUploadExternal"):
        waits = await harness.slack.wait_for(lambda m=method: _waited_after_429(harness, m), description=f"{method} retried")
        assert all(w >= 1.0 for w in waits), (method, waits)  # Retry-After: 1 was honoured
    texts = harness.thread_texts(request.id)
    assert any(":white_check_mark: Finished: 3 of 3 items" in t for t in texts), texts  # the progress line, at its end
    assert any("deletion receipt" in t for t in texts), texts
    assert any("approved by" in t for t in texts), texts  # the decision (it may land after the job's posts)
    assert "Done" in str(harness.card(request.id)["blocks"])  # the card's last update landed
    throttled = [c for c in harness.slack.calls if c.status == 429]
    assert len(throttled) == 4  # every armed fault was met, and each was retried


async def test_slack_rate_limit_past_the_retry_budget_withdraws_the_request_clearly(harness: Harness) -> None:
    await harness.seed(_run_files(1))
    harness.slack.rate_limit("chat.postMessage", times=6, retry_after=0)  # the client retries 5 times
    status, _ = await harness.command(f"delete run {RUN}")
    assert status == 200
    reply = await harness.wait_reply(containing="Slack refused the request card")
    assert "ratelimited" in reply and "nothing will run" in reply
    [request] = harness.store.list_requests()
    assert request.state is State.CANCELLED and harness.store.count_jobs() == 0
    assert harness.slack.messages() == []
    assert harness.store.verify_audit().ok


# ---- the database: locked or failing -----------------------------------------------------------


def _database_path(harness: Harness) -> str:
    path = harness.store.engine.url.database
    assert path, "these tests use the harness's SQLite file"
    return path


@pytest.fixture
def lock_database() -> Iterator[Any]:
    """Holds SQLite's write lock from another connection (another process would) for a while."""
    threads: list[threading.Thread] = []

    def hold(path: str, seconds: float) -> threading.Thread:
        """Returns once the lock is taken; the thread ends when it is given back."""
        taken = threading.Event()

        def run() -> None:
            conn = sqlite3.connect(path, timeout=10, isolation_level=None)
            try:
                conn.execute("BEGIN EXCLUSIVE")
                taken.set()
                time.sleep(seconds)
                conn.execute("COMMIT")
            finally:
                conn.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        assert taken.wait(10), "could not take the database lock"
        return thread

    yield hold
    for thread in threads:
        thread.join(30)


def _short_busy_timeout(harness: Harness, milliseconds: int) -> None:
    """Make the bot give up on a locked database after `milliseconds` (production waits 30 s)."""
    engine = harness.store.engine

    @event.listens_for(engine, "connect")
    def _busy(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={milliseconds}")

    engine.dispose()  # pooled connections reopen with the new timeout


async def test_database_locked_briefly_during_a_command_is_waited_out(harness: Harness, lock_database: Any) -> None:
    await harness.seed(_run_files(2))
    lock_database(_database_path(harness), 1.5)
    started = time.monotonic()
    request = await harness.submit(f"delete run {RUN}")
    assert time.monotonic() - started >= 1.0  # it waited for the lock, then went on
    assert [r.id for r in harness.store.list_requests()] == [request.id]
    assert harness.store.verify_audit().ok

    lock_database(_database_path(harness), 1.0)  # a click meets the lock too
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.SUCCEEDED)
    assert done.approvers == (APPROVER_1,)
    assert harness.events(request.id).count("request.approval") == 1


async def test_database_locked_past_the_timeout_records_nothing_says_so_and_a_resend_lands_once(
    harness: Harness, lock_database: Any, duplicates_ignored: Callable[[int], Awaitable[int]]
) -> None:
    await harness.seed(_run_files(2))
    _short_busy_timeout(harness, 200)
    body = harness.command_body(f"delete run {RUN}")
    lock = lock_database(_database_path(harness), 1.5)
    status, _ = await harness.sender.send(body)
    # Acked before its claim; the claim finds the database locked and the person is told.
    assert status == 200
    assert await harness.wait_reply(REQUESTER, "nothing was recorded")
    await asyncio.to_thread(lock.join)  # the lock is gone
    assert harness.store.list_requests() == [] and harness.slack.messages() == []

    # The failed claim was rolled back with everything else: the same delivery again is a first copy.
    status, _ = await harness.sender.send(body, retry_num=1, retry_reason="http_error")
    assert status == 200
    await harness.slack.wait_for(lambda: [r for r in harness.store.list_requests() if r.card_ts])
    status, _ = await harness.sender.send(body, retry_num=2, retry_reason="http_error")  # a late duplicate
    assert status == 200 and await duplicates_ignored(1) == 1  # dropped once claimed: nothing of it runs later
    [request] = harness.store.list_requests()
    assert request.state is State.PENDING and len(harness.slack.calls_to("chat.postMessage")) == 1
    assert harness.store.verify_audit().ok


async def test_database_locked_past_the_timeout_refuses_an_event_whole_and_slacks_retry_lands_once(
    harness: Harness, lock_database: Any, duplicates_ignored: Callable[[int], Awaitable[int]]
) -> None:
    _short_busy_timeout(harness, 200)
    body = app_home_opened_body(APPROVER_1, TEAM)
    lock = lock_database(_database_path(harness), 1.5)
    status, _ = await harness.sender.send(body, content_type="application/json")
    # An Events API delivery is claimed before its ack: not acknowledged, so Slack delivers it again.
    assert status >= 500
    await asyncio.to_thread(lock.join)
    assert harness.slack.calls_to("views.publish") == []

    for retry in (1, 2):  # Slack's retry lands; a late duplicate is dropped before its 200
        status, _ = await harness.sender.send(body, content_type="application/json", retry_num=retry, retry_reason="http_error")
        assert status == 200
    assert await duplicates_ignored(1) == 1
    await harness.slack.wait_for(lambda: harness.slack.calls_to("views.publish"))
    assert len(harness.slack.calls_to("views.publish")) == 1


async def test_database_locked_while_a_job_checkpoints_is_waited_out_and_the_receipt_is_complete(
    harness: Harness, lock_database: Any
) -> None:
    await harness.seed(_run_files(20))
    request = await harness.submit(f"delete run {RUN}")
    store = harness.store
    original = store.record_items
    locked = []

    def record_items(request_id: str, outcomes: list[tuple[str, str, dict[str, Any]]]) -> None:
        if not locked:  # another writer holds the lock just as the job checkpoints
            locked.append(True)
            lock_database(_database_path(harness), 1.5)
        original(request_id, outcomes)

    store.record_items = record_items  # type: ignore[method-assign]
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.SUCCEEDED)
    assert locked
    receipt = await harness.receipt(request.id)
    assert receipt["totals"] == {"deleted": 20}
    assert len(store.item_outcomes(request.id)) == 20
    assert store.verify_audit().ok


async def test_database_failure_after_the_ack_is_told_to_the_person_and_records_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.seed(_run_files(2))

    def unreachable(**_: Any) -> None:
        raise OperationalError("INSERT INTO requests", {}, Exception("unable to open database file"))

    monkeypatch.setattr(harness.store, "create_request", unreachable)
    status, _ = await harness.command(f"delete run {RUN}")
    assert status == 200
    assert harness.store.list_requests() == [] and harness.slack.messages() == []
    reply = await harness.slack.wait_for(
        lambda: next((r for r in harness.replies() if "database" in r), None), timeout=3, description="a reply about the database"
    )
    assert "nothing" in reply.lower()

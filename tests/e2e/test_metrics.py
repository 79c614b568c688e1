"""/metrics, /healthz and /readyz on the running app, scraped around end-to-end flows.

Counters are per process and the tests share one: each test compares scrapes before and after.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import cards
from bot.lifecycle import State
from sandbox.standins.azure.server import AzureStandIn
from tests.e2e.harness import APPROVER_1, REQUESTER, STRANGER, Harness

RUN = "metrics_train_1700000000_abcd1234"
PREFIX = f"ExperimentRun/dcid.{RUN}/"


class Scrape:
    def __init__(self, text: str) -> None:
        self.samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def __call__(self, name: str, **labels: str) -> float:
        """The sample's value (0 when absent: a labelled series appears with its first event)."""
        return sum(s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items())


def base_url(harness: Harness) -> str:
    return harness.sender.events_url.removesuffix("/slack/events")


async def get(harness: Harness, path: str) -> tuple[int, str, Any]:
    async with aiohttp.ClientSession() as session, session.get(base_url(harness) + path) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def scrape(harness: Harness) -> Scrape:
    status, content_type, text = await get(harness, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=")
    return Scrape(text)


async def test_metrics_move_through_a_deletion_an_export_and_a_refusal(harness: Harness) -> None:
    before = await scrape(harness)
    await harness.seed({f"{PREFIX}logs/{i}.txt": b"x" * 100 for i in range(3)})
    deletion = await harness.submit(f"delete run {RUN}")
    await harness.click(cards.ActionId.APPROVE, deletion.id, REQUESTER)  # refused: one's own deletion
    await harness.wait_reply(REQUESTER, "You cannot approve your own request")
    await harness.click(cards.ActionId.APPROVE, deletion.id, APPROVER_1)
    await harness.wait_state(deletion.id, State.SUCCEEDED)
    await harness.seed({f"ExperimentRun/dcid.export_{RUN}/a.bin": os.urandom(5000)})  # incompressible
    export = await harness.submit(f"export run export_{RUN}")
    await harness.click(cards.ActionId.APPROVE, export.id, APPROVER_1)
    await harness.wait_state(export.id, State.SUCCEEDED)
    after = await scrape(harness)

    def moved(name: str, **labels: str) -> float:
        return after(name, **labels) - before(name, **labels)

    # Requests and decisions
    assert moved("amlbot_slack_deliveries_total", kind="command") == 2
    assert moved("amlbot_slack_deliveries_total", kind="block_actions") == 3
    assert moved("amlbot_slack_ack_seconds_count", kind="block_actions") == 3
    assert after("amlbot_slack_ack_seconds_bucket", kind="command", le="3.0") == after("amlbot_slack_ack_seconds_count", kind="command")
    assert moved("amlbot_approvals_total") == 2
    assert moved("amlbot_refusals_total", event="approve.refused") == 1
    # What the database knows, read at scrape time (this bot's own database)
    assert after("amlbot_requests", action="delete run", state="succeeded") == 1
    assert after("amlbot_requests", action="export run", state="succeeded") == 1
    assert after("amlbot_jobs", state="succeeded") == 2 and after("amlbot_jobs", state="running") == 0
    assert after("amlbot_frozen") == 0 and after("amlbot_jobs_lease_lapsed") == 0
    # Jobs
    assert moved("amlbot_job_duration_seconds_count", action="delete run", state="succeeded") == 1
    assert moved("amlbot_job_items_total", action="delete run", outcome="deleted") == 3
    assert moved("amlbot_job_items_total", action="export run", outcome="exported") == 1
    assert moved("amlbot_exported_bytes_total", action="export run") > 5000  # the zip of 5000 random bytes, and its manifest
    # Calls out
    assert moved("amlbot_slack_call_seconds_count", method="chat.postMessage") >= 4
    assert moved("amlbot_slack_call_seconds_count", method="chat.update") >= 4
    assert moved("amlbot_azure_call_seconds_count", service="storage") >= 4  # list, batch delete, upload, …


async def test_slack_errors_are_counted_by_method_and_error(harness: Harness) -> None:
    before = await scrape(harness)
    harness.slack.fail("chat.postMessage", "not_in_channel")
    await harness.seed({f"{PREFIX}a.txt": b"a"})
    await harness.command(f"delete run {RUN}")
    await harness.wait_reply(REQUESTER, "Slack refused the request card")
    after = await scrape(harness)
    labels = {"method": "chat.postMessage", "error": "not_in_channel"}
    assert after("amlbot_slack_call_errors_total", **labels) - before("amlbot_slack_call_errors_total", **labels) == 1


async def test_azure_errors_and_latency_are_counted_per_try(azure_harness: Harness, azure: AzureStandIn) -> None:
    before = await scrape(azure_harness)
    azure.fail_next("GET", r"/computes/gpu-old$", status=503)  # one failed try, then the retry succeeds
    azure.state.workspace(*_workspace(azure_harness)).add_compute("gpu-old")
    await azure_harness.submit("delete compute gpu-old")
    after = await scrape(azure_harness)
    errors = {"service": "management", "reason": "503"}
    assert after("amlbot_azure_call_errors_total", **errors) - before("amlbot_azure_call_errors_total", **errors) == 1
    tries = after("amlbot_azure_call_seconds_count", service="management", method="GET") - before(
        "amlbot_azure_call_seconds_count", service="management", method="GET"
    )
    assert tries >= 2


def _workspace(harness: Harness) -> tuple[str, str, str]:
    config = harness.bot.services.config.workspaces["dev"]
    return config.subscription_id, config.resource_group, config.workspace_name


async def test_healthz_is_alive_and_readyz_needs_the_database_and_the_worker(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await get(harness, "/healthz"))[0] == 200
    status, _, body = await get(harness, "/readyz")
    assert status == 200 and '"ready": true' in body

    def unreachable() -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(harness.store.engine, "connect", unreachable)
    status, _, body = await get(harness, "/readyz")
    assert status == 503 and "database unreachable: OSError" in body
    monkeypatch.undo()

    harness.bot.worker.stop()
    await harness.bot.worker_task
    status, _, body = await get(harness, "/readyz")
    assert status == 503 and "worker not running" in body and "database" not in body
    assert (await get(harness, "/healthz"))[0] == 200  # alive all the same: readiness is not liveness


async def test_a_stranger_cannot_move_the_request_gauges(harness: Harness) -> None:
    """Refused at submission: counted as a refusal, never as a request."""
    before = await scrape(harness)
    await harness.command(f"delete run {RUN}", user=STRANGER)
    await harness.wait_reply(STRANGER, ":no_entry:")
    after = await scrape(harness)
    assert after("amlbot_refusals_total", event="request.refused") - before("amlbot_refusals_total", event="request.refused") == 1
    assert after("amlbot_requests") == 0


async def test_readyz_waits_for_the_preload_and_says_if_it_failed(harness: Harness) -> None:
    """serve loads the code of requests and jobs in a thread once it listens: a replica takes traffic
    after that, and one whose code cannot load never does."""
    loaded = asyncio.Event()

    async def loading() -> None:
        await loaded.wait()

    harness.bot.warming = asyncio.create_task(loading())
    status, _, body = await get(harness, "/readyz")
    assert status == 503 and "warming up" in body
    assert (await get(harness, "/healthz"))[0] == 200
    loaded.set()
    await harness.bot.warming
    status, _, body = await get(harness, "/readyz")
    assert status == 200 and '"ready": true' in body

    async def broken() -> None:
        raise ImportError("no module named stream_zip")

    harness.bot.warming = asyncio.create_task(broken())
    await asyncio.wait([harness.bot.warming])
    status, _, body = await get(harness, "/readyz")
    assert status == 503 and "could not load the code of requests and jobs: ImportError: no module named stream_zip" in body

"""Socket Mode, as Slack runs it: the bot opens the connection with its app-level token, acks every
envelope, reconnects when Slack asks or the link drops, and its jobs never depend on the link."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import cards
from bot.lifecycle import State
from bot.worker import StoreCheckpoint
from commands.azure.door import ItemResult
from commands.operations import run_data
from tests.e2e.harness import APP_TOKEN, APPROVER_1, REQUESTER, Harness, start_harness, stop_harness

RUN = "socket_train_1700000000_abcd1234"
PREFIX = f"ExperimentRun/dcid.{RUN}/"


@pytest.fixture
async def socket(tmp_path: Path, azurite_connection: str) -> AsyncIterator[Harness]:
    running = await start_harness(tmp_path, azurite_connection, mode="socket")
    yield running
    await stop_harness(running)


async def seed(h: Harness, files: int = 3) -> None:
    await h.seed({f"{PREFIX}logs/part-{i:03}.txt": b"line\n" for i in range(files)})


async def test_the_bot_connects_with_its_app_token_and_acks_every_envelope(socket: Harness) -> None:
    opened = socket.slack.calls_to("apps.connections.open")
    assert [c.headers["Authorization"] for c in opened] == [f"Bearer {APP_TOKEN}"]
    await seed(socket)
    request = await socket.submit(f"delete run {RUN}")
    await socket.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await socket.wait_state(request.id, State.SUCCEEDED)
    # The command and the click were envelopes, each acked once, by its id.
    acked = [a["envelope_id"] for a in socket.slack.socket.acks]
    assert len(acked) == len(set(acked)) == 2


async def test_a_bot_token_cannot_open_a_connection(socket: Harness) -> None:
    response = await socket.bot.app.client.apps_connections_open(app_token=APP_TOKEN)
    assert response["url"].startswith("ws://") and "/link/?ticket=" in response["url"]
    with pytest.raises(Exception, match="not_allowed_token_type"):
        await socket.bot.app.client.api_call("apps.connections.open")  # the bot's own xoxb- token


async def test_slack_asks_for_a_new_connection_and_the_next_command_goes_over_it(socket: Harness) -> None:
    await socket.slack.socket.ask_to_reconnect("refresh_requested")
    await socket.slack.socket.wait_connected(opened=2)
    assert len(socket.slack.calls_to("apps.connections.open")) == 2  # a fresh URL: tickets are single-use
    await seed(socket)
    request = await socket.submit(f"delete run {RUN}")
    assert request.state is State.PENDING


async def test_a_dropped_connection_mid_job_the_job_goes_on_and_the_bot_reconnects(
    socket: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_data, "STEP", 1)  # one blob per step
    gate = asyncio.Event()
    record = StoreCheckpoint.record

    async def record_then_hold(self: StoreCheckpoint, results: dict[str, ItemResult]) -> None:
        await record(self, results)
        await gate.wait()  # the job holds after a step until the link is down

    monkeypatch.setattr(StoreCheckpoint, "record", record_then_hold)
    await seed(socket)
    request = await socket.submit(f"delete run {RUN}")
    await socket.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await socket.slack.wait_for(lambda: len(socket.store.item_outcomes(request.id)) == 1)

    socket.slack.socket.drop()  # no close frame: the network went away
    gate.set()
    done = await socket.wait_state(request.id, State.SUCCEEDED)
    assert await socket.blob_names(PREFIX) == set()
    await socket.receipt(done.id)

    await socket.slack.socket.wait_connected(opened=2)
    answered = len(socket.replies(REQUESTER))
    status, _ = await socket.command("help", REQUESTER)
    assert status == 200
    await socket.slack.wait_for(lambda: len(socket.replies(REQUESTER)) > answered, description="an answer to help")

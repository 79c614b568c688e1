"""Late replies: a response_url takes 5 posts within 30 minutes. An answer that comes later (after a
long preview, say) reaches the person by chat.postEphemeral, never the expired URL.
The stand-in expires response URLs as Slack does; the bot's clock is moved on with it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import pytest

from bot import cards, replies
from bot.requests import Requests
from sandbox.standins.slack_api import RESPONSE_URL_LIFETIME
from tests.e2e.harness import APPROVER_1, CHANNEL, REQUESTER, STRANGER, Harness

RUN = "late_train_1700000000_abcd1234"


@dataclass
class Held:
    """The answer to a command or click, held back until `go` is set."""

    answered: asyncio.Event
    go: asyncio.Event


def hold(monkeypatch: pytest.MonkeyPatch, method: str) -> Held:
    held = Held(asyncio.Event(), asyncio.Event())
    original = getattr(Requests, method)

    async def slow(self: Requests, *args: object) -> str | None:
        reply = await original(self, *args)
        held.answered.set()
        await held.go.wait()
        return reply

    monkeypatch.setattr(Requests, method, slow)
    return held


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The bot's monotonic clock as far as replies go: the test moves it on."""
    now = [1000.0]
    monkeypatch.setattr(replies, "monotonic", lambda: now[0])
    return now


async def half_an_hour_later(h: Harness, held: Held, clock: list[float]) -> None:
    await held.answered.wait()
    clock[0] += RESPONSE_URL_LIFETIME + 1
    h.slack.expire_response_urls()
    held.go.set()


def ephemerals(h: Harness, user: str) -> list[str]:
    return [m["text"] for m in h.slack.ephemerals(CHANNEL, user) if m["via"] == "chat.postEphemeral"]


async def test_a_refusal_after_half_an_hour_comes_by_postephemeral_never_the_expired_url(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, clock: list[float]
) -> None:
    held = hold(monkeypatch, "command")
    status, _ = await harness.command(f"delete run {RUN}", STRANGER)
    assert status == 200
    await half_an_hour_later(harness, held, clock)
    [refusal] = await harness.slack.wait_for(lambda: ephemerals(harness, STRANGER), description="the late refusal")
    assert ":no_entry:" in refusal
    assert harness.slack.response_posts == [] and harness.slack.late_response_posts == []


async def test_a_late_answer_to_a_click_comes_by_postephemeral(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, clock: list[float]
) -> None:
    await harness.seed({f"ExperimentRun/dcid.{RUN}/logs/a.txt": b"a"})
    request = await harness.submit(f"delete run {RUN}")
    held = hold(monkeypatch, "click")
    await harness.click(cards.ActionId.APPROVE, request.id, REQUESTER)  # the requester may not approve their own deletion
    await half_an_hour_later(harness, held, clock)
    [refusal] = await harness.slack.wait_for(lambda: ephemerals(harness, REQUESTER), description="the late refusal")
    assert ":no_entry:" in refusal
    assert harness.slack.late_response_posts == [] and harness.request(request.id).approvers == ()


async def test_a_url_slack_refuses_is_followed_by_postephemeral(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    held = hold(monkeypatch, "command")
    await harness.command(f"delete run {RUN}", STRANGER)
    await held.answered.wait()
    harness.slack.expire_response_urls()  # Slack let it go sooner than the bot counted on
    held.go.set()
    [refusal] = await harness.slack.wait_for(lambda: ephemerals(harness, STRANGER), description="the refusal")
    assert ":no_entry:" in refusal and len(harness.slack.late_response_posts) == 1


async def test_the_standin_takes_five_posts_within_half_an_hour(harness: Harness) -> None:
    url = harness.slack.response_url_for(CHANNEL, user=APPROVER_1)
    async with aiohttp.ClientSession() as session:
        statuses = [(await session.post(url, json={"text": f"{n}"})).status for n in range(6)]
        assert statuses == [200] * 5 + [404]
        fresh = harness.slack.response_url_for(CHANNEL, user=APPROVER_1)
        harness.slack.expire_response_urls()
        assert (await session.post(fresh, json={"text": "late"})).status == 404

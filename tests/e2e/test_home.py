"""The App Home tab through signed Events API deliveries and signed clicks on the tab, against the
running app: what waits for an approver (with working buttons), one's own requests, and the export
links and receipts one may see, kept fresh as requests change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.views import View
from sqlalchemy.exc import OperationalError

from bot import cards
from bot.lifecycle import State
from sandbox.standins.slack_signing import app_home_opened_body, home_click_body
from tests.e2e.harness import APPROVER_1, APPROVER_2, REQUESTER, STRANGER, TEAM, Harness, start_harness, stop_harness
from tests.support.plan_reads import plan_reads

pytestmark = pytest.mark.both_modes  # the tab over signed HTTP and over Socket Mode alike

RUN = "home_train_1700000000_abcd1234"
PREFIX = f"ExperimentRun/dcid.{RUN}/"


def app_home_opened(user: str, tab: str = "home") -> bytes:
    return app_home_opened_body(user, TEAM, tab=tab)


def home_click(action_id: str, value: str, user: str) -> bytes:
    return home_click_body(action_id, value, user, TEAM)


async def open_home(harness: Harness, user: str) -> dict[str, Any]:
    publishes = len([c for c in harness.slack.calls_to("views.publish") if c.args.get("user_id") == user])
    status, _ = await harness.sender.send(app_home_opened(user), content_type="application/json")
    assert status == 200
    return await next_home(harness, user, publishes)


async def next_home(harness: Harness, user: str, after: int) -> dict[str, Any]:
    """The view of the publish after the first `after` ones for `user`."""
    def published() -> dict[str, Any] | None:
        calls = [c for c in harness.slack.calls_to("views.publish") if c.args.get("user_id") == user]
        return calls[after].args["view"] if len(calls) > after and calls[after].ok else None

    return await harness.slack.wait_for(published, description=f"a Home tab published for {user}")


def publishes(harness: Harness, user: str) -> int:
    return len([c for c in harness.slack.calls_to("views.publish") if c.args.get("user_id") == user])


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def buttons(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["action_id"], e["value"]) for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def test_an_approver_sees_what_waits_for_them_with_the_cards_buttons(harness: Harness) -> None:
    await harness.seed({f"{PREFIX}logs/a.txt": b"a" * 10})
    request = await harness.submit(f"delete run {RUN}")

    view = await open_home(harness, APPROVER_1)
    View(**view).validate_json()  # Slack's own limits, as slack_sdk knows them
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    assert buttons(view) == [(cards.ActionId.APPROVE, request.id), (cards.ActionId.REJECT, request.id)]
    card_buttons = [e for b in harness.card(request.id)["blocks"] if b["type"] == "actions" for e in b["elements"]][:2]
    assert [b for b in view["blocks"] if b["type"] == "actions"][0]["elements"] == card_buttons  # the very same buttons
    # The card's headline and warning, and a link to the card: nobody approves blind.
    assert f"*Delete run {RUN} — 1 file, 10 B — workspace dev*" in text_of(view)
    assert f"{request.id} for <@{REQUESTER}> · 0 of 1 approvals" in text_of(view) and "*Deletion*" in text_of(view)
    permalink = (await harness.bot.publisher.client.chat_getPermalink(channel=request.channel_id, message_ts=request.card_ts))["permalink"]
    assert f"<{permalink}|Open its card>" in text_of(view)

    mine = await open_home(harness, REQUESTER)
    assert buttons(mine) == []  # nobody approves their own deletion
    assert f"{request.id}" in text_of(mine) and "Waiting for approval" in text_of(mine)
    assert "Nothing waits for you." in text_of(await open_home(harness, STRANGER))


async def test_approving_from_the_home_tab_runs_the_request_and_refreshes_the_tabs(harness: Harness) -> None:
    await harness.seed({f"{PREFIX}logs/a.txt": b"a" * 10})
    request = await harness.submit(f"delete run {RUN}")
    await open_home(harness, REQUESTER)
    await open_home(harness, APPROVER_1)
    seen = publishes(harness, REQUESTER)

    status, _ = await harness.sender.send(home_click(cards.ActionId.APPROVE, request.id, APPROVER_1))
    assert status == 200
    done = await harness.wait_state(request.id, State.SUCCEEDED)
    assert done.approvers == (APPROVER_1,)
    await harness.slack.wait_for(lambda: "Done" in json.dumps(harness.card(request.id)["blocks"]))  # the card moved too
    assert "request.approved" in harness.events(request.id)

    # The requester did nothing: their open tab followed the request to its receipt.
    def requester_tab_says_done() -> bool:
        calls = [c for c in harness.slack.calls_to("views.publish") if c.args.get("user_id") == REQUESTER][seen:]
        return any("Done" in text_of(c.args["view"]) and ":receipt:" in text_of(c.args["view"]) for c in calls)

    await harness.slack.wait_for(requester_tab_says_done, description="the requester's tab showing the receipt")
    approver = await open_home(harness, APPROVER_1)
    assert buttons(approver) == [] and "Nothing waits for you." in text_of(approver)
    assert f"`amlbot audit show {request.id}`" in text_of(approver)  # they approved it: they see its receipt


async def test_copies_of_a_click_on_the_tab_approve_once(harness: Harness, duplicates_ignored: Callable[[int], Awaitable[int]]) -> None:
    await harness.seed({f"{PREFIX}logs/a.txt": b"a"})
    request = await harness.submit(f"delete run {RUN}")
    body = home_click(cards.ActionId.APPROVE, request.id, APPROVER_1)  # the same signed bytes, three times
    statuses = await asyncio.gather(*(harness.sender.send(body) for _ in range(2)))
    statuses.append(await harness.sender.send(body))
    assert {status for status, _ in statuses} == {200}
    assert await duplicates_ignored(2) == 2
    await harness.wait_state(request.id, State.SUCCEEDED)
    assert harness.events(request.id).count("request.approval") == 1
    assert "approve.refused" not in harness.events(request.id)


async def test_a_click_on_the_tab_is_checked_like_any_other_and_answered_on_the_tab(harness: Harness) -> None:
    await harness.seed({f"{PREFIX}logs/a.txt": b"a"})
    request = await harness.submit(f"delete run {RUN}")
    seen = publishes(harness, STRANGER)
    await harness.sender.send(home_click(cards.ActionId.APPROVE, request.id, STRANGER))
    view = await next_home(harness, STRANGER, seen)
    assert view["blocks"][1] == cards.section(":no_entry: You are not an approver.")  # on top, under the title
    assert harness.request(request.id).state is State.PENDING
    refused = [e for e in harness.store.audit_entries(request.id) if e.event == "approve.refused"]
    assert [(e.actor, e.channel_id) for e in refused] == [(STRANGER, "app_home")]

    seen = publishes(harness, STRANGER)
    await harness.sender.send(home_click(cards.ActionId.APPROVE, "R-NOTHERE", STRANGER))
    assert "does not name a request" in text_of(await next_home(harness, STRANGER, seen))


async def test_a_database_failure_on_a_tab_click_is_told_on_the_tab(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    await harness.seed({f"{PREFIX}logs/a.txt": b"a"})
    request = await harness.submit(f"delete run {RUN}")

    def unreachable(*_: Any, **__: Any) -> None:
        raise OperationalError("SELECT requests", {}, Exception("unable to open database file"))

    monkeypatch.setattr(harness.store, "get", unreachable)
    seen = publishes(harness, APPROVER_1)
    status, _ = await harness.sender.send(home_click(cards.ActionId.APPROVE, request.id, APPROVER_1))
    assert status == 200
    assert "database is unavailable" in text_of(await next_home(harness, APPROVER_1, seen))
    monkeypatch.undo()
    assert harness.request(request.id).state is State.PENDING and harness.request(request.id).approvers == ()


@pytest.fixture
async def two_approvals(tmp_path: Path, azurite_connection: str) -> AsyncIterator[Harness]:
    running = await start_harness(tmp_path, azurite_connection, approvals_required={"delete run": 2})
    yield running
    await stop_harness(running)


async def test_a_partial_approval_says_so_on_the_tab(two_approvals: Harness) -> None:
    h = two_approvals
    await h.seed({f"{PREFIX}logs/a.txt": b"a"})
    request = await h.submit(f"delete run {RUN}")
    seen = publishes(h, APPROVER_1)
    await h.sender.send(home_click(cards.ActionId.APPROVE, request.id, APPROVER_1))
    answer = f"Your approval of {request.id} is recorded: 1 of 2."

    def answered() -> bool:
        calls = [c for c in h.slack.calls_to("views.publish") if c.args.get("user_id") == APPROVER_1][seen:]
        return any(answer in text_of(c.args["view"]) for c in calls)

    await h.slack.wait_for(answered, description="the answer on the approver's tab")
    assert buttons(await open_home(h, APPROVER_2)) == [(cards.ActionId.APPROVE, request.id), (cards.ActionId.REJECT, request.id)]
    assert buttons(await open_home(h, APPROVER_1)) == []  # approved once already


async def test_export_links_are_shown_to_those_who_may_see_them(harness: Harness) -> None:
    await harness.seed({f"{PREFIX}outputs/model.bin": b"m" * 2048})
    request = await harness.submit(f"export run {RUN}")
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.SUCCEEDED)
    link = harness.request(request.id).result["extras"]["link"]  # type: ignore[index]

    assert "Download the archive" in text_of(mine := await open_home(harness, REQUESTER)) and link in text_of(mine)
    assert link in text_of(await open_home(harness, APPROVER_1))
    stranger = await open_home(harness, STRANGER)
    assert link not in text_of(stranger) and "No export or receipt of yours yet." in text_of(stranger)


async def test_only_the_home_tab_and_each_delivery_once(harness: Harness) -> None:
    await harness.sender.send(app_home_opened(APPROVER_2, tab="messages"), content_type="application/json")
    body = app_home_opened(APPROVER_2)
    for retry in (None, 1):  # Slack's retry of the same event: the tab is published once
        status, _ = await harness.sender.send(body, content_type="application/json", retry_num=retry)
        assert status == 200
    await next_home(harness, APPROVER_2, 0)
    assert publishes(harness, APPROVER_2) == 1
    assert harness.slack.calls_to("chat.postMessage") == []  # nothing posted anywhere


async def test_clicks_status_lists_and_tabs_never_read_a_plan_only_its_job_does(two_approvals: Harness) -> None:
    """Decoding the plan of a big request holds the GIL for most of a second, stalling every ack of
    the process: only the job reads it (its card summary was made from the plan as it was planned)."""
    h = two_approvals
    await h.seed({f"{PREFIX}logs/{i}.txt": b"x" for i in range(40)})
    request = await h.submit(f"delete run {RUN}")
    assert request.plan_items == 40 and request.plan is not None and len(request.plan["items"]) == 40
    with plan_reads(h.store.engine) as read:
        assert (await h.click(cards.ActionId.APPROVE, request.id, APPROVER_1))[0] == 200
        await h.wait_reply(APPROVER_1, "recorded: 1 of 2")
        await h.command(f"status {request.id}", APPROVER_2)
        await h.wait_reply(APPROVER_2, "1 of 2 approvals")
        await h.command("list pending", APPROVER_2)
        await h.wait_reply(APPROVER_2, f"*{request.id}*")
        assert buttons(await open_home(h, APPROVER_2)) == [(cards.ActionId.APPROVE, request.id), (cards.ActionId.REJECT, request.id)]
        await h.slack.wait_for(lambda: "1 of 2" in json.dumps(h.card(request.id)["blocks"]), description="the card refreshed")
        assert read == []
        await h.sender.send(home_click(cards.ActionId.APPROVE, request.id, APPROVER_2))
        await h.wait_state(request.id, State.SUCCEEDED)
        await h.slack.wait_for(lambda: "Done" in json.dumps(h.card(request.id)["blocks"]), description="the card done")
    assert len(read) == 1  # the job's, which checks it against its hash before running it

"""The request lifecycle's rules, proven through signed requests against the running app.

Each test drives the real app (Bolt on aiohttp, SQLite, the worker) with Slack-signed HTTP
requests; Slack is the Web API stand-in and storage is Azurite. Rules are numbered as in the
lifecycle issue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot import cards
from bot.cli import main as amlbot
from bot.lifecycle import FINAL, State
from bot.worker import StoreCheckpoint
from commands import receipts
from commands.azure.door import ItemResult, Status
from commands.intents import Action, Intent, Kind, Verb
from commands.operations import OPERATIONS, run_data
from commands.operations.base import Checkpoint, Context, Execution
from commands.plan import ItemKind, Plan, PlanItem
from commands.signing import Keyring, SigningKey
from tests.e2e.harness import (
    ADMIN,
    APPROVER_1,
    APPROVER_2,
    CHANNEL,
    ONCALL,
    REQUESTER,
    STRANGER,
    Harness,
    Mode,
    start_harness,
    stop_harness,
)

RUN = "lifecycle_train_1700000000_abcd1234"
PREFIX = f"ExperimentRun/dcid.{RUN}/"
OTHER_CHANNEL = "C0ELSEWHERE"
APPROVERS_CHANNEL = "C0APPROVE1"
AUDIT_KEY = "test-audit-key"  # what start_harness signs with
CARD_TEXT = re.compile(r".* \((R-\w+)\): (\w+)")

MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(tmp_path: Path, azurite_connection: str, slack_mode: Mode) -> AsyncIterator[MakeHarness]:
    """A running bot with its own policy (keys of `policy:` in the config file)."""
    started: list[Harness] = []

    async def make(**policy: Any) -> Harness:
        home = tmp_path / f"bot{len(started)}"
        home.mkdir()
        started.append(await start_harness(home, azurite_connection, mode=slack_mode, **policy))
        return started[-1]

    yield make
    for running in started:
        await stop_harness(running)


async def seed_run(h: Harness, files: int = 3) -> dict[str, bytes]:
    blobs = {f"{PREFIX}logs/part-{i:03}.txt": f"line {i}\n".encode() for i in range(files)}
    await h.seed(blobs)
    return blobs


def buttons(h: Harness, request_id: str) -> list[str]:
    return [e["action_id"] for b in h.card(request_id)["blocks"] if b["type"] == "actions" for e in b["elements"]]


def card_says(h: Harness, request_id: str) -> str:
    return json.dumps(h.card(request_id)["blocks"], ensure_ascii=False)


def private_replies(h: Harness, user: str) -> list[dict[str, Any]]:
    return [p.body for p in h.slack.response_posts if p.user == user]


async def click(h: Harness, action_id: str, request_id: str, user: str) -> int:
    status, _ = await h.click(action_id, request_id, user)
    return status


def count_decided(h: Harness, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many clicks and reject forms the bot has finished deciding from now on. Each is acked at
    once and decided after: a race is over, losers included, when this reaches the number sent."""
    decided = 0
    for name in ("click", "reject"):
        real = getattr(h.bot.requests, name)

        async def counted(*args: Any, real: Callable[..., Awaitable[Any]] = real, **kwargs: Any) -> Any:
            nonlocal decided
            try:
                return await real(*args, **kwargs)
            finally:
                decided += 1

        monkeypatch.setattr(h.bot.requests, name, counted)
    return lambda: decided


def watch_card_edits(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Check each card edit as it leaves for Slack: the state it shows must already be committed.

    Returns the problems found (a list that stays empty when the rule holds)."""
    client = h.bot.publisher.client
    send = client.chat_update
    problems: list[str] = []

    async def checked(**kwargs: Any) -> Any:
        if kwargs.get("ts") not in {r.card_ts for r in h.store.list_requests(limit=None)}:
            return await send(**kwargs)  # a job's progress line, not a card
        match = CARD_TEXT.fullmatch(kwargs["text"])
        if match is None:
            problems.append(f"a card edit without its state: {kwargs['text']!r}")
        elif match.group(2) not in {entry.outcome for entry in h.store.audit_entries(match.group(1))}:
            problems.append(f"card of {match.group(1)} said {match.group(2)} before the store did")
        return await send(**kwargs)

    monkeypatch.setattr(client, "chat_update", checked)
    return problems


# ---- rule 1: a persisted state machine, each move committed before Slack hears of it --------------


async def test_each_state_is_committed_before_the_card_shows_it(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    problems = watch_card_edits(harness, monkeypatch)
    await seed_run(harness)
    request = await harness.submit(f"delete run {RUN}")
    await click(harness, cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.SUCCEEDED)
    await harness.slack.wait_for(lambda: "Done" in card_says(harness, request.id))

    outcomes = [e.outcome for e in harness.store.audit_entries(request.id)]
    assert outcomes == ["pending", "recorded", "queued", "running", "succeeded"]
    assert problems == []
    card_edits = [c for c in harness.slack.calls_to("chat.update") if c.args["ts"] == request.card_ts]
    shown = [CARD_TEXT.fullmatch(c.args["text"]).group(2) for c in card_edits]  # type: ignore[union-attr]
    assert shown[-1] == "succeeded" and "pending" not in shown


@pytest.mark.both_modes
async def test_illegal_moves_are_refused_clearly_and_change_nothing(harness: Harness) -> None:
    await seed_run(harness)
    request = await harness.submit(f"delete run {RUN}")
    await harness.reject(request.id, APPROVER_2)
    before = harness.store.audit_entries(request.id)

    assert await click(harness, cards.ActionId.APPROVE, request.id, APPROVER_1) == 200
    assert f"{request.id} was already rejected by <@{APPROVER_2}>." in await harness.wait_reply(APPROVER_1, request.id)
    await harness.command(f"cancel {request.id}")
    assert f"{request.id} was already rejected by <@{APPROVER_2}>." in await harness.wait_reply(REQUESTER, ":no_entry:")

    after = harness.request(request.id)
    assert after.state is State.REJECTED and after.approvers == () and harness.store.count_jobs() == 0
    events = harness.events(request.id)
    assert events[: len(before)] == [e.event for e in before]
    assert events[len(before):] == ["approve.refused", "cancel.refused"]  # refused moves change no state
    assert len(await harness.blob_names(PREFIX)) == 3


async def test_racing_decisions_leave_one_consistent_outcome(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    await seed_run(harness)
    request = await harness.submit(f"delete run {RUN}")
    # A rejection happens when its form is sent: four forms, open before the race, are sent in it.
    forms = [await harness.open_reject_form(request.id, APPROVER_2) for _ in range(4)]
    decided = count_decided(harness, monkeypatch)
    clicks = [
        *(click(harness, cards.ActionId.APPROVE, request.id, APPROVER_1) for _ in range(4)),
        *(harness.send_form(form, APPROVER_2, "racing") for form in forms),
        *(click(harness, cards.ActionId.CANCEL, request.id, REQUESTER) for _ in range(4)),
    ]
    assert set(await asyncio.gather(*clicks)) == {200}
    final = await harness.wait_state(request.id, *FINAL)
    await harness.slack.wait_for(lambda: decided() == len(clicks), description="every click and form decided")
    await harness.slack.wait_for(lambda: CARD_TEXT.fullmatch(harness.card(final.id)["text"]).group(2) == final.state.value)  # type: ignore[union-attr]

    events = harness.events(request.id)
    decisions = [e for e in events if e in ("request.approved", "request.rejected", "request.cancelled")]
    # Approve and reject both need a pending request: only one of them can ever win.
    assert not {"request.approved", "request.rejected"} <= set(decisions)
    assert len(decisions) == len(set(decisions)) and decisions
    started = events.count("job.started")
    assert started == (1 if final.state in (State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED) else 0)
    assert harness.store.count_jobs() == ("request.approved" in decisions)
    if final.state in (State.REJECTED, State.CANCELLED):
        assert len(await harness.blob_names(PREFIX)) == 3  # nothing ran
    if final.state is State.SUCCEEDED:
        assert await harness.blob_names(PREFIX) == set()
    posts = harness.thread_texts(request.id)
    assert sum("is approved by" in t for t in posts) == decisions.count("request.approved")
    assert sum("was rejected" in t for t in posts) == decisions.count("request.rejected")
    assert sum("was cancelled" in t for t in posts) == decisions.count("request.cancelled")


async def test_a_slack_failure_after_a_commit_never_undoes_it(harness: Harness) -> None:
    await seed_run(harness)
    harness.slack.fail("chat.postMessage", "not_in_channel")
    await harness.command(f"delete run {RUN}")
    reply = await harness.wait_reply(REQUESTER, "Slack refused the request card")
    assert "not_in_channel" in reply and "nothing will run" in reply
    [withdrawn] = harness.store.list_requests()
    assert withdrawn.state is State.CANCELLED and harness.events(withdrawn.id)[-1] == "request.card_failed"

    request = await harness.submit(f"delete run {RUN}")
    harness.slack.fail("chat.update", times=1)
    await click(harness, cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.SUCCEEDED)  # the lost card edit did not stop the job
    await harness.slack.wait_for(lambda: "Done" in card_says(harness, request.id))  # and a later edit told the truth


# ---- rule 2: policy on every command and click; refusals private and audited ---------------------


async def test_requests_are_checked_for_who_where_and_which_workspace(make_harness: MakeHarness) -> None:
    h = await make_harness(
        requesters={
            "delete run": {"groups": ["SDELETERS"], "channels": [CHANNEL], "workspaces": ["dev"]},
            # A rule may only name workspaces the file defines (the config is refused otherwise), and
            # this one defines `dev` alone: limiting a rule by workspace is in tests/unit/test_policy.py.
            "export *": {"users": [APPROVER_1], "workspaces": ["dev"]},
        }
    )
    h.slack.add_usergroup("SDELETERS", [REQUESTER])
    await seed_run(h)

    await h.command(f"delete run {RUN}", user=STRANGER)
    assert "You are not allowed to request `delete run`" in await h.wait_reply(STRANGER, ":no_entry:")
    await h.command(f"delete run {RUN}", channel=OTHER_CHANNEL)
    assert "cannot be requested in this channel" in await h.wait_reply(REQUESTER, ":no_entry:")
    await h.command(f"export run {RUN}")
    assert "You are not allowed to request `export run`" in await h.wait_reply(REQUESTER, "export run")
    request = await h.submit(f"delete run {RUN}")  # in the group, in the channel, on `dev`

    assert [r.id for r in h.store.list_requests()] == [request.id]
    refusals = [p for p in h.slack.response_posts if ":no_entry:" in p.body.get("text", "")]
    assert len(refusals) == 3 and all(p.body["response_type"] == "ephemeral" for p in refusals)
    assert [c.args.get("channel") for c in h.slack.calls_to("chat.postMessage")] == [CHANNEL]  # only the card
    refused = [e for e in h.store.audit_entries() if e.event == "request.refused"]
    assert [e.actor for e in refused] == [STRANGER, REQUESTER, REQUESTER]
    assert len(h.slack.calls_to("usergroups.users.list")) == 1  # group members are cached


async def test_approvers_by_group_and_never_the_requester_of_a_deletion(make_harness: MakeHarness) -> None:
    h = await make_harness(admins=[], approvers={"groups": ["SAPPROVERS"]})  # the stand-in's SAPPROVERS: APPROVER_1
    await seed_run(h)
    request = await h.submit(f"delete run {RUN}")
    # The card asks the approvers' group, not each member (and not APPROVER_2, who is in no rule).
    assert "Approvers: <!subteam^SAPPROVERS>" in card_says(h, request.id) and f"<@{APPROVER_2}>" not in card_says(h, request.id)

    await click(h, cards.ActionId.APPROVE, request.id, REQUESTER)
    assert "You cannot approve your own request" in await h.wait_reply(REQUESTER, ":no_entry:")
    await click(h, cards.ActionId.APPROVE, request.id, APPROVER_2)
    assert "You are not an approver" in await h.wait_reply(APPROVER_2, ":no_entry:")
    assert h.request(request.id).state is State.PENDING

    # The only approver asks: nobody else could approve, so it is refused at once, not left waiting.
    await h.seed({"ExperimentRun/dcid.other_run/a.txt": b"a"})
    await h.command("delete run other_run", user=APPROVER_1)
    assert "needs 1 approval(s) from someone other than you" in await h.wait_reply(APPROVER_1, ":no_entry:")
    assert len(h.store.list_requests()) == 1

    await click(h, cards.ActionId.APPROVE, request.id, APPROVER_1)
    await h.wait_state(request.id, State.SUCCEEDED)
    events = h.events()
    assert events.count("approve.refused") == 2 and events.count("request.refused") == 1


@pytest.mark.both_modes
async def test_n_distinct_approvals(make_harness: MakeHarness) -> None:
    h = await make_harness(approvals_required={"delete run": 2})
    await seed_run(h)
    request = await h.submit(f"delete run {RUN}")
    assert "0 of 2" in card_says(h, request.id)
    await click(h, cards.ActionId.APPROVE, request.id, APPROVER_1)
    assert "1 of 2" in await h.wait_reply(APPROVER_1, "recorded")
    await click(h, cards.ActionId.APPROVE, request.id, APPROVER_1)
    await h.wait_reply(APPROVER_1, "You have already approved")
    assert h.request(request.id).state is State.PENDING and "1 of 2" in card_says(h, request.id)
    await click(h, cards.ActionId.APPROVE, request.id, APPROVER_2)
    done = await h.wait_state(request.id, State.SUCCEEDED)
    assert done.approvers == (APPROVER_1, APPROVER_2)


class FakeComputeCleanup:
    """A stand-in cleanup whose plan has as many items as `--idle` has days: the cap is the point."""

    action = Action(Verb.CLEANUP, Kind.COMPUTES)

    async def preview(self, intent: Intent, ctx: Context) -> Plan:
        assert intent.idle is not None
        items = tuple(PlanItem(ItemKind.RESOURCE, f"/computes/idle-{i}") for i in range(intent.idle.days))
        return Plan(action=self.action, workspace=ctx.alias, target="idle computes", items=items)

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution:
        results = {item.key: ItemResult(Status.DELETED) for item in plan.items}
        await checkpoint.record(results)
        return Execution(results)


async def test_oncall_self_approves_cleanups_only_under_the_cap(make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPERATIONS, FakeComputeCleanup.action, FakeComputeCleanup())
    h = await make_harness(oncall_self_approval_cap=2)

    small = await h.submit("cleanup computes --idle 2d", user=ONCALL)
    await click(h, cards.ActionId.APPROVE, small.id, ONCALL)
    assert (await h.wait_state(small.id, State.SUCCEEDED)).approvers == (ONCALL,)

    big = await h.submit("cleanup computes --idle 3d", user=ONCALL)
    await click(h, cards.ActionId.APPROVE, big.id, ONCALL)
    assert "You cannot approve your own request" in await h.wait_reply(ONCALL, ":no_entry:")
    others = await h.submit("cleanup computes --idle 1d", user=REQUESTER)  # not on call: no self-approval
    await click(h, cards.ActionId.APPROVE, others.id, REQUESTER)
    await h.slack.wait_for(lambda: len([r for r in h.replies(REQUESTER) if ":no_entry:" in r]) == 1)
    assert h.request(big.id).state is State.PENDING and h.request(others.id).state is State.PENDING

    await click(h, cards.ActionId.APPROVE, big.id, APPROVER_1)
    await h.wait_state(big.id, State.SUCCEEDED)
    await h.wait_thread(big.id, "deletion receipt")


async def test_help_lists_only_what_each_user_may_run_here(make_harness: MakeHarness) -> None:
    h = await make_harness(
        requesters={"delete run": {"users": [REQUESTER], "channels": [CHANNEL]}, "export *": {"users": [REQUESTER, STRANGER]}}
    )

    async def help_for(user: str, channel: str = CHANNEL) -> str:
        await h.command("help", user=user, channel=channel)
        reply = await h.wait_reply(user, "What you can run here")
        h.slack.response_posts.clear()
        return reply

    mine = await help_for(REQUESTER)
    assert "/aml delete run" in mine and "/aml export run" in mine and "/aml cancel" in mine
    assert "/aml freeze" not in mine and "/aml delete compute" not in mine
    listed = re.findall(r"/aml (\w+ \w+)", mine)
    assert all(Action.parse(action) in OPERATIONS for action in listed)  # allowed but not available: not offered
    elsewhere = await help_for(REQUESTER, OTHER_CHANNEL)
    assert "/aml delete run" not in elsewhere and "/aml export run" in elsewhere
    stranger = await help_for(STRANGER)
    assert "/aml export run" in stranger and "/aml delete" not in stranger
    approver = await help_for(APPROVER_1)
    assert "/aml cancel" in approver and "/aml export" not in approver and "/aml delete" not in approver
    admin = await help_for(ADMIN)
    assert "/aml freeze" in admin and "/aml unfreeze" in admin
    assert "*Follow requests*" in mine and "` — where a request stands" in mine  # grouped, a line each

    # Did-you-mean offers only what the asker may run.
    await h.command(f"delte run {RUN}", user=STRANGER)
    refused = await h.wait_reply(STRANGER, "Unknown command")
    assert "Did you mean" not in refused and "/aml delete" not in refused and "/aml help" in refused
    await h.command(f"delte run {RUN}", user=REQUESTER)
    assert "Did you mean `delete run`?" in await h.wait_reply(REQUESTER, "Unknown command")


# ---- rule 3: cards tell the truth; the requester hears of every decision; approvers named once --


@pytest.mark.both_modes
async def test_cards_tell_the_truth_and_the_requester_hears_each_decision(make_harness: MakeHarness) -> None:
    h = await make_harness(approvals_required={"delete run": 2})
    await seed_run(h)
    request = await h.submit(f"delete run {RUN} --workspace dev")
    card = card_says(h, request.id)
    for fact in (f"<@{REQUESTER}>", f"/aml delete run {RUN} --workspace dev", "workspace dev", "3 files", f"• {RUN} (3 files", "0 of 2"):
        assert fact in card
    asked = card.split("Approvers: ")[1].split('"')[0]
    assert asked == f"<@{APPROVER_1}> <@{APPROVER_2}>"  # those who may approve it: not its requester, not the admin
    assert buttons(h, request.id) == [cards.ActionId.APPROVE, cards.ActionId.REJECT, cards.ActionId.CANCEL]

    await click(h, cards.ActionId.APPROVE, request.id, APPROVER_1)
    await h.slack.wait_for(lambda: "1 of 2" in card_says(h, request.id))
    assert f"approved so far by <@{APPROVER_1}>" in card_says(h, request.id)
    await click(h, cards.ActionId.APPROVE, request.id, APPROVER_2)
    await h.wait_state(request.id, State.SUCCEEDED)
    await h.slack.wait_for(lambda: "Done" in card_says(h, request.id))
    card = card_says(h, request.id)
    assert f"approved by <@{APPROVER_1}>, <@{APPROVER_2}> <!date^" in card and buttons(h, request.id) == []
    assert f"<@{REQUESTER}> {request.id} is approved by" in await h.wait_thread(request.id, "is approved by")

    await seed_run(h)
    rejected = await h.submit(f"delete run {RUN}")
    await h.reject(rejected.id, APPROVER_1, "the <run> is still needed for the audit")
    await h.slack.wait_for(lambda: "Rejected" in card_says(h, rejected.id))
    assert f"by <@{APPROVER_1}> <!date^" in card_says(h, rejected.id) and buttons(h, rejected.id) == []
    # The reason reaches the requester (mentioned in the thread) and the audit log.
    told = await h.wait_thread(rejected.id, f"<@{REQUESTER}> {rejected.id} was rejected by <@{APPROVER_1}>")
    assert told.endswith(": “the &lt;run&gt; is still needed for the audit”")
    [entry] = [e for e in h.store.audit_entries(rejected.id) if e.event == "request.rejected"]
    assert json.loads(entry.detail)["reason"] == "the <run> is still needed for the audit"


async def test_approvers_channel_gets_one_short_post_linking_to_the_card(make_harness: MakeHarness) -> None:
    h = await make_harness(approvers_channel=APPROVERS_CHANNEL)
    await seed_run(h)
    request = await h.submit(f"delete run {RUN}")
    notice = await h.slack.wait_for(lambda: h.slack.messages(APPROVERS_CHANNEL))
    card_ts = request.card_ts or ""
    assert request.id in notice[0]["text"] and f"<#{CHANNEL}>" in notice[0]["text"]
    assert f"/archives/{CHANNEL}/p{card_ts.replace('.', '')}" in notice[0]["text"]  # chat.getPermalink's link

    await click(h, cards.ActionId.APPROVE, request.id, APPROVER_1)
    await h.wait_state(request.id, State.SUCCEEDED)
    await h.wait_thread(request.id, "deletion receipt")
    assert len(h.slack.messages(APPROVERS_CHANNEL)) == 1  # one post, not a stream
    in_channel = [m for m in h.slack.messages(CHANNEL) if not m.get("thread_ts")]
    assert len(in_channel) == 1  # the card is the one post that names the approvers in the channel


# ---- rule 4: exactly once ---------------------------------------------------------------------------


@pytest.mark.both_modes
async def test_a_retried_delivery_never_runs_work_twice(harness: Harness) -> None:
    await seed_run(harness)
    command = harness.command_body(f"delete run {RUN}")
    statuses = [await harness.sender.send(command)]
    statuses += await asyncio.gather(*(harness.sender.send(command, retry_num=n, retry_reason="http_timeout") for n in (1, 2, 3)))
    assert {status for status, _ in statuses} == {200}
    await harness.wait_reply(REQUESTER, "is waiting for approval")
    [request] = harness.store.list_requests()

    approve = harness.click_body(cards.ActionId.APPROVE, request.id, APPROVER_1, card_ts=harness.request(request.id).card_ts or "")
    sends = [harness.sender.send(approve, retry_num=n or None) for n in range(4)]  # the first and three retries, at once
    assert {status for status, _ in await asyncio.gather(*sends)} == {200}
    await harness.wait_state(request.id, State.SUCCEEDED)
    await harness.wait_thread(request.id, "deletion receipt")
    assert harness.store.count_jobs() == 1
    assert harness.events(request.id).count("request.approval") == 1
    assert harness.events(request.id).count("job.started") == 1
    assert sum("is approved by" in t for t in harness.thread_texts(request.id)) == 1


async def test_thirty_concurrent_clicks_give_exactly_one_job(make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    h = await make_harness(approvals_required={"delete run": 2})
    await seed_run(h)
    request = await h.submit(f"delete run {RUN}")
    decided = count_decided(h, monkeypatch)
    clickers = [APPROVER_1, APPROVER_2] * 14 + [REQUESTER, STRANGER]
    statuses = await asyncio.gather(*(click(h, cards.ActionId.APPROVE, request.id, user) for user in clickers))
    assert set(statuses) == {200}
    done = await h.wait_state(request.id, State.SUCCEEDED)
    await h.wait_thread(request.id, "deletion receipt")
    await h.slack.wait_for(lambda: decided() == len(clickers), description="every click decided")

    assert h.store.count_jobs() == 1
    assert sorted(done.approvers) == [APPROVER_1, APPROVER_2]
    assert sum("is approved by" in t for t in h.thread_texts(request.id)) == 1
    events = h.events(request.id)
    assert events.count("request.approved") == 1 and events.count("job.started") == 1
    assert await h.blob_names(PREFIX) == set()
    await h.slack.wait_for(lambda: "Done" in card_says(h, request.id))
    assert h.store.verify_audit().ok


# ---- rule 5: timers -----------------------------------------------------------------------------


async def test_a_pending_request_is_reminded_then_expires(make_harness: MakeHarness) -> None:
    h = await make_harness(expiry="2s", reminder_before="1s")
    await seed_run(h)
    request = await h.submit(f"delete run {RUN}")
    await h.wait_thread(request.id, "Reminder:")
    assert h.request(request.id).state is State.PENDING  # the reminder comes before the end

    await h.wait_state(request.id, State.EXPIRED, timeout=5)
    await h.slack.wait_for(lambda: "Expired — nothing was run" in card_says(h, request.id))
    assert buttons(h, request.id) == []
    await h.wait_thread(request.id, f"<@{REQUESTER}> {request.id} expired — nothing was run.")
    await click(h, cards.ActionId.APPROVE, request.id, APPROVER_1)
    assert f"{request.id} expired at" in await h.wait_reply(APPROVER_1, ":no_entry:")
    assert sum("Reminder:" in t for t in h.thread_texts(request.id)) == 1
    assert h.store.count_jobs() == 0 and len(await h.blob_names(PREFIX)) == 3


async def test_cooling_off_waits_is_cancellable_and_an_approver_may_run_now(make_harness: MakeHarness) -> None:
    h = await make_harness(cooling_off="1h", cooling_off_actions=["delete run"])
    await seed_run(h)
    request = await h.submit(f"delete run {RUN}")
    await click(h, cards.ActionId.APPROVE, request.id, APPROVER_1)
    await h.wait_state(request.id, State.APPROVED)
    await h.slack.wait_for(lambda: "cooling off" in card_says(h, request.id))
    assert "unless cancelled" in card_says(h, request.id) and buttons(h, request.id) == [cards.ActionId.RUN_NOW, cards.ActionId.CANCEL]
    await h.wait_thread(request.id, "unless cancelled")
    await h.bot.worker.tick()  # the sweep that ends the cooling-offs that are due: not this one
    assert h.request(request.id).state is State.APPROVED and h.store.count_jobs() == 0

    await click(h, cards.ActionId.RUN_NOW, request.id, REQUESTER)
    assert "cut short the cooling-off of your own request" in await h.wait_reply(REQUESTER, ":no_entry:")
    await click(h, cards.ActionId.RUN_NOW, request.id, STRANGER)
    assert "not an approver" in await h.wait_reply(STRANGER, ":no_entry:")
    assert h.request(request.id).state is State.APPROVED
    await click(h, cards.ActionId.RUN_NOW, request.id, APPROVER_2)
    await h.wait_state(request.id, State.SUCCEEDED)
    await h.wait_thread(request.id, f"is queued by <@{APPROVER_2}>, before the end of its cooling-off")
    assert "request.run_now" in h.events(request.id)

    await seed_run(h)
    second = await h.submit(f"delete run {RUN}")
    await click(h, cards.ActionId.APPROVE, second.id, APPROVER_1)
    await h.wait_state(second.id, State.APPROVED)
    await click(h, cards.ActionId.CANCEL, second.id, REQUESTER)
    await h.wait_state(second.id, State.CANCELLED)
    await h.slack.wait_for(lambda: "Cancelled" in card_says(h, second.id))
    assert buttons(h, second.id) == [] and f"by <@{REQUESTER}>" in card_says(h, second.id)
    assert h.store.count_jobs(second.id) == 0


async def test_cooling_off_ends_by_itself(make_harness: MakeHarness) -> None:
    h = await make_harness(cooling_off="1s", cooling_off_actions=["delete run"])
    await seed_run(h)
    request = await h.submit(f"delete run {RUN}")
    await click(h, cards.ActionId.APPROVE, request.id, APPROVER_1)
    await h.wait_state(request.id, State.APPROVED)
    started = time.monotonic()
    await h.wait_state(request.id, State.SUCCEEDED, timeout=5)
    assert time.monotonic() - started > 0.5
    assert [e for e in h.events(request.id) if e.startswith("request.")][-2:] == ["request.approved", "request.cooled_off"]


# ---- rule 6: freeze and cancel -----------------------------------------------------------------


async def test_freeze_holds_jobs_until_an_admin_unfreezes(harness: Harness) -> None:
    await seed_run(harness)
    waiting = await harness.submit(f"delete run {RUN}")
    await harness.command("freeze", user=APPROVER_1)
    assert "Only admins may freeze" in await harness.wait_reply(APPROVER_1, ":no_entry:")
    await harness.command("freeze", user=ADMIN)
    await harness.wait_reply(ADMIN, "Frozen")
    await harness.slack.wait_for(lambda: "amlbot is frozen" in card_says(harness, waiting.id))  # an open card says so

    await harness.seed({"ExperimentRun/dcid.other_run/a.txt": b"a"})
    held = await harness.submit("delete run other_run")
    assert "amlbot is frozen" in card_says(harness, held.id)
    await click(harness, cards.ActionId.APPROVE, waiting.id, APPROVER_1)
    await click(harness, cards.ActionId.APPROVE, held.id, APPROVER_2)
    await harness.wait_state(waiting.id, State.QUEUED)
    await harness.wait_state(held.id, State.QUEUED)
    assert harness.store.claim_job("another-worker", timedelta(minutes=1)) is None  # what each sweep asks: nothing while frozen
    assert harness.request(waiting.id).state is State.QUEUED  # approved, but no job starts
    await harness.command(f"cancel {held.id}")
    assert f"{held.id} is cancelled" in await harness.wait_reply(REQUESTER, "is cancelled")

    await harness.command("unfreeze", user=ADMIN)
    await harness.wait_state(waiting.id, State.SUCCEEDED)
    await harness.slack.wait_for(lambda: "Done" in card_says(harness, waiting.id))
    assert "amlbot is frozen" not in card_says(harness, waiting.id)
    assert harness.request(held.id).state is State.CANCELLED and "job.started" not in harness.events(held.id)
    assert [e.event for e in harness.store.audit_entries() if e.event.endswith("freeze") or "freeze." in e.event] == [
        "freeze.refused", "freeze", "unfreeze"
    ]


@pytest.mark.both_modes
async def test_cancel_a_pending_request_and_only_the_requester_or_an_approver_may(harness: Harness) -> None:
    await seed_run(harness)
    request = await harness.submit(f"delete run {RUN}")
    await harness.command(f"cancel {request.id}", user=STRANGER)
    assert "Only the requester or an approver may cancel" in await harness.wait_reply(STRANGER, ":no_entry:")
    assert harness.request(request.id).state is State.PENDING
    await harness.command(f"cancel {request.id}", user=APPROVER_2)
    await harness.wait_reply(APPROVER_2, "is cancelled")
    await harness.slack.wait_for(lambda: "Cancelled" in card_says(harness, request.id))
    assert f"by <@{APPROVER_2}>" in card_says(harness, request.id) and buttons(harness, request.id) == []
    await harness.wait_thread(request.id, f"<@{REQUESTER}> {request.id} was cancelled by <@{APPROVER_2}>")


async def test_cancelling_a_running_deletion_stops_between_steps_with_a_partial_receipt(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_data, "STEP", 1)  # one blob per step: many places to stop
    gate = asyncio.Event()
    record = StoreCheckpoint.record

    async def record_then_hold(self: StoreCheckpoint, results: dict[str, ItemResult]) -> None:
        await record(self, results)
        await gate.wait()  # the job holds after its first step until the cancel is in

    monkeypatch.setattr(StoreCheckpoint, "record", record_then_hold)
    await seed_run(harness, files=5)
    request = await harness.submit(f"delete run {RUN}")
    await click(harness, cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.slack.wait_for(lambda: len(harness.store.item_outcomes(request.id)) == 1)
    assert harness.request(request.id).state is State.RUNNING and buttons(harness, request.id) == [cards.ActionId.CANCEL]

    await harness.command(f"cancel {request.id}")
    assert "stops after the current step" in await harness.wait_reply(REQUESTER, "stops after")
    gate.set()
    done = await harness.wait_state(request.id, State.PARTIALLY_SUCCEEDED)
    assert len(await harness.blob_names(PREFIX)) == 4

    files = await harness.slack.wait_for(
        lambda: [f for f in harness.slack.files if f.thread_ts == done.card_ts and f.filename.endswith("-receipt.json")]
    )
    document = json.loads(files[0].content)
    assert document["state"] == "partially_succeeded" and document["totals"] == {"deleted": 1, "failed": 4}
    assert "Stopped on request after 1 of 5" in document["stopped"]
    assert receipts.verify(files[0].content.decode(), Keyring(SigningKey.parse(AUDIT_KEY)))[0]
    await harness.wait_thread(request.id, f"<@{REQUESTER}> deletion receipt for {request.id}")
    await harness.slack.wait_for(lambda: "stopped on request" in card_says(harness, request.id))
    assert buttons(harness, request.id) == []
    assert harness.events(request.id)[-2:] == ["cancel.requested", "job.finished"]


# ---- rule 7: the audit log and its CLI ------------------------------------------------------------


@pytest.fixture
def cli(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., tuple[int, str]]]:
    """`amlbot …` against the harness's database, with its audit key; returns (exit code, stdout)."""
    monkeypatch.setenv("AMLBOT_DATABASE_URL", str(harness.store.engine.url))
    monkeypatch.setenv("AMLBOT_AUDIT_KEY", AUDIT_KEY)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def run(*argv: str) -> tuple[int, str]:
        code = amlbot(list(argv))
        return code, capsys.readouterr().out

    yield run
    root.handlers[:] = handlers  # the CLI configures logging for a process of its own
    root.setLevel(level)


async def test_audit_cli_verifies_the_chain_and_the_receipts(harness: Harness, cli: Callable[..., tuple[int, str]], tmp_path: Path) -> None:
    await seed_run(harness)
    await harness.command(f"delete run {RUN}", signature="v0=" + "0" * 64)  # forged: audited, not acted on
    await harness.command(f"delete run {RUN}", user=STRANGER)
    await harness.wait_reply(STRANGER, ":no_entry:")
    request = await harness.submit(f"delete run {RUN}")
    await click(harness, cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.SUCCEEDED)
    [receipt] = await harness.slack.wait_for(
        lambda: [f for f in harness.slack.files if f.thread_ts == done.card_ts and f.filename.endswith("-receipt.json")]
    )
    await harness.bot.rejections.flush()  # forged deliveries are audited in aggregate (each minute)
    events = harness.events()
    assert {"signature.rejected", "request.refused"} <= set(events)

    code, out = cli("audit", "verify")
    assert code == 0 and f"audit log intact: {len(events)} entries" in out
    code, out = cli("audit", "show", request.id)
    assert code == 0
    assert [line.split()[3] for line in out.splitlines()] == [
        "request.created", "request.approval", "request.approved", "job.started", "job.finished"
    ]
    assert receipts.digest(receipt.content.decode()) in out.splitlines()[-1]  # the receipt is bound into the chain
    assert cli("audit", "show", "R-NOTHERE")[0] == 1

    intact = tmp_path / f"{request.id}-receipt.json"
    intact.write_bytes(receipt.content)
    code, out = cli("audit", "verify-receipt", str(intact))
    assert code == 0 and f"receipt for {request.id} is intact" in out
    altered = tmp_path / "altered.json"
    altered.write_bytes(receipt.content.replace(b'"status": "deleted"', b'"status": "already_absent"', 1))
    code, out = cli("audit", "verify-receipt", str(altered))
    assert code == 1 and "does not match" in out

    approval = next(e for e in harness.store.audit_entries(request.id) if e.event == "request.approval")
    with harness.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'UMALLORY1' WHERE seq = :seq"), {"seq": approval.seq})
    code, out = cli("audit", "verify")
    assert code == 1 and f"BROKEN at entry {approval.seq}" in out and "altered" in out


# ---- bad clicks: a clear private answer, no change, HTTP 200 ----------------------------------------


@pytest.mark.both_modes
async def test_bad_clicks_get_a_private_answer_and_change_nothing(harness: Harness) -> None:
    await seed_run(harness)
    request = await harness.submit(f"delete run {RUN}")
    card_ts = request.card_ts or ""
    bodies = [
        harness.click_body(cards.ActionId.APPROVE, "R-ZZZZZZZZ", APPROVER_1, card_ts=card_ts),  # no such request
        harness.click_body(cards.ActionId.APPROVE, request.id, APPROVER_1, card_ts=card_ts, channel=OTHER_CHANNEL),
        harness.click_body(cards.ActionId.APPROVE, "<!channel> R-1", APPROVER_1, card_ts=card_ts),  # malformed
        harness.click_body(cards.ActionId.RUN_NOW, "", APPROVER_1, card_ts=card_ts),
    ]
    for body in bodies:
        status, _ = await harness.sender.send(body)
        assert status == 200
    await harness.slack.wait_for(lambda: len(private_replies(harness, APPROVER_1)) == 4)
    answers = [p["text"] for p in private_replies(harness, APPROVER_1)]
    assert sum("does not exist in this channel" in a for a in answers) == 2
    assert sum("does not name a request" in a for a in answers) == 2
    assert all(p["response_type"] == "ephemeral" and p["replace_original"] is False for p in private_replies(harness, APPROVER_1))
    assert harness.request(request.id).state is State.PENDING and harness.request(request.id).approvers == ()
    assert harness.events().count("click.refused") == 4
    assert harness.slack.calls_to("chat.update") == []


async def test_a_second_identical_request_points_to_the_first(harness: Harness) -> None:
    await seed_run(harness)
    first = await harness.submit(f"delete run {RUN}")
    await harness.command(f"delete  run {RUN} --workspace dev", user=APPROVER_1)  # the same, written differently
    reply = await harness.wait_reply(APPROVER_1, "already asks for exactly this")
    permalink = harness.slack.calls_to("chat.getPermalink")[-1].response["permalink"]
    assert reply.startswith(f":point_right: {first.id} already asks") and f"<{permalink}|its card>" in reply
    assert [r.id for r in harness.store.list_requests()] == [first.id]
    assert len(harness.slack.calls_to("chat.postMessage")) == 1  # no second card

    await harness.reject(first.id, APPROVER_1)  # decided: the next identical request is a new one
    second = await harness.submit(f"delete run {RUN}")
    assert second.id != first.id

"""Cards: pure renderings of a request's state that tell the truth and stay within Slack's limits."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block as SdkBlock

from bot import cards
from bot.lifecycle import FINAL, State
from bot.store.store import RequestRecord
from commands.plan import ItemKind, Plan, PlanItem

AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
REQUESTER, APPROVER_1, APPROVER_2 = "UREQ", "UAPP1", "UAPP2"


def plan(items: int = 3, ref: str = "ExperimentRun/dcid.r1/logs/part-{i}.txt", warnings: tuple[str, ...] = ()) -> Plan:
    return Plan(
        action="delete run",
        workspace="dev",
        target="r1",
        items=tuple(PlanItem(ItemKind.BLOB, ref.format(i=i), 1024 * i, "azureml") for i in range(items)),
        warnings=warnings,
    )


def record(state: State = State.PENDING, **fields: Any) -> RequestRecord:
    base = RequestRecord(
        id="R-ABCD2345", team_id="T1", channel_id="C1", requester=REQUESTER, text="delete run r1",
        action="delete run", workspace="dev", intent={}, plan=plan().to_dict(), plan_hash=plan().hash,
        state=state, approvals_required=2, created_at=AT, updated_at=AT, expires_at=AT + timedelta(hours=24),
        reminded=False, not_before=None, card_ts="1.0", decided_by=None, decided_at=None, result=None,
    )
    return dataclasses.replace(base, **fields)


def text_of(blocks: list[cards.Block]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def buttons(blocks: list[cards.Block]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def assert_within_slack_limits(blocks: list[cards.Block]) -> None:
    """The documented Block Kit limits (SLACK-FACTS.md), plus slack_sdk's own validation."""
    assert len(blocks) <= 50
    for block in blocks:
        match block["type"]:
            case "header":
                assert len(block["text"]["text"]) <= 150
            case "section":
                assert len(block.get("text", {}).get("text", "")) <= 3000
                assert len(block.get("fields", [])) <= 10
                assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
            case "context":
                assert len(block["elements"]) <= 10
            case "actions":
                assert len(block["elements"]) <= 25 and len(block["block_id"]) <= 255
                for button in block["elements"]:
                    assert len(button["text"]["text"]) <= 75 and len(button["value"]) <= 2000
                    confirm = button.get("confirm")
                    if confirm:
                        assert len(confirm["title"]["text"]) <= 100 and len(confirm["text"]["text"]) <= 300
    for parsed in SdkBlock.parse_all(blocks):
        parsed.to_dict()  # raises on what slack_sdk knows to be invalid


@pytest.mark.parametrize("state", list(State))
def test_every_state_renders_a_valid_card(state: State) -> None:
    blocks = cards.request_card(record(state, approvers=(APPROVER_1,)), approvers=frozenset({APPROVER_1, APPROVER_2}))
    assert_within_slack_limits(blocks)
    assert cards.card_text(record(state)).endswith(f"(R-ABCD2345): {state.value}")


@pytest.mark.parametrize(
    "state, expected",
    [
        (State.PENDING, [cards.APPROVE, cards.REJECT, cards.CANCEL]),
        (State.APPROVED, [cards.RUN_NOW, cards.CANCEL]),
        (State.QUEUED, [cards.CANCEL]),
        (State.RUNNING, [cards.CANCEL]),
        *((state, []) for state in sorted(FINAL)),
    ],
)
def test_buttons_offer_only_what_the_state_allows(state: State, expected: list[str]) -> None:
    blocks = cards.request_card(record(state))
    assert buttons(blocks) == expected
    assert all(e["value"] == "R-ABCD2345" for b in blocks if b["type"] == "actions" for e in b["elements"])


def test_the_card_shows_requester_intent_workspace_preview_and_approvals() -> None:
    card = text_of(cards.request_card(record(approvers=(APPROVER_1,)), approvers=frozenset({APPROVER_1, APPROVER_2})))
    for fact in ("<@UREQ>", "`/aml delete run r1`", "`dev`", "3 item(s)", "azureml/ExperimentRun/dcid.r1/logs/part-2.txt",
                 "1 of 2", "approved so far by <@UAPP1>", "Approvers: <@UAPP1> <@UAPP2>", "Expires <!date^"):
        assert fact in card


def test_a_decided_card_says_who_and_when() -> None:
    decided = {"decided_by": APPROVER_1, "decided_at": AT}
    rejected = text_of(cards.request_card(record(State.REJECTED, **decided)))
    assert f"Rejected · by <@{APPROVER_1}> <!date^{int(AT.timestamp())}^" in rejected
    cancelled = text_of(cards.request_card(record(State.CANCELLED, **decided)))
    assert f"Cancelled · by <@{APPROVER_1}>" in cancelled
    done = text_of(cards.request_card(record(State.SUCCEEDED, approvers=(APPROVER_1, APPROVER_2), **decided)))
    assert f"approved by <@{APPROVER_1}>, <@{APPROVER_2}> <!date^{int(AT.timestamp())}^" in done
    expired = text_of(cards.request_card(record(State.EXPIRED)))
    assert "Expired — nothing was run" in expired and "Expires" not in expired


def test_cooling_off_card_says_when_it_runs() -> None:
    cooling = text_of(cards.request_card(record(State.APPROVED, approvers=(APPROVER_1,), not_before=AT + timedelta(hours=1))))
    assert "cooling off" in cooling and f"runs <!date^{int((AT + timedelta(hours=1)).timestamp())}^" in cooling
    assert "unless cancelled" in cooling


def test_a_stopped_job_says_so() -> None:
    stopped = text_of(cards.request_card(record(State.PARTIALLY_SUCCEEDED, result={"stopped_early": True})))
    assert "Partly done" in stopped and "stopped on request" in stopped


def test_frozen_note_only_on_open_cards() -> None:
    for state in State:
        card = text_of(cards.request_card(record(state), frozen=True))
        assert ("amlbot is frozen" in card) == (state not in FINAL)


def test_approvers_are_named_but_a_big_pool_is_counted() -> None:
    pool = frozenset(f"U{i:04}" for i in range(cards.MAX_NAMED_APPROVERS + 7))
    card = text_of(cards.request_card(record(), approvers=pool))
    assert card.count("<@U0") == cards.MAX_NAMED_APPROVERS and "and 7 more" in card
    assert "Approvers" not in text_of(cards.request_card(record(State.QUEUED), approvers=pool))


def test_user_text_never_becomes_a_mention_or_a_link() -> None:
    card = text_of(cards.request_card(record(text="delete run <!channel> <https://evil|x> & co")))
    assert "<!channel>" not in card and "&lt;!channel&gt;" in card and "&amp; co" in card


def test_a_big_plan_lists_what_fits_and_counts_the_rest() -> None:
    assert cards.listed_items(plan(items=3)) == 3
    many = plan(items=500)
    assert cards.listed_items(many) == cards.MAX_LISTED_ITEMS
    assert f"…and {500 - cards.MAX_LISTED_ITEMS} more" in cards.plan_summary(many)
    # Long names (escaping makes them longer still) fill the section sooner; the count stays.
    long = plan(items=40, ref="ExperimentRun/dcid.r1/" + "<&>" * 60 + "/{i}")
    shown = cards.listed_items(long)
    assert 0 < shown < cards.MAX_LISTED_ITEMS
    assert cards.plan_summary(long).endswith(f"…and {40 - shown} more (the full list is in the thread as a file)")


def test_big_plans_and_long_text_stay_within_limits() -> None:
    big = plan(items=500, ref="ExperimentRun/dcid.r1/" + "x" * 1000 + "/{i}", warnings=tuple(f"w{i}" * 500 for i in range(30)))
    blocks = cards.request_card(record(plan=big.to_dict(), text="delete run " + "<y>" * 1300))
    assert_within_slack_limits(blocks)
    assert "…and 20 more warning(s)" in text_of(blocks) and "more (the full list" in text_of(blocks)


def test_decision_texts_mention_the_requester() -> None:
    approved = record(State.QUEUED, approvers=(APPROVER_1, APPROVER_2))
    assert cards.decision_text(approved) == "<@UREQ> R-ABCD2345 is approved by <@UAPP1>, <@UAPP2> and queued."
    assert cards.decision_text(approved, APPROVER_2) == "<@UREQ> R-ABCD2345 is queued by <@UAPP2>, before the end of its cooling-off."
    cooling = record(State.APPROVED, approvers=(APPROVER_1,), not_before=AT)
    assert cards.decision_text(cooling).startswith("<@UREQ> R-ABCD2345 is approved by <@UAPP1>; it runs <!date^")
    assert cards.decision_text(record(State.REJECTED), APPROVER_1) == "<@UREQ> R-ABCD2345 was rejected by <@UAPP1>."
    assert cards.decision_text(record(State.CANCELLED), REQUESTER) == "<@UREQ> R-ABCD2345 was cancelled by <@UREQ>."
    assert cards.decision_text(record(State.EXPIRED)) == "<@UREQ> R-ABCD2345 expired — nothing was run."


def test_approvers_notice_links_to_the_card_or_names_its_channel() -> None:
    linked = cards.approvers_notice(record(), "https://example.slack.com/archives/C1/p10")
    assert "R-ABCD2345 needs 2 approval(s)" in linked and "<https://example.slack.com/archives/C1/p10|its card> in <#C1>" in linked
    assert "its card in <#C1>" in cards.approvers_notice(record(), None)


def test_receipt_summary_says_when_a_job_was_stopped() -> None:
    document = {
        "request_id": "R-ABCD2345", "state": "partially_succeeded", "totals": {"deleted": 1, "failed": 2},
        "items": [{"ref": "a", "status": "deleted", "reason": ""}, {"ref": "b", "status": "failed", "reason": "not attempted"}],
        "appeared_and_left_alone": [], "plan_hash": "sha256:" + "0" * 64,
        "stopped": "Stopped on request after 1 of 3 item(s); the rest were not attempted.",
    }
    summary = text_of(cards.receipt_summary(document))
    assert "partially succeeded" in summary and "1 deleted, 2 failed" in summary and "Stopped on request" in summary
    assert_within_slack_limits(cards.receipt_summary(document))

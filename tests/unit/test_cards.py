"""Cards: pure renderings of a request's state that tell the truth and stay within Slack's limits."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block as SdkBlock

from bot import cards, plan_words
from bot.lifecycle import FINAL, State
from bot.store.store import RequestRecord
from commands.intents import Action
from commands.plan import ItemKind, Plan, PlanItem

AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
REQUESTER, APPROVER_1, APPROVER_2 = "UREQ", "UAPP1", "UAPP2"


def plan(items: int = 3, ref: str = "ExperimentRun/dcid.r1/logs/part-{i}.txt", warnings: tuple[str, ...] = ()) -> Plan:
    return Plan(
        action=Action.parse("delete run"),
        workspace="dev",
        target="r1",
        items=tuple(PlanItem(ItemKind.BLOB, ref.format(i=i), 1024 * i, "azureml") for i in range(items)),
        warnings=warnings,
    )


# The plan each test record's plan_hash stands for: a record carries its plan's size, not its items.
_PLANS: dict[str | None, Plan] = {}


def record(state: State = State.PENDING, of: Plan | None = None, **fields: Any) -> RequestRecord:
    """A stored request whose plan is `of` (by default `plan()`)."""
    made = of or plan()
    base = RequestRecord(
        id="R-ABCD2345", team_id="T1", channel_id="C1", requester=REQUESTER, text="delete run r1",
        action=Action.parse("delete run"), workspace="dev", intent={"text": "delete run r1 --workspace dev"},
        plan_items=len(made.items), plan_hash=made.hash,
        state=state, approvals_required=2, created_at=AT, updated_at=AT, expires_at=AT + timedelta(hours=24),
        reminded=False, not_before=None, card_ts="1.0", decided_by=None, decided_at=None, result=None,
    )
    request = dataclasses.replace(base, **fields)
    _PLANS[request.plan_hash] = made
    return request


def summary(request: RequestRecord) -> plan_words.Summary:
    """The summary of a test record's plan, as the publisher makes it from the stored plan."""
    return plan_words.summarize(_PLANS[request.plan_hash])


def rendered(request: RequestRecord, **kw: Any) -> list[cards.Block]:
    """The card as the publisher renders it: from the request and the summary of its stored plan."""
    return cards.request_card(request, summary(request), **kw)


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
    blocks = rendered(record(state, approvers=(APPROVER_1,)), approvers=frozenset({APPROVER_1, APPROVER_2}))
    assert_within_slack_limits(blocks)
    assert cards.card_text(record(state)).endswith(f"(R-ABCD2345): {state.value}")


@pytest.mark.parametrize(
    "state, expected",
    [
        (State.PENDING, [cards.ActionId.APPROVE, cards.ActionId.REJECT, cards.ActionId.CANCEL]),
        (State.APPROVED, [cards.ActionId.RUN_NOW, cards.ActionId.CANCEL]),
        (State.QUEUED, [cards.ActionId.CANCEL]),
        (State.RUNNING, [cards.ActionId.CANCEL]),
        *((state, []) for state in sorted(FINAL)),
    ],
)
def test_buttons_offer_only_what_the_state_allows(state: State, expected: list[str]) -> None:
    blocks = rendered(record(state))
    assert buttons(blocks) == expected
    assert all(e["value"] == "R-ABCD2345" for b in blocks if b["type"] == "actions" for e in b["elements"])


def test_the_card_shows_requester_intent_workspace_preview_and_approvals() -> None:
    card = text_of(rendered(record(approvers=(APPROVER_1,)), approvers=frozenset({APPROVER_1, APPROVER_2})))
    for fact in ("<@UREQ>", "`/aml delete run r1`", "workspace dev", "Delete run r1 — 3 files, 3.0 KiB", "*1 run* · 3 files",
                 "R-ABCD2345", "1 of 2", "approved so far by <@UAPP1>", "Approvers: <@UAPP1> <@UAPP2>", "Expires <!date^"):
        assert fact in card


def test_a_decided_card_says_who_and_when() -> None:
    decided = {"decided_by": APPROVER_1, "decided_at": AT}
    rejected = text_of(rendered(record(State.REJECTED, **decided)))
    assert f"Rejected · by <@{APPROVER_1}> <!date^{int(AT.timestamp())}^" in rejected
    cancelled = text_of(rendered(record(State.CANCELLED, **decided)))
    assert f"Cancelled · by <@{APPROVER_1}>" in cancelled
    done = text_of(rendered(record(State.SUCCEEDED, approvers=(APPROVER_1, APPROVER_2), **decided)))
    assert f"approved by <@{APPROVER_1}>, <@{APPROVER_2}> <!date^{int(AT.timestamp())}^" in done
    expired = text_of(rendered(record(State.EXPIRED)))
    assert "Expired — nothing was run" in expired and "Expires" not in expired


def test_cooling_off_card_says_when_it_runs() -> None:
    cooling = text_of(rendered(record(State.APPROVED, approvers=(APPROVER_1,), not_before=AT + timedelta(hours=1))))
    assert "cooling off" in cooling and f"runs <!date^{int((AT + timedelta(hours=1)).timestamp())}^" in cooling
    assert "unless cancelled" in cooling


def test_a_stopped_job_says_so() -> None:
    stopped = text_of(rendered(record(State.PARTIALLY_SUCCEEDED, result={"stopped_early": True})))
    assert "Partly done" in stopped and "stopped on request" in stopped


def test_frozen_note_only_on_open_cards() -> None:
    for state in State:
        card = text_of(rendered(record(state), frozen=True))
        assert ("amlbot is frozen" in card) == (state not in FINAL)


def test_the_approvers_group_is_mentioned_as_a_group() -> None:
    card = text_of(rendered(record(), approvers=frozenset({APPROVER_1}), groups=("S0APPROVERS",)))
    assert "Approvers: <!subteam^S0APPROVERS> <@UAPP1>" in card


def test_approvers_are_named_but_a_big_pool_is_counted() -> None:
    pool = frozenset(f"U{i:04}" for i in range(cards.MAX_NAMED_APPROVERS + 7))
    card = text_of(rendered(record(), approvers=pool))
    assert card.count("<@U0") == cards.MAX_NAMED_APPROVERS and "and 7 more" in card
    assert "Approvers" not in text_of(rendered(record(State.QUEUED), approvers=pool))


def test_user_text_never_becomes_a_mention_or_a_link() -> None:
    card = text_of(rendered(record(text="delete run <!channel> <https://evil|x> & co")))
    assert "<!channel>" not in card and "&lt;!channel&gt;" in card and "&amp; co" in card


def test_big_plans_and_long_text_stay_within_limits() -> None:
    big = plan(items=500, ref="ExperimentRun/dcid.r1/" + "x" * 1000 + "/{i}", warnings=tuple(f"w{i}" * 500 for i in range(30)))
    blocks = rendered(record(of=big, text="delete run " + "<y>" * 1300))
    assert_within_slack_limits(blocks)
    assert "…and 20 more warning(s)" in text_of(blocks) and "listed in the plan file" in text_of(blocks)


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


def test_the_receipt_says_the_outcome_in_words_with_the_first_items() -> None:
    def item(ref: str, status: str, reason: str = "", kind: str = "blob") -> dict[str, Any]:
        return {"kind": kind, "container": "azureml" if kind == "blob" else None, "ref": ref, "size": 10, "status": status, "reason": reason}

    document = {
        "request_id": "R-ABCD2345", "action": "delete experiment", "workspace": "dev", "target": "churn",
        "state": "partially_succeeded", "totals": {"deleted": 8, "failed": 1, "retained": 1},
        "items": [
            *(item(f"ExperimentRun/dcid.r{n}/logs/{i}.txt", "deleted") for n in (1, 2) for i in range(4)),
            item(f"{SUB}/jobs/r3", "retained", "still running: cancel it or let it finish", kind="job"),
            item("ExperimentRun/dcid.r4/outputs/model.pkl", "failed", "403 AuthorizationPermissionMismatch"),
        ],
        "appeared_and_left_alone": [], "plan_hash": "sha256:" + "0" * 64,
        "stopped": "Stopped on request after 9 of 10 item(s); the rest were not attempted.",
    }
    blocks = cards.receipt_summary(document)
    assert_within_slack_limits(blocks)
    lines = blocks[0]["text"]["text"].split("\n")
    assert lines[0] == ":receipt: *Deletion receipt* for R-ABCD2345 — partially succeeded"
    assert "Stopped on request" in lines[1]
    assert "*Deleted*: 8 files of 2 runs" in lines and "  • run r1: logs/0.txt" in lines and "  …and 3 more" in lines
    assert "*Kept*: 1 run" in lines and "  • run r3 — still running: cancel it or let it finish" in lines
    assert "*Failed*: 1 file of 1 run" in lines and "  • run r4: outputs/model.pkl — 403 AuthorizationPermissionMismatch" in lines


# ---- headlines, grouped detail and danger, as an approver at 6 pm reads them ----------------------

SUB = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/mlw"


def _blobs(run: str, files: int, size: int) -> list[PlanItem]:
    return [PlanItem(ItemKind.BLOB, f"ExperimentRun/dcid.{run}/logs/{i}.txt", size, "azureml") for i in range(files)]


def _request(action: str, intent: str, items: list[PlanItem], workspace: str = "prod", **plan_fields: Any) -> RequestRecord:
    p = Plan(action=Action.parse(action), workspace=workspace, target="t", items=tuple(items), **plan_fields)
    return record(action=Action.parse(action), text=intent, intent={"text": intent}, of=p, workspace=workspace)


def _approve(blocks: list[cards.Block]) -> dict[str, Any]:
    return next(e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == cards.ActionId.APPROVE)


def test_an_experiment_deletion_reads_as_runs_files_and_size_with_a_danger_confirmation() -> None:
    items = [*_blobs("a", 7, 40960), *_blobs("b", 7, 40960), *_blobs("c", 7, 45056)]
    items += [PlanItem(ItemKind.JOB, f"{SUB}/jobs/{r}") for r in "abc"]
    request = _request("delete experiment", "delete experiment fraud --workspace prod", items)
    blocks = rendered(request)
    assert_within_slack_limits(blocks)
    assert blocks[0]["text"]["text"] == ":warning: Delete experiment fraud: 3 runs — 21 files, 868.0 KiB — workspace prod"
    assert "*3 runs* · 21 files, 868.0 KiB" in text_of(blocks) and "• a (7 files, 280.0 KiB)" in text_of(blocks)
    assert "ExperimentRun/dcid" not in text_of(blocks)  # blob paths stay in the plan file
    approve = _approve(blocks)
    assert approve["style"] == "danger" and approve["confirm"]["style"] == "danger"
    assert approve["confirm"]["text"]["text"] == "Permanently delete 21 files (868.0 KiB) of 3 runs. This cannot be undone."
    assert "*Deletion*" in text_of(blocks)


def test_an_export_of_a_person_names_them_and_counts_what_they_made() -> None:
    items = [*_blobs("r1", 2, 10), *_blobs("r2", 1, 10), *_blobs("r3", 1, 10), *_blobs("r4", 1, 10), *_blobs("r5", 1, 10)]
    items += [PlanItem(ItemKind.MODEL_VERSION, f"{SUB}/models/churn/versions/{v}") for v in "12"]
    items += [PlanItem(ItemKind.MODEL_VERSION, f"{SUB}/models/fraud/versions/1")]
    items += [PlanItem(ItemKind.DATA_VERSION, f"{SUB}/data/clicks/versions/3")]
    items += [PlanItem(ItemKind.FILE, "Users/alice/nb.ipynb", 100, "code-share")]
    request = _request("export user", "export user <@U0ALICE01> --workspace prod", items)
    blocks = rendered(request, names={"U0ALICE01": "Alice Chen"})
    assert_within_slack_limits(blocks)
    assert blocks[0]["text"]["text"].startswith(
        ":package: Export everything about Alice Chen — 5 runs, 2 models, 1 data asset, notebooks — "
    )
    assert "• churn (versions 1, 2)" in text_of(blocks) and "*Notebooks and files* · 1 file, 100 B" in text_of(blocks)
    approve = _approve(blocks)
    assert approve["style"] == "primary" and approve["confirm"]["style"] == "primary" and approve["text"]["text"] == "Approve"
    assert "Deletion" not in text_of(blocks)


def test_a_workspace_purge_says_so_in_red() -> None:
    rg = "/subscriptions/s/resourceGroups/rg/providers"
    items = [
        PlanItem(ItemKind.RESOURCE, SUB),
        PlanItem(ItemKind.RESOURCE, f"{rg}/Microsoft.Storage/storageAccounts/st1"),
        PlanItem(ItemKind.RESOURCE, f"{rg}/Microsoft.KeyVault/vaults/kv1"),
        PlanItem(ItemKind.RESOURCE, f"{rg}/Microsoft.ContainerRegistry/registries/cr1"),
        PlanItem(ItemKind.RESOURCE, f"{rg}/microsoft.insights/components/ai1"),
    ]
    request = _request("delete workspace", "delete workspace prod --with-dependents --purge", items)
    blocks = rendered(request)
    assert_within_slack_limits(blocks)
    assert blocks[0]["text"]["text"] == (
        ":rotating_light: Purge workspace prod and its storage, Key Vault, registry and Application Insights — cannot be undone"
    )
    assert blocks[1]["type"] == "section" and blocks[1]["text"]["text"].startswith(":red_circle: *PERMANENT — the workspace cannot be recovered.*")
    approve = _approve(blocks)
    assert approve["text"]["text"] == "Approve purge" and approve["style"] == "danger" and approve["confirm"]["style"] == "danger"
    assert "The workspace cannot be recovered" in approve["confirm"]["text"]["text"]
    assert "Nothing can be recovered" not in approve["confirm"]["text"]["text"]  # its Key Vault may stay recoverable
    soft = rendered(_request("delete workspace", "delete workspace prod", items[:1]))
    assert soft[0]["text"]["text"] == ":rotating_light: Delete workspace prod — the workspace is recoverable for 14 days"
    assert ":red_circle:" in text_of(soft) and _approve(soft)["style"] == "danger"


def test_a_small_plan_is_named_whole_and_a_big_one_points_to_the_plan_file() -> None:
    compute = Plan(action=Action.parse("delete compute"), workspace="dev", target="gpu", items=(PlanItem(ItemKind.RESOURCE, f"{SUB}/computes/gpu"),))
    assert cards.names_every_item(plan_words.summarize(compute))
    assert not cards.names_every_item(plan_words.summarize(plan(items=2)))  # blobs: only the plan file names them


def test_the_reject_form_asks_why_within_slacks_limits() -> None:
    from slack_sdk.models.views import View

    form = cards.reject_modal(record(), summary(record()), "C1")
    View(**form).validate_json()  # slack_sdk's own limits for modals
    assert form["callback_id"] == cards.ActionId.REJECT_REASON and len(form["title"]["text"]) <= 24
    assert json.loads(form["private_metadata"]) == {"request_id": "R-ABCD2345", "origin": "C1"}
    [field] = [b for b in form["blocks"] if b["type"] == "input"]
    assert field["element"]["action_id"] == field["block_id"] == cards.ActionId.REJECT_REASON
    assert field["element"]["max_length"] == cards.REASON_LIMIT and "optional" not in field  # a reason is required
    said = cards.decision_text(record(State.REJECTED), APPROVER_1, "still <needed>")
    assert said == "<@UREQ> R-ABCD2345 was rejected by <@UAPP1>: “still &lt;needed&gt;”"


def test_a_kept_dependent_is_not_named_among_what_goes() -> None:
    rg = "/subscriptions/s/resourceGroups/rg/providers"
    logs = PlanItem(ItemKind.RESOURCE, f"{rg}/Microsoft.OperationalInsights/workspaces/la1")
    shared = PlanItem(ItemKind.RESOURCE, f"{rg}/Microsoft.KeyVault/vaults/shared-kv")
    request = _request(
        "delete workspace", "delete workspace prod --with-dependents --purge", [PlanItem(ItemKind.RESOURCE, SUB), logs, shared],
        notes={"retained": {shared.key: "another workspace uses it"}},
    )
    assert cards.headline(request, summary(request)) == "Purge workspace prod and its Log Analytics workspace — cannot be undone"


def test_the_card_shows_the_stored_plan_hash_and_never_hashes_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hash on the card is the one stored with the request (and chained in the audit log): a
    render never re-hashes the plan (seconds on a big one). One that no longer matches its plan is
    refused by the worker (tests/e2e/attacks/test_execution.py)."""
    stored = "sha256:" + "0" * 64
    request = record(plan_hash=stored)
    assert plan().hash != stored  # what the plan itself hashes to

    def no_hashing(_: object) -> str:
        raise AssertionError("a render hashed the plan")

    monkeypatch.setattr("commands.plan.hash_of", no_hashing)
    shown = text_of(rendered(request))
    assert f"Plan `{stored[:19]}…`" in shown

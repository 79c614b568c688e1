"""The policy: who may request, approve, cancel and run what, where. Pure functions, no Slack."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from bot import policy
from bot.policy import Actor
from bot.settings import ConfigError, PolicyConfig, parse_config
from commands.intents import Action

LEAD, OTHER_LEAD, ADMIN, ONCALL, DATA, STRANGER = "ULEAD", "UOTHER", "UADMIN", "UONCALL", "UDATA", "USTRANGER"
OPS_CHANNEL, ELSEWHERE = "COPS", "CELSE"
A = Action.parse
DELETE_RUN = A("delete run")


def rules(**overrides: Any) -> PolicyConfig:
    base: dict[str, Any] = {
        "admins": [ADMIN],
        "requesters": {
            "delete *": {"users": [LEAD, OTHER_LEAD], "channels": [OPS_CHANNEL], "workspaces": ["dev", "prod"]},
            "export *": {"groups": ["SDATA"]},
            "cleanup *": {"groups": ["SONCALL"]},
        },
        "approvers": {"users": [LEAD, OTHER_LEAD], "groups": ["SAPPROVERS"]},
        "approvals_required": {"delete *": 1, "delete user": 2},
        "self_approval": ["export run"],
        "oncall": {"groups": ["SONCALL"]},
        "oncall_self_approval_cap": 5,
    }
    return PolicyConfig.model_validate(base | overrides)


def actor(user: str, *groups: str) -> Actor:
    return Actor(user, frozenset(groups))


# ---- requesting ---------------------------------------------------------------------------------


def test_request_allowed_by_user_and_by_group() -> None:
    p = rules()
    assert policy.may_request(p, actor(LEAD), A("delete run"), OPS_CHANNEL, "prod").allowed
    assert policy.may_request(p, actor(DATA, "SDATA"), A("export model"), ELSEWHERE, "dev").allowed


@pytest.mark.parametrize(
    "who, action, channel, workspace, reason",
    [
        (actor(STRANGER), A("delete run"), OPS_CHANNEL, "dev", "You are not allowed to request `delete run`"),
        (actor(DATA, "SDATA"), A("delete run"), OPS_CHANNEL, "dev", "You are not allowed"),
        (actor(LEAD), A("delete run"), ELSEWHERE, "dev", "cannot be requested in this channel"),
        (actor(LEAD), A("delete run"), OPS_CHANNEL, "staging", "on workspace `staging`"),
    ],
)
def test_request_refused_with_the_reason(who: Actor, action: str, channel: str, workspace: str, reason: str) -> None:
    decision = policy.may_request(rules(), who, action, channel, workspace)
    assert not decision.allowed and reason in decision.reason


def test_an_action_no_rule_names_is_refused_for_everyone() -> None:
    p = rules(requesters={"export run": {"users": [LEAD]}})
    decision = policy.may_request(p, actor(ADMIN), A("delete workspace"), OPS_CHANNEL, "dev")
    assert not decision.allowed and "Nobody may request `delete workspace`" in decision.reason


def test_two_half_rules_do_not_add_up_to_a_whole_one() -> None:
    # One rule allows the channel, another the workspace; neither allows both together.
    p = rules(
        requesters={
            "delete run": {"users": [LEAD], "channels": [OPS_CHANNEL], "workspaces": ["dev"]},
            "delete *": {"users": [LEAD], "channels": [ELSEWHERE], "workspaces": ["prod"]},
        }
    )
    assert not policy.may_request(p, actor(LEAD), A("delete run"), OPS_CHANNEL, "prod").allowed
    assert policy.may_request(p, actor(LEAD), A("delete run"), OPS_CHANNEL, "dev").allowed
    assert policy.may_request(p, actor(LEAD), A("delete run"), ELSEWHERE, "prod").allowed


def test_help_lists_what_this_user_may_request_in_this_channel() -> None:
    p = rules()
    actions = [A("export run"), A("export model"), A("delete run"), A("cleanup computes")]
    assert policy.requestable_actions(p, actor(LEAD), actions, OPS_CHANNEL) == [A("delete run")]
    assert policy.requestable_actions(p, actor(LEAD), actions, ELSEWHERE) == []
    assert policy.requestable_actions(p, actor(DATA, "SDATA", "SONCALL"), actions, ELSEWHERE) == [
        A("export run"), A("export model"), A("cleanup computes")
    ]
    assert policy.requestable_actions(p, actor(STRANGER), actions, OPS_CHANNEL) == []


# ---- approvals ------------------------------------------------------------------------------------


def test_approvals_required_exact_then_wildcard_then_one() -> None:
    p = rules()
    assert policy.approvals_required(p, A("delete user")) == 2
    assert policy.approvals_required(p, A("delete run")) == 1
    assert policy.approvals_required(p, A("export run")) == 1


def test_a_workspace_deletion_takes_two_whatever_the_file_says() -> None:
    assert policy.approvals_required(rules(approvals_required={"delete workspace": 1}), A("delete workspace")) == 2
    assert policy.approvals_required(rules(approvals_required={}), A("delete workspace")) == 2
    assert policy.approvals_required(rules(approvals_required={"delete *": 3}), A("delete workspace")) == 3


def approve(
    p: PolicyConfig, who: Actor, *, requester: str = DATA, action: Action = DELETE_RUN, workspace: str = "dev", items: int = 1
) -> policy.Decision:
    return policy.may_approve(p, who, requester=requester, action=action, workspace=workspace, item_count=items)


def test_who_may_approve() -> None:
    p = rules()
    assert approve(p, actor(LEAD)).allowed
    assert approve(p, actor(ADMIN)).allowed
    assert approve(p, actor(STRANGER, "SAPPROVERS")).allowed
    refused = approve(p, actor(STRANGER))
    assert not refused.allowed and refused.reason == "You are not an approver."


def test_a_requester_never_approves_their_own_deletion() -> None:
    p = rules()
    for who in (actor(LEAD), actor(ADMIN)):
        decision = approve(p, who, requester=who.user_id)
        assert not decision.allowed and "your own request" in decision.reason
    oncall_deletion = approve(p, actor(ONCALL, "SONCALL", "SAPPROVERS"), requester=ONCALL, action=A("delete run"))
    assert not oncall_deletion.allowed


def test_self_approval_only_where_the_file_allows_it_and_never_for_a_deletion() -> None:
    p = rules()
    assert approve(p, actor(DATA, "SDATA"), requester=DATA, action=A("export run")).allowed
    assert not approve(p, actor(DATA, "SDATA"), requester=DATA, action=A("export model")).allowed
    for deletion in ("delete run", "cleanup computes", "*"):
        with pytest.raises(ValueError, match="never be approved by its requester"):
            rules(self_approval=[deletion])


def test_oncall_self_approves_a_cleanup_up_to_the_cap() -> None:
    p = rules(oncall_self_approval_cap=3)
    oncall = actor(ONCALL, "SONCALL")
    assert approve(p, oncall, requester=ONCALL, action=A("cleanup computes"), items=3).allowed
    assert not approve(p, oncall, requester=ONCALL, action=A("cleanup computes"), items=4).allowed
    assert not approve(p, actor(DATA), requester=DATA, action=A("cleanup exports"), items=1).allowed


def test_approvers_limited_to_workspaces() -> None:
    p = rules(approvers={"users": [LEAD], "workspaces": ["dev"]})
    assert approve(p, actor(LEAD), workspace="dev").allowed
    decision = approve(p, actor(LEAD), workspace="prod")
    assert not decision.allowed and "workspace `prod`" in decision.reason
    assert policy.approver_pool(p, {}, "prod") == frozenset()


def test_approver_pool_is_users_admins_and_group_members() -> None:
    pool = policy.approver_pool(rules(), {"SAPPROVERS": ["UGROUP1"], "SDATA": [DATA]}, "dev")
    assert pool == {LEAD, OTHER_LEAD, ADMIN, "UGROUP1"}


def test_a_card_asks_the_approvers_of_its_workspace_by_group_not_every_admin() -> None:
    users, groups = policy.whom_to_ask(rules(), "dev", requester=LEAD)
    assert users == {OTHER_LEAD} and groups == ("SAPPROVERS",)  # not the requester, not the admin
    assert policy.whom_to_ask(rules(), "dev", requester=DATA, approved=[LEAD]) == (frozenset({OTHER_LEAD}), ("SAPPROVERS",))
    # Admins are asked only when nobody else may approve.
    assert policy.whom_to_ask(rules(approvers={}), "dev", requester=LEAD) == (frozenset({ADMIN}), ())
    # Approvers limited to other workspaces are not asked about this one.
    assert policy.whom_to_ask(rules(approvers={"users": [LEAD], "workspaces": ["prod"]}), "dev", requester=DATA) == (frozenset(), ())


def test_a_request_nobody_else_could_approve_is_refused_at_submission() -> None:
    only_lead = rules(admins=[], approvers={"users": [LEAD]})
    refused = policy.can_be_approved(only_lead, actor(LEAD), A("delete run"), "dev", 1, {})
    assert not refused.allowed and "needs 1 approval(s) from someone other than you" in refused.reason
    assert policy.can_be_approved(only_lead, actor(OTHER_LEAD), A("delete run"), "dev", 1, {}).allowed
    # Two approvers, one of them asking: a workspace deletion (2) cannot be approved.
    two = rules(admins=[], approvers={"users": [LEAD, OTHER_LEAD]})
    assert not policy.can_be_approved(two, actor(LEAD), A("delete workspace"), "dev", 1, {}).allowed
    assert policy.can_be_approved(two, actor(DATA), A("delete workspace"), "dev", 1, {}).allowed
    # Approvers who may not touch this workspace do not count.
    elsewhere = rules(admins=[], approvers={"users": [OTHER_LEAD], "workspaces": ["prod"]})
    assert not policy.can_be_approved(elsewhere, actor(LEAD), A("delete run"), "dev", 1, {}).allowed


def test_an_oncall_self_approval_counts_at_submission() -> None:
    nobody_else = rules(admins=[], approvers={"users": []})
    oncall = actor(ONCALL, "SONCALL")
    assert policy.can_be_approved(nobody_else, oncall, A("cleanup computes"), "dev", 5, {}).allowed
    assert not policy.can_be_approved(nobody_else, oncall, A("cleanup computes"), "dev", 6, {}).allowed


def test_cancel_and_run_now() -> None:
    p = rules()
    assert policy.may_cancel(p, actor(DATA), requester=DATA, workspace="dev").allowed
    assert policy.may_cancel(p, actor(LEAD), requester=DATA, workspace="dev").allowed
    assert not policy.may_cancel(p, actor(STRANGER), requester=DATA, workspace="dev").allowed
    assert policy.may_run_now(p, actor(LEAD), requester=DATA, workspace="dev").allowed
    refused = policy.may_run_now(p, actor(LEAD), requester=LEAD, workspace="dev")
    assert not refused.allowed and "your own request" in refused.reason
    assert not policy.may_run_now(p, actor(STRANGER), requester=DATA, workspace="dev").allowed


def test_cooling_off_applies_to_the_configured_actions() -> None:
    default = rules(cooling_off="1h")
    assert policy.cooling_off(default, A("delete user")) == timedelta(hours=1)
    assert policy.cooling_off(default, A("delete run")) == timedelta(0)
    wide = rules(cooling_off="30m", cooling_off_actions=["delete *"])
    assert policy.cooling_off(wide, A("delete run")) == timedelta(minutes=30)
    assert policy.cooling_off(wide, A("export run")) == timedelta(0)


def test_groups_named_are_the_ones_to_resolve() -> None:
    assert policy.groups_named(rules()) == {"SDATA", "SONCALL", "SAPPROVERS"}


@pytest.mark.parametrize(
    "policy_yaml, message",
    [
        ({"approvers": {"users": [LEAD], "channels": [OPS_CHANNEL]}}, "approvers cannot be limited to channels"),
        ({"oncall": {"groups": ["SONCALL"], "workspaces": ["dev"]}}, "oncall names people"),
    ],
)
def test_keys_the_policy_would_ignore_are_refused(policy_yaml: dict[str, Any], message: str) -> None:
    workspaces = {"dev": {"subscription_id": "s", "resource_group": "r", "workspace_name": "w"}}
    with pytest.raises(ConfigError, match=message):
        parse_config({"workspaces": workspaces, "policy": policy_yaml})


# ---- who may hear of a request (status, list, cancel) -------------------------------------------


def test_a_request_is_seen_in_its_channel_by_its_requester_and_its_approvers_and_never_across_teams() -> None:
    from datetime import UTC, datetime

    from bot.lifecycle import State
    from bot.store.store import RequestRecord

    moment = datetime(2026, 1, 1, tzinfo=UTC)
    request = RequestRecord(
        id="R-ABCD2345", team_id="T1", channel_id=OPS_CHANNEL, requester=LEAD, text="delete run r1",
        action=A("delete run"), workspace="dev", intent={}, plan_items=0, plan_hash=None, state=State.PENDING,
        approvals_required=1, created_at=moment, updated_at=moment, expires_at=moment, reminded=False,
        not_before=None, card_ts="1.0", decided_by=None, decided_at=None, result=None,
    )
    policy_ = rules()

    def sees(who: Actor, team: str = "T1", channel: str = ELSEWHERE) -> bool:
        return policy.may_see(policy_, who, request, team=team, channel=channel)

    assert sees(actor(STRANGER), channel=OPS_CHANNEL)  # anyone in its channel
    assert not sees(actor(STRANGER)) and not sees(actor(DATA, "SDATA"))  # elsewhere, not an approver
    assert sees(actor(LEAD)) and sees(actor(OTHER_LEAD)) and sees(actor(ADMIN))  # its requester, approvers
    for who in (LEAD, OTHER_LEAD, ADMIN, STRANGER):
        assert not sees(actor(who), team="T2", channel=OPS_CHANNEL)  # another team: never

    # Enterprise Grid: another workspace of the request's org only when the policy says org_wide.
    grid = dataclasses.replace(request, enterprise_id="E1")
    shared = rules().model_copy(update={"org_wide": True})
    assert not policy.same_place(policy_, grid, team="T2", enterprise="E1")  # by default, never
    assert policy.same_place(shared, grid, team="T2", enterprise="E1")
    assert not policy.same_place(shared, grid, team="T3", enterprise="E2")  # another org: never
    assert not policy.same_place(shared, request, team="T2", enterprise=None)  # made outside any org
    assert policy.same_place(shared, grid, team="T1", enterprise=None)  # its own workspace, always


@pytest.mark.parametrize(
    ("action", "every_export", "private"),
    [
        (A("export user"), False, True), (A("export notebooks"), False, True), (A("export run"), False, False),
        (A("export run"), True, True), (A("export model"), True, True), (A("delete user"), True, False),
    ],
)
def test_links_of_exports_about_a_person_are_always_private_and_every_exports_when_configured(
    action: Action, every_export: bool, private: bool
) -> None:
    assert policy.link_is_private(action, every_export) is private

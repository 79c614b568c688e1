"""Who may request, approve and run what, where. Pure: group memberships come in resolved."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.settings import PolicyConfig, Rule

# A workspace deletion takes two approvers whatever the file says.
MIN_APPROVALS = {"delete workspace": 2}


@dataclass(frozen=True)
class Actor:
    user_id: str
    groups: frozenset[str] = frozenset()  # the policy's user groups this user belongs to


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


ALLOW = Decision(True)


def _matches(key: str, action: str) -> bool:
    if key == "*" or key == action:
        return True
    return key.endswith(" *") and action.split(" ", 1)[0] == key[:-2]


def _rule_has(rule: Rule, actor: Actor) -> bool:
    return actor.user_id in rule.users or bool(actor.groups & set(rule.groups))


def is_admin(policy: PolicyConfig, actor: Actor) -> bool:
    return actor.user_id in policy.admins


def may_request(policy: PolicyConfig, actor: Actor, action: str, channel: str, workspace: str) -> Decision:
    rules = [rule for key, rule in policy.requesters.items() if _matches(key, action)]
    if not rules:
        return Decision(False, f"Nobody may request `{action}` under the current policy.")
    if not any(_rule_has(rule, actor) for rule in rules):
        return Decision(False, f"You are not allowed to request `{action}`.")
    rules = [rule for rule in rules if _rule_has(rule, actor)]
    if not any(not rule.channels or channel in rule.channels for rule in rules):
        return Decision(False, f"`{action}` cannot be requested in this channel.")
    if not any(not rule.workspaces or workspace in rule.workspaces for rule in rules):
        return Decision(False, f"You may not request `{action}` on workspace `{workspace}`.")
    return ALLOW


def approvals_required(policy: PolicyConfig, action: str) -> int:
    exact = policy.approvals_required.get(action)
    if exact is None:
        wildcard = [n for key, n in policy.approvals_required.items() if _matches(key, action)]
        exact = max(wildcard) if wildcard else 1
    return max(exact, MIN_APPROVALS.get(action, 1))


def self_approvable(policy: PolicyConfig, actor: Actor, action: str, item_count: int) -> bool:
    """Never for a deletion, except an on-call engineer's cleanup within the cap."""
    if action.startswith("cleanup ") and _rule_has(policy.oncall, actor):
        return item_count <= policy.oncall_self_approval_cap
    if action.startswith(("delete ", "cleanup ")):
        return False
    return any(_matches(key, action) for key in policy.self_approval)


def may_approve(
    policy: PolicyConfig,
    actor: Actor,
    *,
    requester: str,
    action: str,
    workspace: str,
    item_count: int,
) -> Decision:
    own = actor.user_id == requester
    if own and self_approvable(policy, actor, action, item_count):
        return ALLOW
    if own:
        return Decision(False, "You cannot approve your own request: another approver must.")
    if not _rule_has(policy.approvers, actor) and not is_admin(policy, actor):
        return Decision(False, "You are not an approver.")
    if policy.approvers.workspaces and workspace not in policy.approvers.workspaces:
        return Decision(False, f"You may not approve work on workspace `{workspace}`.")
    return ALLOW


def approver_pool(policy: PolicyConfig, group_members: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """Everyone who may approve: listed approvers, members of approver groups, admins."""
    pool = set(policy.approvers.users) | set(policy.admins)
    for group in policy.approvers.groups:
        pool |= set(group_members.get(group, ()))
    return frozenset(pool)


def can_be_approved(
    policy: PolicyConfig,
    actor: Actor,
    action: str,
    item_count: int,
    group_members: Mapping[str, Iterable[str]],
) -> Decision:
    """Refuse at submission a request that nobody could ever approve, instead of letting it wait."""
    needed = approvals_required(policy, action)
    others = approver_pool(policy, group_members) - {actor.user_id}
    own = 1 if self_approvable(policy, actor, action, item_count) else 0
    if len(others) + own < needed:
        return Decision(
            False,
            f"`{action}` needs {needed} approval(s) from someone other than you, "
            f"and the policy names {len(others)} eligible approver(s). Ask an admin to add approvers.",
        )
    return ALLOW


def groups_named(policy: PolicyConfig) -> frozenset[str]:
    """Every user group the policy mentions: the ones to resolve through Slack."""
    rules = [*policy.requesters.values(), policy.approvers, policy.oncall]
    return frozenset(group for rule in rules for group in rule.groups)


def requestable_actions(policy: PolicyConfig, actor: Actor, actions: Iterable[str]) -> list[str]:
    """The actions `help` lists for this user."""
    return [
        action
        for action in actions
        if any(_matches(key, action) and _rule_has(rule, actor) for key, rule in policy.requesters.items())
    ]

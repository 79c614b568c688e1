"""Who may request, approve and run what, where. Pure: group memberships come in resolved."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.settings import PolicyConfig, Rule
from commands.intents import Action, Kind, Verb

if TYPE_CHECKING:
    from bot.store.store import RequestRecord

# A workspace deletion takes two approvers whatever the file says.
MIN_APPROVALS = {Action(Verb.DELETE, Kind.WORKSPACE): 2}


@dataclass(frozen=True)
class Actor:
    user_id: str
    groups: frozenset[str] = frozenset()  # the policy's user groups this user belongs to


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


ALLOW = Decision(True)


def _matches(key: str, action: Action) -> bool:
    """Whether a policy key (`delete run`, `delete *`, `*`) covers `action`."""
    return key in ("*", str(action), f"{action.verb.value} *")


def _rule_has(rule: Rule, actor: Actor) -> bool:
    return actor.user_id in rule.users or bool(actor.groups & set(rule.groups))


def is_admin(policy: PolicyConfig, actor: Actor) -> bool:
    return actor.user_id in policy.admins


def _in_channel(rule: Rule, channel: str) -> bool:
    return not rule.channels or channel in rule.channels


def _on_workspace(rule: Rule, workspace: str) -> bool:
    return not rule.workspaces or workspace in rule.workspaces


def may_request(policy: PolicyConfig, actor: Actor, action: Action, channel: str, workspace: str) -> Decision:
    rules = [rule for key, rule in policy.requesters.items() if _matches(key, action)]
    if not rules:
        return Decision(False, f"Nobody may request `{action}` under the current policy.")
    mine = [rule for rule in rules if _rule_has(rule, actor)]
    if not mine:
        return Decision(False, f"You are not allowed to request `{action}`.")
    here = [rule for rule in mine if _in_channel(rule, channel)]
    if not here:
        return Decision(False, f"`{action}` cannot be requested in this channel.")
    # One rule must allow both the channel and the workspace: two half-rules do not add up.
    if not any(_on_workspace(rule, workspace) for rule in here):
        return Decision(False, f"You may not request `{action}` on workspace `{workspace}` here.")
    return ALLOW


def approvals_required(policy: PolicyConfig, action: Action) -> int:
    exact = policy.approvals_required.get(str(action))
    if exact is None:
        wildcard = [n for key, n in policy.approvals_required.items() if _matches(key, action)]
        exact = max(wildcard) if wildcard else 1
    return max(exact, MIN_APPROVALS.get(action, 1))


def self_approvable(policy: PolicyConfig, actor: Actor, action: Action, item_count: int) -> bool:
    """Never for a deletion, except an on-call engineer's cleanup within the cap."""
    if action.verb is Verb.CLEANUP and _rule_has(policy.oncall, actor):
        return item_count <= policy.oncall_self_approval_cap
    if action.destructive:
        return False
    return any(_matches(key, action) for key in policy.self_approval)


def is_approver(policy: PolicyConfig, actor: Actor) -> bool:
    return _rule_has(policy.approvers, actor) or is_admin(policy, actor)


def _eligible_approver(policy: PolicyConfig, actor: Actor, workspace: str) -> Decision:
    if not is_approver(policy, actor):
        return Decision(False, "You are not an approver.")
    if not _on_workspace(policy.approvers, workspace):
        return Decision(False, f"You may not approve work on workspace `{workspace}`.")
    return ALLOW


def may_approve(
    policy: PolicyConfig,
    actor: Actor,
    *,
    requester: str,
    action: Action,
    workspace: str,
    item_count: int,
) -> Decision:
    own = actor.user_id == requester
    if own and self_approvable(policy, actor, action, item_count):
        return ALLOW
    if own:
        return Decision(False, "You cannot approve your own request: another approver must.")
    return _eligible_approver(policy, actor, workspace)


def may_approve_request(policy: PolicyConfig, actor: Actor, request: RequestRecord) -> Decision:
    """`may_approve` for a stored request: the card and the Home tab ask the same question."""
    return may_approve(
        policy, actor, requester=request.requester, action=request.action,
        workspace=request.workspace, item_count=request.plan_items or 0,
    )


def same_place(policy: PolicyConfig, request: RequestRecord, *, team: str, enterprise: str | None) -> bool:
    """Whether a request may be spoken of or acted on from workspace `team` (of org `enterprise`):
    its own workspace; with `org_wide`, any workspace of its Enterprise Grid org; never another org's."""
    if request.team_id == team:
        return True
    return policy.org_wide and request.enterprise_id is not None and request.enterprise_id == enterprise


def listed_from(policy: PolicyConfig, *, team: str, enterprise: str | None) -> tuple[str | None, str | None]:
    """The (team, enterprise) filters of `Store.list_requests` for lists shown in workspace `team`:
    that workspace's requests, or with `org_wide` its whole org's."""
    return (None, enterprise) if policy.org_wide and enterprise else (team, None)


def may_see(
    policy: PolicyConfig, actor: Actor, request: RequestRecord, *, team: str, channel: str, enterprise: str | None = None
) -> bool:
    """Whether `status`, `list` and `cancel` may speak of a request to this person, there: never
    from another workspace (unless `same_place` says so); otherwise a request of the channel they ask
    in, their own, or one they may approve."""
    if not same_place(policy, request, team=team, enterprise=enterprise):
        return False
    if channel == request.channel_id or actor.user_id == request.requester:
        return True
    return may_approve_request(policy, actor, request).allowed


# Exports about a person: personal data, whose link only ever reaches its requester.
PERSONAL_EXPORTS = frozenset({Action(Verb.EXPORT, Kind.USER), Action(Verb.EXPORT, Kind.NOTEBOOKS)})


def link_is_private(action: Action, every_export: bool) -> bool:
    """Whether an export's link goes to its requester alone (a DM, their own Home tab), never to a
    channel or an approver; `every_export` is the config's `private_export_links`."""
    return action in PERSONAL_EXPORTS or (every_export and action.verb is Verb.EXPORT)


def may_cancel(policy: PolicyConfig, actor: Actor, *, requester: str, workspace: str, verb: str = "cancel") -> Decision:
    """Cancel a request, or revoke its export's link (`verb`): its requester or an approver."""
    if actor.user_id == requester or _eligible_approver(policy, actor, workspace).allowed:
        return ALLOW
    return Decision(False, f"Only the requester or an approver may {verb}.")


def may_run_now(policy: PolicyConfig, actor: Actor, *, requester: str, workspace: str) -> Decision:
    """Cutting a cooling-off short is an approver's call, never the requester's."""
    if actor.user_id == requester:
        return Decision(False, "You cannot cut short the cooling-off of your own request: an approver must.")
    return _eligible_approver(policy, actor, workspace)


def approver_pool(policy: PolicyConfig, group_members: Mapping[str, Iterable[str]], workspace: str) -> frozenset[str]:
    """Everyone who may approve work on `workspace`: listed approvers, approver groups' members, admins."""
    if not _on_workspace(policy.approvers, workspace):
        return frozenset()
    pool = set(policy.approvers.users) | set(policy.admins)
    for group in policy.approvers.groups:
        pool |= set(group_members.get(group, ()))
    return frozenset(pool)


def whom_to_ask(policy: PolicyConfig, workspace: str, requester: str, approved: Iterable[str] = ()) -> tuple[frozenset[str], tuple[str, ...]]:
    """Whom a card pings for a decision: the approvers named for this workspace (by their user group
    when the policy names one), never the requester or those who already approved. Admins may
    approve too, but are asked only when nobody else can."""
    if not _on_workspace(policy.approvers, workspace):
        return frozenset(), ()
    done = {requester, *approved}
    users = frozenset(policy.approvers.users) - done
    groups = tuple(policy.approvers.groups)
    if not users and not groups:
        users = frozenset(policy.admins) - done
    return users, groups


def can_be_approved(
    policy: PolicyConfig,
    actor: Actor,
    action: Action,
    workspace: str,
    item_count: int,
    group_members: Mapping[str, Iterable[str]],
) -> Decision:
    """Refuse at submission a request that nobody could ever approve, instead of letting it wait."""
    needed = approvals_required(policy, action)
    others = approver_pool(policy, group_members, workspace) - {actor.user_id}
    own = 1 if self_approvable(policy, actor, action, item_count) else 0
    if len(others) + own < needed:
        return Decision(
            False,
            f"`{action}` on `{workspace}` needs {needed} approval(s) from someone other than you, "
            f"and the policy names {len(others)} eligible approver(s). Ask an admin to add approvers.",
        )
    return ALLOW


def cooling_off(policy: PolicyConfig, action: Action) -> timedelta:
    """How long an approved request waits before it is queued: a last chance to stop a mistake."""
    if any(_matches(key, action) for key in policy.cooling_off_actions):
        return policy.cooling_off
    return timedelta(0)


def groups_named(policy: PolicyConfig) -> frozenset[str]:
    """Every user group the policy mentions: the ones to resolve through Slack."""
    rules = [*policy.requesters.values(), policy.approvers, policy.oncall]
    return frozenset(group for rule in rules for group in rule.groups)


def requestable_actions(policy: PolicyConfig, actor: Actor, actions: Iterable[Action], channel: str) -> list[Action]:
    """The actions `help` lists for this user in this channel (on some workspace)."""
    return [
        action
        for action in actions
        if any(
            _matches(key, action) and _rule_has(rule, actor) and _in_channel(rule, channel)
            for key, rule in policy.requesters.items()
        )
    ]


def actions_on_workspace(policy: PolicyConfig, actions: Iterable[Action], workspace: str) -> list[Action]:
    """The actions someone may request on `workspace` (anyone, anywhere): what its set-up must allow."""
    return [
        action
        for action in actions
        if any(_matches(key, action) and _on_workspace(rule, workspace) for key, rule in policy.requesters.items())
    ]

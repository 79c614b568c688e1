"""The request lifecycle: commands in, cards out, clicks into decisions. Handlers stay thin.

Every change is committed to the store before Slack hears of it; Slack calls that fail after the
commit are logged and repaired by the next card refresh, never rolled back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import cards, help, metrics, plan_words, policy, wording
from bot.doors import Doors
from bot.lifecycle import FINAL, WAITING, IllegalTransition, RequestExpired, State
from bot.outbox import Outbox
from bot.people import NameNotFound, SlackPeople
from bot.settings import AppConfig, Settings
from bot.store.store import REQUEST_ID, RequestRecord, Store, now
from bot.usergroups import GroupResolver
from commands import grammar
from commands.azure.door import Status
from commands.azure.sdk import AzureError
from commands.intents import (
    ALL_ACTIONS,
    Action,
    CancelCommand,
    FreezeCommand,
    HelpCommand,
    Intent,
    ListCommand,
    RevokeCommand,
    StatusCommand,
    UnfreezeCommand,
    UserRef,
    UserRefType,
)
from commands.operations import operation_for, touches_storage
from commands.operations.base import Context, OperationError

log = logging.getLogger(__name__)

# What a Slack call raises when Slack refuses it, or cannot be reached once the client's retries are spent.
SLACK_TROUBLE = (SlackApiError, aiohttp.ClientError, TimeoutError)
OPEN = frozenset(State) - FINAL  # requests whose card can still change
LISTED = 20  # requests one `/aml list` shows
PENDING_SCAN = 500  # pending requests compared with a new one; more than that waiting is an incident anyway


def slack_error(error: BaseException) -> str:
    """Slack's error code, or what kept the call from reaching Slack."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error"))
    return f"{type(error).__name__}: {error}"


@dataclass
class Services:
    settings: Settings
    config: AppConfig
    store: Store
    doors: Doors
    groups: GroupResolver
    wake_worker: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class Where:
    team: str
    channel: str
    user: str
    enterprise: str | None = None  # the Enterprise Grid org of `team`, when there is one


HOME_TAB = "app_home"  # Where.channel of a click on the App Home tab, which has no channel


def intent_to_dict(intent: Intent) -> dict[str, object]:
    return {"text": grammar.render(intent)}


class Flow:
    def __init__(self, services: Services, client: AsyncWebClient) -> None:
        self.s = services
        self.client = client
        # Thread posts in order; a card's edits one at a time, coalesced, each rendered from a fresh
        # read, so a slow edit never overwrites a newer one (bot/outbox.py).
        self.outbox = Outbox()
        self.on_change: list[Callable[[RequestRecord], Awaitable[None]]] = []  # told after each card refresh
        self.people = SlackPeople(client)
        self.on_home_notice: list[Callable[[str, str], Awaitable[None]]] = []  # answers for a user on the Home tab

    @property
    def store(self) -> Store:
        return self.s.store

    # ---- commands ------------------------------------------------------------------------

    async def command(self, text: str, where: Where) -> str | None:
        """Handle `/aml <text>`; returns the private reply, if any."""
        try:
            parsed = grammar.parse(text)
        except grammar.GrammarError as error:
            return await self._misread(error, where)
        match parsed:
            case Intent():
                return await self.submit(parsed, text, where)
            case HelpCommand():
                return await self.help(parsed, where)
            case StatusCommand(request_id=rid):
                return await self.status(rid, where)
            case CancelCommand(request_id=rid):
                return await self.cancel(rid, where)
            case RevokeCommand(request_id=rid):
                return await self.revoke(rid, where)
            case ListCommand(scope=scope):
                return await self.list(scope, where)
            case FreezeCommand() | UnfreezeCommand():
                return await self.freeze(isinstance(parsed, FreezeCommand), where)
        return None

    async def _refuse(
        self, where: Where, event: str, reason: str, request_id: str | None = None, **detail: object
    ) -> str:
        """Every refusal is audited; the caller answers privately with the returned text."""
        await asyncio.to_thread(
            self.store.audit, actor=where.user, event=event, outcome="refused", request_id=request_id,
            channel_id=where.channel, detail={"reason": reason, **detail},
        )
        metrics.refused(event)
        return f":no_entry: {reason}"

    async def _named_person(self, intent: Intent) -> Intent | str:
        """A plain `@name` becomes the mention of the one person it names, or a private error."""
        if intent.user is None or intent.user.type is not UserRefType.SLACK_NAME:
            return intent
        try:
            person = await self.people.find(intent.user.value)
        except NameNotFound as error:
            return cards.error_text(str(error))
        except SLACK_TROUBLE as error:
            return cards.error_text(f"Slack could not list its people to find `@{intent.user.value}` ({slack_error(error)}).")
        return dataclasses.replace(intent, user=UserRef(UserRefType.SLACK, person.id))

    async def submit(self, intent: Intent, text: str, where: Where) -> str:
        config = self.s.config
        named = await self._named_person(intent)
        if isinstance(named, str):
            return named
        intent = named
        alias = config.workspace_for(intent.workspace, where.channel)
        if alias is None:
            return cards.error_text(
                "Which workspace? This channel has no default.",
                f"{grammar.USAGE.get(str(intent.action), '')}\nWorkspaces: {', '.join(sorted(config.workspaces))}",
            )
        if alias not in config.workspaces:
            known = ", ".join(f"`{a}`" for a in sorted(config.workspaces))
            return cards.error_text(f"Unknown workspace `{alias}`. Known: {known}.")
        actor = await self.s.groups.actor(where.user)
        decision = policy.may_request(config.policy, actor, intent.action, where.channel, alias)
        if not decision.allowed:
            return await self._refuse(where, "request.refused", decision.reason, action=str(intent.action), workspace=alias)
        if earlier := await self._same_pending(intent, alias, where):
            return earlier
        operation = operation_for(intent.action)
        if operation is None:
            return cards.error_text(f"`{intent.action}` is not available in this version of amlbot yet.")
        try:
            if touches_storage(intent.action):  # the workspace's own storage account, or none
                await self.s.doors.bind(alias)
            plan = await operation.preview(
                intent, self._context(alias, request_id=None, user_email=await self._email_of(intent))
            )
        except OperationError as error:
            return cards.error_text(str(error))
        except AzureError as error:  # Azure's own words (an XML or JSON body) stay in the log
            log.exception("preview failed", extra={"action": str(intent.action), "workspace": alias})
            return cards.error_text(
                f"Could not plan `{intent.action}` on `{alias}`: {wording.failure_reason(error)}. "
                "Nothing was requested; the details are in amlbot's log."
            )
        members = await self.s.groups.all_members()
        can = policy.can_be_approved(config.policy, actor, intent.action, alias, len(plan.items), members)
        if not can.allowed:
            return await self._refuse(where, "request.refused", can.reason, action=str(intent.action), workspace=alias)
        record = await asyncio.to_thread(
            self.store.create_request,
            team_id=where.team,
            enterprise_id=where.enterprise,
            channel_id=where.channel,
            requester=where.user,
            text=" ".join(text.split()),
            action=intent.action,
            workspace=alias,
            intent=intent_to_dict(dataclasses.replace(intent, workspace=alias)),
            plan=plan.to_dict(),
            plan_hash=plan.hash,
            approvals_required=policy.approvals_required(config.policy, intent.action),
            expires_in=config.policy.expiry,
        )
        try:
            posted = await self.client.chat_postMessage(
                channel=where.channel, text=cards.card_text(record), blocks=await self._card(record)
            )
        except SlackApiError as error:
            return await self._withdraw(record, error)
        await asyncio.to_thread(self.store.set_card, record.id, posted["ts"])
        if not cards.names_every_item(plan):
            await self._post_plan_file(record, posted["ts"], plan.to_dict())
        await self._announce(record, posted["ts"])
        return f"Request {record.id} is waiting for approval."

    async def _same_pending(self, intent: Intent, alias: str, where: Where) -> str | None:
        """A request for exactly this is already waiting: point to its card rather than make a second."""
        wanted = intent_to_dict(dataclasses.replace(intent, workspace=alias))
        pending = await asyncio.to_thread(self.store.list_requests, states=frozenset({State.PENDING}), limit=PENDING_SCAN)
        first = next((r for r in reversed(pending) if r.intent == wanted and self._here(r, where) and r.card_ts), None)
        if first is None:
            return None
        try:
            link = (await self.client.chat_getPermalink(channel=first.channel_id, message_ts=first.card_ts)).get("permalink")
        except SLACK_TROUBLE:
            link = None
        card = f"<{link}|its card>" if link else f"its card in <#{first.channel_id}>"
        return (
            f":point_right: {first.id} already asks for exactly this (by <@{first.requester}>) and is waiting for "
            f"approval ({len(first.approvers)} of {first.approvals_required}): see {card}. Nothing new was requested."
        )

    async def _withdraw(self, record: RequestRecord, error: SlackApiError) -> str:
        """A request nobody can see cannot be approved: cancel it rather than let it linger."""
        reason = error.response.get("error") or "unknown error"
        await asyncio.to_thread(
            self.store.transition, record.id, State.CANCELLED, actor="amlbot", event="request.card_failed",
            detail={"slack_error": reason},
        )
        return cards.error_text(
            f"Slack refused the request card ({reason}), so {record.id} is cancelled and nothing will run.",
            hint="If the error is not_in_channel, invite the bot to this channel and ask again.",
        )

    async def _announce(self, record: RequestRecord, card_ts: str) -> None:
        """One short post in the approvers' channel, when the policy names one, linking to the card."""
        channel = self.s.config.policy.approvers_channel
        if not channel or channel == record.channel_id:
            return
        try:
            link = (await self.client.chat_getPermalink(channel=record.channel_id, message_ts=card_ts)).get("permalink")
        except SlackApiError:
            link = None  # the notice still names the request and its channel
        await self._post(record, channel=channel, text=cards.approvers_notice(record, link))

    async def _post_plan_file(self, record: RequestRecord, thread_ts: str, plan: dict[str, object]) -> None:
        """The full plan as a file in the card's thread. The card already stands: if Slack refuses
        the file, the thread says so and the request goes on (confirmation, approvers' notice)."""
        try:
            await self.outbox.post(record.channel_id, thread_ts, partial(
                self.client.files_upload_v2, channel=record.channel_id, thread_ts=thread_ts,
                filename=f"{record.id}-plan.json", title=f"Full plan of {record.id}", content=json.dumps(plan, indent=2),
            ))
        except SLACK_TROUBLE as error:
            log.warning("plan file upload failed", extra={"request_id": record.id, "error": slack_error(error)})
            await self._post(
                record, channel=record.channel_id, thread_ts=thread_ts,
                text=f"The full plan of {record.id} could not be attached here: Slack refused the file. "
                "The card lists the first items and counts the rest; the whole plan is kept with the request.",
            )

    def _context(self, alias: str, request_id: str | None, user_email: str | None = None) -> Context:
        return Context(
            alias=alias,
            config=self.s.config.workspaces[alias],
            door=self.s.doors.get(alias),
            control=self.s.doors.control(alias),
            directory=self.s.doors.directory(),
            request_id=request_id,
            link_expiry=self.s.config.export_link_expiry,
            user_email=user_email,
        )

    async def _email_of(self, intent: Intent) -> str | None:
        """Azure knows people by UPN: a Slack mention is looked up to its email, if Slack shares it."""
        if intent.user is None or intent.user.type is not UserRefType.SLACK:
            return None
        try:
            response = await self.client.users_info(user=intent.user.value)
        except SlackApiError as error:
            log.warning("user lookup failed", extra={"user": intent.user.value, "error": error.response.get("error")})
            return None
        email = (response.get("user") or {}).get("profile", {}).get("email")
        return email if isinstance(email, str) and email else None

    async def help(self, command: HelpCommand, where: Where) -> str:
        if command.topic:
            try:
                return "```" + grammar.usage(command.topic) + "```"
            except ValueError:
                return cards.error_text(f"No help on `{command.topic}`.", grammar.usage("help"))
        actions, may_cancel, admin = await self._may_run(where)
        return help.help_text(actions, may_cancel=may_cancel, admin=admin)

    async def _may_run(self, where: Where) -> tuple[list[Action], bool, bool]:
        """What this person may ask for in this channel; whether they may cancel; whether admin."""
        rules = self.s.config.policy
        actor = await self.s.groups.actor(where.user)
        available = [a for a in ALL_ACTIONS if operation_for(a) is not None]
        actions = policy.requestable_actions(rules, actor, available, where.channel)
        return actions, bool(actions) or policy.is_approver(rules, actor), policy.is_admin(rules, actor)

    async def _misread(self, error: grammar.GrammarError, where: Where) -> str:
        """A command that did not parse; a guess at what was meant is only ever one this person may run."""
        if error.guess is None:
            return cards.error_text(error.message, error.usage, error.hint)
        actions, may_cancel, admin = await self._may_run(where)
        allowed = help.allowed_commands(actions, may_cancel=may_cancel, admin=admin)
        hint = help.did_you_mean(error.guess, allowed) or "`/aml help` lists what you may run here."
        return cards.error_text(error.message, "\n".join(grammar.USAGE[c] for c in allowed), hint)

    async def _visible(self, request_id: str, where: Where, event: str) -> RequestRecord | str:
        """The request, if this person may hear of it here; else the very answer an unknown id gets
        (another team's or channel's request is not even confirmed to exist), the refusal audited."""
        record = await asyncio.to_thread(self.store.get, request_id)
        if record is not None:
            actor = await self.s.groups.actor(where.user)
            if policy.may_see(self.s.config.policy, actor, record, team=where.team, channel=where.channel, enterprise=where.enterprise):
                return record
            await asyncio.to_thread(
                self.store.audit, actor=where.user, event=event, outcome="refused", request_id=record.id,
                channel_id=where.channel, detail={"reason": "not visible to this person here", "team": where.team},
            )
            metrics.refused(event)
        return cards.error_text(f"No request `{request_id}`.", grammar.USAGE["list"])

    async def status(self, request_id: str, where: Where) -> str:
        record = await self._visible(request_id, where, "status.refused")
        if isinstance(record, str):
            return record
        approvals = f"{len(record.approvers)} of {record.approvals_required} approvals"
        return f"*{record.id}* `{cards.escape(record.text)}` on `{record.workspace}`: {cards.status_line(record)} ({approvals})"

    async def list(self, scope: str, where: Where) -> str:
        rules = self.s.config.policy
        team, org = policy.listed_from(rules, team=where.team, enterprise=where.enterprise)
        if scope == "pending":
            records = await asyncio.to_thread(
                partial(self.store.list_requests, states=frozenset({State.PENDING}), limit=None, team=team, enterprise=org)
            )
        else:
            records = await asyncio.to_thread(partial(self.store.list_requests, requester=where.user, team=team, enterprise=org))
        actor = await self.s.groups.actor(where.user)
        seen = partial(policy.may_see, rules, actor, team=where.team, channel=where.channel, enterprise=where.enterprise)
        shown = [r for r in records if seen(r)][:LISTED]
        if not shown:
            return "Nothing to show."
        return "\n".join(f"• *{r.id}* `{cards.escape(r.text)}` — {r.state.value.replace('_', ' ')}" for r in shown)

    async def freeze(self, frozen: bool, where: Where) -> str:
        actor = await self.s.groups.actor(where.user)
        word = "freeze" if frozen else "unfreeze"
        if not policy.is_admin(self.s.config.policy, actor):
            return await self._refuse(where, f"{word}.refused", f"Only admins may {word} amlbot.")
        changed = await asyncio.to_thread(self.store.set_frozen, frozen, where.user)
        if not changed:
            return f"amlbot was already {'frozen' if frozen else 'running'}."
        # Every open card says whether jobs may start: each one is re-rendered.
        for record in await asyncio.to_thread(self.store.list_requests, states=OPEN, limit=None):
            await self.refresh_card(record)
        if not frozen:
            self.s.wake_worker.set()
        return ":ice_cube: Frozen: no new job will start." if frozen else ":arrow_forward: Unfrozen: jobs start again."

    async def cancel(self, request_id: str, where: Where) -> str:
        record = await self._visible(request_id, where, "cancel.refused")
        if isinstance(record, str):
            return record
        return await self._cancel(record, where)

    async def revoke(self, request_id: str, where: Where) -> str:
        """Delete an export's archive, which kills its link; audited. Storage first, then the
        store, then Slack: the thread never says a link is dead while it still works."""
        record = await self._visible(request_id, where, "revoke.refused")
        if isinstance(record, str):
            return record
        actor = await self.s.groups.actor(where.user)
        rules = self.s.config.policy
        allowed = policy.may_cancel(rules, actor, requester=record.requester, workspace=record.workspace, verb="revoke")
        if not allowed.allowed:
            return await self._refuse(where, "revoke.refused", allowed.reason, request_id=record.id)
        archive = ((record.result or {}).get("extras") or {}).get("archive")
        if not isinstance(archive, str):
            return await self._refuse(where, "revoke.refused", f"{record.id} made no export archive: there is nothing to revoke.",
                                      request_id=record.id)
        from commands.operations.cleanup_exports import delete_archive  # the storage SDKs: loaded on first use, not at start

        try:
            outcome = await delete_archive(self._context(record.workspace, record.id), record.id, archive)
            reason = outcome.reason if outcome.status is Status.FAILED else None
        except (AzureError, OperationError) as error:
            log.exception("revoke failed", extra={"request_id": record.id})
            reason = wording.failure_reason(error)
        if reason is not None:
            log.warning("revoke failed", extra={"request_id": record.id, "reason": reason})
            return cards.error_text(wording.failed(record.id, reason, f"Revoking {record.id}"))
        revoked = await asyncio.to_thread(
            self.store.revoke_export, record.id, where.user, {"archive": archive, "outcome": outcome.status.value}
        )
        await self.refresh_card(revoked)  # and the Home tabs showing its link
        await self.tell(record, f"<@{where.user}> revoked the export of {record.id}: its archive is deleted, "
                        "and its download link no longer works.")
        return f"The archive of {record.id} is deleted: its download link no longer works."

    async def _cancel(self, record: RequestRecord, where: Where) -> str:
        actor = await self.s.groups.actor(where.user)
        allowed = policy.may_cancel(self.s.config.policy, actor, requester=record.requester, workspace=record.workspace)
        if not allowed.allowed:
            return await self._refuse(where, "cancel.refused", allowed.reason, request_id=record.id)
        try:
            result = await asyncio.to_thread(self.store.cancel, record.id, where.user)
        except IllegalTransition:
            return await self._too_late(where, "cancel.refused", record)
        if result.stopping:
            await self.tell(result.request, f"<@{record.requester}> <@{where.user}> asked to stop {record.id}: "
                            "it stops after the current step, with a partial receipt.")
            return f"{record.id} is running: it stops after the current step, with a partial receipt."
        await self.refresh_card(result.request)
        await self.tell(result.request, cards.decision_text(result.request, where.user))
        return f"{record.id} is cancelled."

    # ---- clicks ----------------------------------------------------------------------------

    async def click(self, action_id: str, value: object, where: Where, trigger_id: str | None = None) -> str | None:
        """A button on a card; returns the private reply, if any. Nothing here trusts the payload."""
        handlers: dict[str, Callable[[RequestRecord, Where], Awaitable[str | None]]] = {
            cards.ActionId.APPROVE: self._approve,
            cards.ActionId.REJECT: lambda record, at: self._ask_reason(record, at, trigger_id),
            cards.ActionId.CANCEL: self._cancel,
            cards.ActionId.RUN_NOW: self._run_now,
        }
        handler = handlers.get(action_id)
        found = await self._named_request(value if handler else None, where, "click.refused", "That button")
        return found if isinstance(found, str) else await handler(found, where)  # type: ignore[misc]

    async def _named_request(self, value: object, where: Where, event: str, what: str) -> RequestRecord | str:
        """The request a button or form names, if it exists where it was used; else the refusal."""
        if not isinstance(value, str) or not REQUEST_ID.fullmatch(value):
            return await self._refuse(where, event, f"{what} does not name a request.", value=str(value)[:40])
        record = await asyncio.to_thread(self.store.get, value)
        if record is None or where.channel not in (record.channel_id, HOME_TAB) or not self._here(record, where):
            return await self._refuse(where, event, "That request does not exist in this channel.", value=value)
        return record

    def _here(self, record: RequestRecord, where: Where) -> bool:
        """Whether `record` belongs where the person is: their workspace, or (org_wide) their org."""
        return policy.same_place(self.s.config.policy, record, team=where.team, enterprise=where.enterprise)

    async def _too_late(self, where: Where, event: str, record: RequestRecord) -> str:
        """A click on a card that has moved on (a stale card, a second click, a race): refused,
        unchanged, and said as it stands now."""
        current = await asyncio.to_thread(self.store.get, record.id) or record
        return await self._refuse(where, event, wording.already(current), request_id=record.id)

    async def _may_approve(self, record: RequestRecord, where: Where) -> policy.Decision:
        actor = await self.s.groups.actor(where.user)
        return policy.may_approve_request(self.s.config.policy, actor, record)

    async def _approve(self, record: RequestRecord, where: Where) -> str | None:
        if record.state is not State.PENDING:
            return await self._too_late(where, "approve.refused", record)
        allowed = await self._may_approve(record, where)
        if not allowed.allowed:
            return await self._refuse(where, "approve.refused", allowed.reason, request_id=record.id)
        wait = policy.cooling_off(self.s.config.policy, record.action)
        try:
            result = await asyncio.to_thread(self.store.approve, record.id, where.user, cooling_off=wait)
        except RequestExpired:
            await self.expire(record.id)  # the sweep may be late: the card says so now
            return await self._refuse(where, "approve.refused", wording.expired(record), request_id=record.id)
        except IllegalTransition:
            return await self._too_late(where, "approve.refused", record)
        if not result.added:
            return f"You have already approved {record.id}."
        metrics.approved()
        await self.refresh_card(result.request)
        if not result.quorum_reached_now:
            return f"Your approval of {record.id} is recorded: {result.count} of {record.approvals_required}."
        self.s.wake_worker.set()
        await self.tell(result.request, cards.decision_text(result.request))
        return None

    async def _may_reject(self, record: RequestRecord, where: Where) -> str | None:
        """Why `where.user` may not reject `record` now (refused and audited), or None."""
        if record.state is not State.PENDING:
            return await self._too_late(where, "reject.refused", record)
        allowed = await self._may_approve(record, where)
        # A requester may always withdraw their own request.
        if not allowed.allowed and where.user != record.requester:
            return await self._refuse(where, "reject.refused", allowed.reason, request_id=record.id)
        return None

    async def _ask_reason(self, record: RequestRecord, where: Where, trigger_id: str | None) -> str | None:
        """Reject opens a form asking why; the rejection happens when it is sent (`reject`)."""
        if refused := await self._may_reject(record, where):
            return refused
        try:
            await self.client.views_open(
                trigger_id=trigger_id or "", view=cards.reject_modal(record, where.channel, await self.names(record))
            )
        except SLACK_TROUBLE as error:
            log.warning("reject form failed", extra={"request_id": record.id, "error": slack_error(error)})
            return cards.error_text(f"Slack did not open the form for a reason ({slack_error(error)}): press Reject again.")
        return None

    async def reject(self, value: object, reason: str, where: Where) -> str | None:
        """The reject form was sent: the request is rejected, and its reason goes to the requester (in
        the card's thread, mentioning them) and into the audit log."""
        record = await self._named_request(value, where, "reject.refused", "That form")
        if isinstance(record, str):
            return record
        if refused := await self._may_reject(record, where):
            return refused
        reason = " ".join(reason.split())[: cards.REASON_LIMIT]
        try:
            moved = await asyncio.to_thread(
                self.store.transition, record.id, State.REJECTED, actor=where.user, event="request.rejected",
                expected=frozenset({State.PENDING}), decided_by=where.user, decided_at=now(), detail={"reason": reason},
            )
        except IllegalTransition:
            return await self._too_late(where, "reject.refused", record)
        await self.refresh_card(moved)
        await self.tell(moved, cards.decision_text(moved, where.user, reason))
        return None

    async def answer_privately(self, where: Where, text: str) -> None:
        """An answer with no response_url (a submitted form) or past it (bot/replies.py): only `where.user` sees it."""
        if where.channel == HOME_TAB:
            for notice in self.on_home_notice:
                await notice(where.user, text)
            return
        try:
            await self.client.chat_postEphemeral(channel=where.channel, user=where.user, text=text)
        except SLACK_TROUBLE as error:
            log.warning("private answer failed", extra={"user": where.user, "error": slack_error(error)})

    async def _run_now(self, record: RequestRecord, where: Where) -> str | None:
        """An approver ends a cooling-off early: APPROVED → QUEUED."""
        if record.state is not State.APPROVED:
            return await self._too_late(where, "run_now.refused", record)
        actor = await self.s.groups.actor(where.user)
        allowed = policy.may_run_now(self.s.config.policy, actor, requester=record.requester, workspace=record.workspace)
        if not allowed.allowed:
            return await self._refuse(where, "run_now.refused", allowed.reason, request_id=record.id)
        try:
            moved = await asyncio.to_thread(
                self.store.transition, record.id, State.QUEUED, actor=where.user, event="request.run_now",
                expected=frozenset({State.APPROVED}),
            )
        except IllegalTransition:
            return await self._too_late(where, "run_now.refused", record)
        self.s.wake_worker.set()
        await self.refresh_card(moved)
        await self.tell(moved, cards.decision_text(moved, where.user))
        return None

    async def expire(self, request_id: str) -> None:
        """A request past its deadline (or approved only after it) expires; its card and thread say so."""
        try:
            expired = await asyncio.to_thread(
                self.store.transition, request_id, State.EXPIRED, actor="amlbot", event="request.expired",
                expected=WAITING,
            )
        except IllegalTransition:
            return  # decided, or expired, meanwhile
        await self.refresh_card(expired)
        await self.tell(expired, cards.decision_text(expired))

    # ---- Slack edges -----------------------------------------------------------------------

    async def names(self, record: RequestRecord) -> dict[str, str]:
        """The Slack name of the person a request is about, for headlines in plain text."""
        intent = plan_words.intent_of(record.intent.get("text"))
        if intent is None or intent.user is None or intent.user.type is not UserRefType.SLACK:
            return {}
        try:
            people = await self.people.everyone()
        except SLACK_TROUBLE as error:
            log.warning("people lookup failed", extra={"request_id": record.id, "error": slack_error(error)})
            return {}
        return {p.id: p.real_name or p.handle for p in people if p.id == intent.user.value}

    async def _card(self, record: RequestRecord) -> list[cards.Block]:
        users, groups = policy.whom_to_ask(self.s.config.policy, record.workspace, record.requester, record.approvers)
        frozen = await asyncio.to_thread(self.store.frozen)
        return cards.request_card(record, approvers=users, groups=groups, frozen=frozen, names=await self.names(record))

    async def refresh_card(self, record: RequestRecord) -> None:
        """Re-render the card from the database: it never says more than the store knows."""
        if not record.card_ts:
            return
        try:
            await self.outbox.edit(record.channel_id, record.card_ts, partial(self._rerender, record))
        except SLACK_TROUBLE as error:
            log.warning("card update failed", extra={"request_id": record.id, "error": slack_error(error)})
        fresh = await asyncio.to_thread(self.store.get, record.id) or record
        for listener in self.on_change:
            await listener(fresh)

    async def _rerender(self, record: RequestRecord) -> None:
        fresh = await asyncio.to_thread(self.store.get, record.id) or record
        await self.client.chat_update(
            channel=fresh.channel_id, ts=fresh.card_ts, text=cards.card_text(fresh), blocks=await self._card(fresh)
        )

    async def tell(self, record: RequestRecord, text: str) -> None:
        """A post in the card's thread (a decision, a reminder); Slack trouble never undoes the change.
        Its place in the thread is taken before the first await: a job woken just before posts after it."""
        if record.card_ts:
            await self._post(record, channel=record.channel_id, text=text, thread_ts=record.card_ts)

    async def direct_message(self, user: str, **message: object) -> None:
        """A message to one person alone, in their DM with the bot (opened if need be: im:write)."""
        opened = await self.client.conversations_open(users=user)
        await self.client.chat_postMessage(channel=opened["channel"]["id"], **message)

    async def _post(self, record: RequestRecord, **message: str) -> None:
        try:
            await self.outbox.post(message["channel"], message.get("thread_ts"), partial(self.client.chat_postMessage, **message))
        except SLACK_TROUBLE as error:
            log.warning("post failed", extra={"request_id": record.id, "error": slack_error(error)})



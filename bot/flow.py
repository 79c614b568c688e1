"""The request lifecycle: commands in, cards out, clicks into decisions. Handlers stay thin.

Every change is committed to the store before Slack hears of it; Slack calls that fail after the
commit are logged and repaired by the next card refresh, never rolled back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import cards, policy
from bot.doors import Doors
from bot.lifecycle import WAITING, IllegalTransition, State
from bot.settings import AppConfig, Settings
from bot.store.store import RequestRecord, Store, now
from bot.usergroups import GroupResolver
from commands import grammar
from commands.intents import (
    KINDS_BY_VERB,
    CancelCommand,
    FreezeCommand,
    HelpCommand,
    Intent,
    ListCommand,
    StatusCommand,
    UnfreezeCommand,
)
from commands.operations import operation_for
from commands.operations.base import Context, OperationError

log = logging.getLogger(__name__)

ALL_ACTIONS = [f"{verb.value} {kind.value}" for verb, kinds in KINDS_BY_VERB.items() for kind in kinds]


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


def intent_to_dict(intent: Intent) -> dict[str, object]:
    return {"text": grammar.render(intent)}


def intent_from_dict(data: dict[str, object]) -> Intent:
    parsed = grammar.parse(str(data["text"]))
    assert isinstance(parsed, Intent)
    return parsed


class Flow:
    def __init__(self, services: Services, client: AsyncWebClient) -> None:
        self.s = services
        self.client = client

    @property
    def store(self) -> Store:
        return self.s.store

    # ---- commands ------------------------------------------------------------------------

    async def command(self, text: str, where: Where) -> str | None:
        """Handle `/aml <text>`; returns the private reply, if any."""
        try:
            parsed = grammar.parse(text)
        except grammar.GrammarError as error:
            return cards.error_text(error.message, error.usage, error.hint)
        match parsed:
            case Intent():
                return await self.submit(parsed, text, where)
            case HelpCommand():
                return await self.help(parsed, where)
            case StatusCommand(request_id=rid):
                return await self.status(rid)
            case CancelCommand(request_id=rid):
                return await self.cancel(rid, where)
            case ListCommand(scope=scope):
                return await self.list(scope, where)
            case FreezeCommand() | UnfreezeCommand():
                return await self.freeze(isinstance(parsed, FreezeCommand), where)
        return None

    async def _refuse(self, where: Where, event: str, reason: str, **detail: object) -> str:
        await asyncio.to_thread(
            self.store.audit, actor=where.user, event=event, outcome="refused",
            channel_id=where.channel, detail={"reason": reason, **detail},
        )
        return f":no_entry: {reason}"

    async def submit(self, intent: Intent, text: str, where: Where) -> str:
        config = self.s.config
        alias = config.workspace_for(intent.workspace, where.channel)
        if alias is None:
            return cards.error_text(
                "Which workspace? This channel has no default.",
                f"{grammar.USAGE.get(intent.action, '')}\nWorkspaces: {', '.join(sorted(config.workspaces))}",
            )
        if alias not in config.workspaces:
            known = ", ".join(f"`{a}`" for a in sorted(config.workspaces))
            return cards.error_text(f"Unknown workspace `{alias}`. Known: {known}.")
        actor = await self.s.groups.actor(where.user)
        decision = policy.may_request(config.policy, actor, intent.action, where.channel, alias)
        if not decision.allowed:
            return await self._refuse(where, "request.refused", decision.reason, action=intent.action, workspace=alias)
        operation = operation_for(intent.action)
        if operation is None:
            return cards.error_text(f"`{intent.action}` is not available in this version of amlbot yet.")
        try:
            plan = await operation.preview(intent, self._context(alias, request_id=None))
        except OperationError as error:
            return cards.error_text(str(error))
        members = await self.s.groups.all_members()
        can = policy.can_be_approved(config.policy, actor, intent.action, len(plan.items), members)
        if not can.allowed:
            return await self._refuse(where, "request.refused", can.reason, action=intent.action, workspace=alias)
        record = await asyncio.to_thread(
            self.store.create_request,
            team_id=where.team,
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
        posted = await self.client.chat_postMessage(
            channel=where.channel, text=cards.card_text(record), blocks=await self._card(record)
        )
        await asyncio.to_thread(self.store.set_card, record.id, posted["ts"])
        if len(plan.items) > cards.MAX_LISTED_ITEMS:
            await self._post_plan_file(record, posted["ts"], plan.to_dict())
        return f"Request {record.id} is waiting for approval."

    async def _post_plan_file(self, record: RequestRecord, thread_ts: str, plan: dict[str, object]) -> None:
        await self.client.files_upload_v2(
            channel=record.channel_id, thread_ts=thread_ts, filename=f"{record.id}-plan.json",
            title=f"Full plan of {record.id}", content=json.dumps(plan, indent=2),
        )

    def _context(self, alias: str, request_id: str | None) -> Context:
        return Context(
            alias=alias,
            config=self.s.config.workspaces[alias],
            door=self.s.doors.get(alias),
            settings={"request_id": request_id, "link_expiry": self.s.config.export_link_expiry},
        )

    async def help(self, command: HelpCommand, where: Where) -> str:
        if command.topic:
            try:
                return "```" + grammar.usage(command.topic) + "```"
            except ValueError:
                return cards.error_text(f"No help on `{command.topic}`.", grammar.usage("help"))
        actor = await self.s.groups.actor(where.user)
        lines = [grammar.USAGE[a] for a in policy.requestable_actions(self.s.config.policy, actor, ALL_ACTIONS)]
        lines += [grammar.USAGE[k] for k in ("status", "cancel", "list", "help")]
        if policy.is_admin(self.s.config.policy, actor):
            lines += [grammar.USAGE["freeze"], grammar.USAGE["unfreeze"]]
        return "*What you can run here*\n```" + "\n".join(lines) + "```"

    async def status(self, request_id: str) -> str:
        record = await asyncio.to_thread(self.store.get, request_id)
        if record is None:
            return cards.error_text(f"No request `{request_id}`.", grammar.USAGE["list"])
        approvals = f"{len(record.approvers)} of {record.approvals_required} approvals"
        return f"*{record.id}* `{cards.escape(record.text)}` on `{record.workspace}`: *{record.state.value}* ({approvals})"

    async def list(self, scope: str, where: Where) -> str:
        if scope == "pending":
            records = await asyncio.to_thread(self.store.list_requests, states=frozenset({State.PENDING}))
        else:
            records = await asyncio.to_thread(self.store.list_requests, requester=where.user)
        if not records:
            return "Nothing to show."
        return "\n".join(f"• *{r.id}* `{cards.escape(r.text)}` — {r.state.value}" for r in records)

    async def freeze(self, frozen: bool, where: Where) -> str:
        actor = await self.s.groups.actor(where.user)
        word = "freeze" if frozen else "unfreeze"
        if not policy.is_admin(self.s.config.policy, actor):
            return await self._refuse(where, f"{word}.refused", f"Only admins may {word} amlbot.")
        changed = await asyncio.to_thread(self.store.set_frozen, frozen, where.user)
        if not changed:
            return f"amlbot was already {'frozen' if frozen else 'running'}."
        for record in await asyncio.to_thread(self.store.list_requests, states=WAITING, limit=200):
            await self.refresh_card(record)
        if not frozen:
            self.s.wake_worker.set()
        return ":ice_cube: Frozen: no new job will start." if frozen else ":arrow_forward: Unfrozen: jobs start again."

    async def cancel(self, request_id: str, where: Where) -> str:
        record = await asyncio.to_thread(self.store.get, request_id)
        if record is None:
            return cards.error_text(f"No request `{request_id}`.", grammar.USAGE["list"])
        return await self._cancel(record, where)

    async def _cancel(self, record: RequestRecord, where: Where) -> str:
        actor = await self.s.groups.actor(where.user)
        pool = policy.approver_pool(self.s.config.policy, await self.s.groups.all_members())
        if where.user != record.requester and where.user not in pool:
            return await self._refuse(where, "cancel.refused", "Only the requester or an approver may cancel.", request_id=record.id)
        if record.state is State.RUNNING:
            await asyncio.to_thread(self.store.request_cancel, record.id)
            await asyncio.to_thread(
                self.store.audit, actor=actor.user_id, event="cancel.requested", outcome="ok",
                request_id=record.id, channel_id=record.channel_id,
            )
            return f"{record.id} is running: it stops after the current step, with a partial receipt."
        try:
            moved = await asyncio.to_thread(
                self.store.transition, record.id, State.CANCELLED, actor=where.user, event="request.cancelled",
                expected=WAITING, decided_by=where.user, decided_at=now(),
            )
        except IllegalTransition as error:
            return cards.error_text(str(error))
        await self.refresh_card(moved)
        await self._tell(moved, f"<@{moved.requester}> {moved.id} was cancelled by <@{where.user}>.")
        return f"{moved.id} is cancelled."

    # ---- clicks ----------------------------------------------------------------------------

    async def click(self, action_id: str, request_id: str, where: Where) -> str | None:
        record = await asyncio.to_thread(self.store.get, request_id)
        if record is None or record.channel_id != where.channel or record.team_id != where.team:
            return await self._refuse(where, "click.refused", "That request does not exist in this channel.", request_id=request_id[:40])
        if action_id == cards.CANCEL:
            return await self._cancel(record, where)
        if record.state is not State.PENDING:
            return f"{record.id} is already {record.state.value}."
        actor = await self.s.groups.actor(where.user)
        item_count = len((record.plan or {}).get("items", []))
        allowed = policy.may_approve(
            self.s.config.policy, actor, requester=record.requester, action=record.action,
            workspace=record.workspace, item_count=item_count,
        )
        verb = "approve" if action_id == cards.APPROVE else "reject"
        if not allowed.allowed and not (verb == "reject" and where.user == record.requester):
            return await self._refuse(where, f"{verb}.refused", allowed.reason, request_id=record.id)
        if verb == "reject":
            try:
                moved = await asyncio.to_thread(
                    self.store.transition, record.id, State.REJECTED, actor=where.user, event="request.rejected",
                    expected=frozenset({State.PENDING}), decided_by=where.user, decided_at=now(),
                )
            except IllegalTransition as error:
                return cards.error_text(str(error))
            await self.refresh_card(moved)
            await self._tell(moved, f"<@{moved.requester}> {moved.id} was rejected by <@{where.user}>.")
            return None
        try:
            result = await asyncio.to_thread(
                self.store.approve, record.id, where.user, cooling_off=self._cooling_off(record)
            )
        except IllegalTransition as error:
            return cards.error_text(str(error))
        if not result.added:
            return f"You have already approved {record.id}."
        await self.refresh_card(result.request)
        if result.quorum_reached_now:
            self.s.wake_worker.set()
            await self._tell(result.request, f"<@{record.requester}> {record.id} is approved by "
                             + ", ".join(f"<@{u}>" for u in result.request.approvers) + ".")
        return None

    def _cooling_off(self, record: RequestRecord) -> timedelta:
        # Only erasures of personal data wait: a last chance to stop a mistaken one.
        return self.s.config.policy.cooling_off if record.action == "delete user" else timedelta(0)

    # ---- Slack edges -----------------------------------------------------------------------

    async def _card(self, record: RequestRecord) -> list[cards.Block]:
        pool = policy.approver_pool(self.s.config.policy, await self.s.groups.all_members())
        frozen = await asyncio.to_thread(self.store.frozen)
        return cards.request_card(record, approvers=pool - {record.requester}, frozen=frozen)

    async def refresh_card(self, record: RequestRecord) -> None:
        """Re-render the card from the database: it never says more than the store knows."""
        if not record.card_ts:
            return
        fresh = await asyncio.to_thread(self.store.get, record.id) or record
        try:
            await self.client.chat_update(
                channel=fresh.channel_id, ts=fresh.card_ts, text=cards.card_text(fresh), blocks=await self._card(fresh)
            )
        except SlackApiError as error:
            log.warning("card update failed", extra={"request_id": fresh.id, "error": error.response.get("error")})

    async def _tell(self, record: RequestRecord, text: str) -> None:
        if not record.card_ts:
            return
        try:
            await self.client.chat_postMessage(channel=record.channel_id, thread_ts=record.card_ts, text=text)
        except SlackApiError as error:
            log.warning("thread post failed", extra={"request_id": record.id, "error": error.response.get("error")})



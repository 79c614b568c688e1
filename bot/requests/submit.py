"""`/aml export|delete|cleanup …`: an intent becomes a previewed plan, a stored request and its card."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import cards, policy, wording
from bot.lifecycle import State
from bot.people import NameNotFound
from bot.publisher import SLACK_TROUBLE, Where, slack_error
from bot.requests.desk import Desk
from bot.store.store import RequestRecord
from commands import grammar
from commands.azure import sdk
from commands.intents import Intent, UserRef, UserRefType
from commands.operations import operation_for
from commands.operations.base import OperationError
from commands.plan import Plan, hash_of

log = logging.getLogger(__name__)

PENDING_SCAN = 500  # pending requests compared with a new one; more than that waiting is an incident anyway


def _stored_form(plan: Plan) -> tuple[dict[str, Any], str]:
    """The plan as stored, and its hash: seconds for a plan of 100 000 items, so not on the event loop."""
    stored = plan.to_dict()
    return stored, hash_of(stored)


def intent_to_dict(intent: Intent) -> dict[str, object]:
    return {"text": grammar.render(intent)}


class Submit:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def run(self, intent: Intent, text: str, where: Where) -> str:
        desk, config = self.desk, self.desk.config
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
        actor = await desk.actor(where)
        decision = policy.may_request(config.policy, actor, intent.action, where.channel, alias)
        if not decision.allowed:
            return await desk.refuse(where, "request.refused", decision.reason, action=str(intent.action), workspace=alias)
        if earlier := await self._same_pending(intent, alias, where):
            return earlier
        operation = operation_for(intent.action)
        if operation is None:
            return cards.error_text(f"`{intent.action}` is not available in this version of amlbot yet.")
        try:
            await desk.contexts.bind_storage(intent.action, alias)  # the workspace's own storage account, or none
            ctx = desk.contexts.for_request(alias, request_id=None, user_email=await self._email_of(intent))
            plan = await operation.preview(intent, ctx)
        except OperationError as error:
            return cards.error_text(str(error))
        except sdk.AzureError as error:  # Azure's own words (an XML or JSON body) stay in the log
            log.exception("preview failed", extra={"action": str(intent.action), "workspace": alias})
            return cards.error_text(
                f"Could not plan `{intent.action}` on `{alias}`: {wording.failure_reason(error)}. "
                "Nothing was requested; the details are in amlbot's log."
            )
        members = await desk.groups.all_members()
        can = policy.can_be_approved(config.policy, actor, intent.action, alias, len(plan.items), members)
        if not can.allowed:
            return await desk.refuse(where, "request.refused", can.reason, action=str(intent.action), workspace=alias)
        stored, plan_hash = await asyncio.to_thread(_stored_form, plan)
        record = await asyncio.to_thread(
            desk.store.create_request,
            team_id=where.team,
            enterprise_id=where.enterprise,
            channel_id=where.channel,
            requester=where.user,
            text=" ".join(text.split()),
            action=intent.action,
            workspace=alias,
            intent=intent_to_dict(dataclasses.replace(intent, workspace=alias)),
            plan=stored,
            plan_hash=plan_hash,
            approvals_required=policy.approvals_required(config.policy, intent.action),
            expires_in=config.policy.expiry,
        )
        try:
            card_ts = await desk.publisher.post_card(record, plan)
        except SlackApiError as error:
            return await self._withdraw(record, error)
        await asyncio.to_thread(desk.store.set_card, record.id, card_ts)
        record = dataclasses.replace(record, card_ts=card_ts)
        summary = await desk.publisher.summary(record)
        if summary is not None and not cards.names_every_item(summary):
            await desk.publisher.post_plan_file(record, stored)
        await desk.publisher.announce(record)
        return f"Request {record.id} is waiting for approval."

    async def _named_person(self, intent: Intent) -> Intent | str:
        """A plain `@name` becomes the mention of the one person it names, or a private error."""
        if intent.user is None or intent.user.type is not UserRefType.SLACK_NAME:
            return intent
        try:
            person = await self.desk.publisher.people.find(intent.user.value)
        except NameNotFound as error:
            return cards.error_text(str(error))
        except SLACK_TROUBLE as error:
            return cards.error_text(f"Slack could not list its people to find `@{intent.user.value}` ({slack_error(error)}).")
        return dataclasses.replace(intent, user=UserRef(UserRefType.SLACK, person.id))

    async def _email_of(self, intent: Intent) -> str | None:
        """Azure knows people by UPN: a Slack mention is looked up to its email, if Slack shares it."""
        if intent.user is None or intent.user.type is not UserRefType.SLACK:
            return None
        return await self.desk.publisher.email_of(intent.user.value)

    async def _same_pending(self, intent: Intent, alias: str, where: Where) -> str | None:
        """A request for exactly this is already waiting: point to its card rather than make a second."""
        wanted = intent_to_dict(dataclasses.replace(intent, workspace=alias))
        pending = await asyncio.to_thread(self.desk.store.list_requests, states=frozenset({State.PENDING}), limit=PENDING_SCAN)
        first = next((r for r in reversed(pending) if r.intent == wanted and self.desk.here(r, where) and r.card_ts), None)
        if first is None:
            return None
        link = await self.desk.publisher.permalink(first)
        card = f"<{link}|its card>" if link else f"its card in <#{first.channel_id}>"
        return (
            f":point_right: {first.id} already asks for exactly this (by <@{first.requester}>) and is waiting for "
            f"approval ({len(first.approvers)} of {first.approvals_required}): see {card}. Nothing new was requested."
        )

    async def _withdraw(self, record: RequestRecord, error: SlackApiError) -> str:
        """A request nobody can see cannot be approved: cancel it rather than let it linger."""
        reason = error.response.get("error") or "unknown error"
        await asyncio.to_thread(
            self.desk.store.transition, record.id, State.CANCELLED, actor="amlbot", event="request.card_failed",
            detail={"slack_error": reason},
        )
        return cards.error_text(
            f"Slack refused the request card ({reason}), so {record.id} is cancelled and nothing will run.",
            hint="If the error is not_in_channel, invite the bot to this channel and ask again.",
        )

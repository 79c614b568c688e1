"""Everything amlbot says in Slack goes out here: request cards, their threads, files, direct
messages, private answers and the Home tab. Block Kit comes from bot/cards.py and bot/home.py; what
to say is decided by the use cases (bot/requests/) and the worker.

Every change is committed to the store before Slack hears of it: Slack calls that fail after the
commit are logged and repaired by the next card refresh, never rolled back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import cards, plan_words, policy
from bot.outbox import Outbox
from bot.people import SlackPeople
from bot.settings import PolicyConfig
from bot.store.store import RequestRecord, Store
from commands.intents import UserRefType
from commands.plan import Plan

log = logging.getLogger(__name__)

T = TypeVar("T")
Call = Callable[[], Awaitable[Any]]  # one Slack call, made when its turn comes

# What a Slack call raises when Slack refuses it, or cannot be reached once the client's retries are spent.
SLACK_TROUBLE = (SlackApiError, aiohttp.ClientError, TimeoutError)
HOME_TAB = "app_home"  # Where.channel of a click on the App Home tab, which has no channel
SUMMARIES_KEPT = 256  # plan summaries kept (counts by run, model…, not items): more requests than are open at once


@dataclass(frozen=True)
class Where:
    """Who acted, in which team and channel (HOME_TAB for the App Home tab)."""

    team: str
    channel: str
    user: str
    enterprise: str | None = None  # the Enterprise Grid org of `team`, when there is one


def slack_error(error: BaseException) -> str:
    """Slack's error code, or what kept the call from reaching Slack."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error"))
    return f"{type(error).__name__}: {error}"


class Publisher:
    def __init__(self, client: AsyncWebClient, store: Store, rules: PolicyConfig, people: SlackPeople) -> None:
        self.client = client
        self.store = store
        self.rules = rules
        self.people = people
        # Thread posts in order; a card's edits one at a time, coalesced, each rendered from a fresh
        # read, so a slow edit never overwrites a newer one (bot/outbox.py).
        self._outbox = Outbox()
        self.on_change: list[Callable[[RequestRecord], Awaitable[None]]] = []  # told after each card refresh
        self.on_home_notice: list[Callable[[str, str], Awaitable[None]]] = []  # answers for a user on the Home tab
        self._summaries: dict[tuple[str, str | None], plan_words.Summary] = {}  # see `summary`

    # ---- the card --------------------------------------------------------------------------

    async def post_card(self, record: RequestRecord, plan: Plan | None = None) -> str:
        """The request's card in its channel; its ts. Slack's refusal is the caller's to handle.
        `plan`: the plan just stored with `record`, which spares parsing it again."""
        await self.summary(record, plan)
        posted = await self.client.chat_postMessage(
            channel=record.channel_id, text=cards.card_text(record), blocks=await self._card(record)
        )
        return str(posted["ts"])

    async def summary(self, record: RequestRecord, plan: Plan | None = None) -> plan_words.Summary | None:
        """What the card, the Home tab and the reject form say of the request's plan. Made once per
        request in this process, in a thread: parsing and grouping a plan of 100 000 items takes
        seconds, and every click re-renders the card. Kept under the plan's stored hash, which is what
        a render shows; the worker checks the plan itself against that hash before running it."""
        if record.plan_items is None:
            return None
        key = (record.id, record.plan_hash)
        known = self._summaries.pop(key, None)
        if known is None:
            known = await asyncio.to_thread(plan_words.summarize, plan) if plan else await asyncio.to_thread(self._summarize, record.id)
        if known is None:  # the request is gone
            return None
        self._summaries[key] = known  # the most recently used last
        if len(self._summaries) > SUMMARIES_KEPT:
            del self._summaries[next(iter(self._summaries))]
        return known

    def _summarize(self, request_id: str) -> plan_words.Summary | None:
        stored = self.store.plan_of(request_id)
        return None if stored is None else plan_words.summarize(Plan.from_dict(stored))

    async def refresh_card(self, record: RequestRecord) -> None:
        """Re-render the card from the database: it never says more than the store knows."""
        card_ts = record.card_ts
        if not card_ts:
            return
        try:
            await self._outbox.edit(record.channel_id, card_ts, partial(self._rerender, record, card_ts))
        except SLACK_TROUBLE as error:
            log.warning("card update failed", extra={"request_id": record.id, "error": slack_error(error)})
        fresh = await asyncio.to_thread(self.store.get, record.id) or record
        for listener in self.on_change:
            await listener(fresh)

    async def _rerender(self, record: RequestRecord, card_ts: str) -> None:
        fresh = await asyncio.to_thread(self.store.get, record.id) or record
        await self.client.chat_update(channel=fresh.channel_id, ts=card_ts, text=cards.card_text(fresh), blocks=await self._card(fresh))

    async def _card(self, record: RequestRecord) -> list[cards.Block]:
        users, groups = policy.whom_to_ask(self.rules, record.workspace, record.requester, record.approvers)
        frozen = await asyncio.to_thread(self.store.frozen)
        return cards.request_card(
            record, await self.summary(record), approvers=users, groups=groups, frozen=frozen, names=await self.names(record)
        )

    async def permalink(self, record: RequestRecord) -> str | None:
        """A link to the request's card, if Slack gives one."""
        if not record.card_ts:
            return None
        try:
            answer = await self.client.chat_getPermalink(channel=record.channel_id, message_ts=record.card_ts)
        except SLACK_TROUBLE as error:
            log.warning("permalink failed", extra={"request_id": record.id, "error": slack_error(error)})
            return None
        return str(answer.get("permalink") or "") or None

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

    # ---- the card's thread, and other channels ----------------------------------------------

    async def tell(self, record: RequestRecord, text: str) -> None:
        """A post in the card's thread (a decision, a reminder); Slack trouble never undoes the change.
        Its place in the thread is taken before the first await: a job woken just before posts after it."""
        if record.card_ts:
            await self.post(record, record.channel_id, text, thread_ts=record.card_ts)

    async def post(self, record: RequestRecord, channel: str, text: str, thread_ts: str | None = None) -> None:
        """A message about `record`; Slack trouble is logged, never raised."""
        try:
            await self._outbox.post(channel, thread_ts, partial(self.client.chat_postMessage, channel=channel, text=text, thread_ts=thread_ts))
        except SLACK_TROUBLE as error:
            log.warning("post failed", extra={"request_id": record.id, "error": slack_error(error)})

    def in_thread(self, record: RequestRecord, call: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        """`call` queued behind the posts already queued for the card's thread, waiting out Slack's
        rate limits; its place is taken now. Await it for Slack's answer; a refusal is raised."""
        return self._outbox.post(record.channel_id, record.card_ts, call)

    def thread_message(self, record: RequestRecord, text: str, blocks: list[cards.Block] | None = None) -> Call:
        """A post in the card's thread, to send with `in_thread`."""
        return partial(self.client.chat_postMessage, channel=record.channel_id, thread_ts=record.card_ts, text=text, blocks=blocks)

    def thread_file(self, record: RequestRecord, filename: str, title: str, content: str) -> Call:
        """A file in the card's thread, to send with `in_thread`."""
        return partial(
            self.client.files_upload_v2, channel=record.channel_id, thread_ts=record.card_ts, filename=filename, title=title, content=content
        )

    async def edit(self, record: RequestRecord, ts: str, text: str) -> None:
        """A new text for one of the bot's posts in the request's channel; Slack's refusal is raised."""
        await self.client.chat_update(channel=record.channel_id, ts=ts, text=text)

    async def post_plan_file(self, record: RequestRecord, plan: dict[str, object]) -> None:
        """The full plan as a file in the card's thread. The card already stands: if Slack refuses
        the file, the thread says so and the request goes on (confirmation, approvers' notice)."""
        try:
            text = await asyncio.to_thread(partial(json.dumps, plan, indent=2))  # seconds for 100 000 items
            await self.in_thread(record, self.thread_file(record, f"{record.id}-plan.json", f"Full plan of {record.id}", text))
        except SLACK_TROUBLE as error:
            log.warning("plan file upload failed", extra={"request_id": record.id, "error": slack_error(error)})
            await self.tell(
                record,
                f"The full plan of {record.id} could not be attached here: Slack refused the file. "
                "The card lists the first items and counts the rest; the whole plan is kept with the request.",
            )

    async def announce(self, record: RequestRecord) -> None:
        """One short post in the approvers' channel, when the policy names one, linking to the card."""
        channel = self.rules.approvers_channel
        if not channel or channel == record.channel_id:
            return
        link = await self.permalink(record)  # without one, the notice still names the request and its channel
        await self.post(record, channel, cards.approvers_notice(record, link))

    async def direct_message(self, user: str, text: str, blocks: list[cards.Block]) -> None:
        """A message to one person alone, in their DM with the bot (opened if need be: im:write).
        Slack's refusal is raised."""
        opened = await self.client.conversations_open(users=user)
        await self.client.chat_postMessage(channel=opened["channel"]["id"], text=text, blocks=blocks)

    # ---- one person ------------------------------------------------------------------------

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

    async def open_form(self, trigger_id: str | None, view: dict[str, Any]) -> None:
        """A modal in answer to a click; Slack's refusal is raised."""
        await self.client.views_open(trigger_id=trigger_id or "", view=view)

    async def publish_home(self, user: str, view: dict[str, Any]) -> None:
        try:
            await self.client.views_publish(user_id=user, view=view)
        except SlackApiError as error:
            log.warning("home tab publish failed", extra={"user": user, "error": error.response.get("error")})

    async def email_of(self, user: str) -> str | None:
        """Azure knows people by UPN: a Slack user's email, if Slack shares it."""
        try:
            response = await self.client.users_info(user=user)
        except SlackApiError as error:
            log.warning("user lookup failed", extra={"user": user, "error": error.response.get("error")})
            return None
        email = (response.get("user") or {}).get("profile", {}).get("email")
        return email if isinstance(email, str) and email else None

"""The App Home tab: published when a user opens it, again after each change to a request that
concerns someone who has opened it, and after a click on it, with the answer on top."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot import cards, policy
from bot.home import MAX_MINE, MAX_WAITING, HomeContent, home_view
from bot.lifecycle import FINAL, State
from bot.listeners.after_ack import once
from bot.listeners.payload import from_home, id_of, trigger_of
from bot.publisher import HOME_TAB, Publisher, Where
from bot.requests import Requests
from bot.settings import AppConfig
from bot.store.store import RequestRecord, Store, now
from bot.usergroups import GroupResolver

log = logging.getLogger(__name__)

PENDING_SCAN = 200  # pending requests looked at for one tab; more than that waiting is an incident anyway
RESULT_SCAN = 100  # latest finished requests looked at for exports and receipts


def _has_result(record: RequestRecord) -> bool:
    result = record.result or {}
    return bool((result.get("extras") or {}).get("link") or result.get("receipt_sha256"))


class HomeTab:
    def __init__(self, config: AppConfig, store: Store, groups: GroupResolver, publisher: Publisher) -> None:
        self.config = config
        self.store = store
        self.groups = groups
        self.publisher = publisher
        # Who opened the tab since this process started, and in which workspace (team) they last did:
        # the tabs it keeps fresh after each change. On Enterprise Grid one person (W…) has a tab in
        # each workspace of the org; each shows that workspace's requests only (its org's: org_wide).
        self.viewers: dict[str, tuple[str, str | None]] = {}  # user -> (team, enterprise)
        self._links: dict[str, str] = {}  # request id -> its card's permalink (a card never moves)

    async def link(self, record: RequestRecord) -> str | None:
        """The permalink of the request's card, so nobody approves from the tab without it a click away."""
        if record.id not in self._links and (link := await self.publisher.permalink(record)):
            self._links[record.id] = link
        return self._links.get(record.id)

    async def content(self, user: str, team: str, notice: str | None = None, enterprise: str | None = None) -> HomeContent:
        store, rules = self.store, self.config.policy
        actor = await self.groups.actor(user)
        listed_team, listed_org = policy.listed_from(rules, team=team, enterprise=enterprise)
        among = partial(store.list_requests, team=listed_team, enterprise=listed_org)
        pending = await asyncio.to_thread(among, states=frozenset({State.PENDING}), limit=PENDING_SCAN)
        mine = await asyncio.to_thread(among, requester=user, limit=MAX_MINE)
        finished = await asyncio.to_thread(among, states=FINAL, limit=RESULT_SCAN)
        every_export = self.config.private_export_links

        def private(record: RequestRecord) -> bool:
            return policy.link_is_private(record.action, every_export)

        waiting = [r for r in pending if user not in r.approvers and policy.may_approve_request(rules, actor, r).allowed]
        shown = waiting[:MAX_WAITING]  # the tab lists these; it counts the rest
        links = {r.id: link for r in shown if (link := await self.link(r))}
        names: dict[str, str] = {}
        for record in shown:
            names |= await self.publisher.names(record)
        summaries = {r.id: summary for r in shown if (summary := await self.publisher.summary(r))}
        return HomeContent(
            user=user,
            waiting=waiting,
            links=links,
            names=names,
            summaries=summaries,
            mine=mine,
            # An export link or a receipt is shown to whoever asked for it or approved it; a private
            # link (an export about a person) to its requester alone.
            results=[r for r in finished if _has_result(r) and (r.requester == user or (user in r.approvers and not private(r)))],
            frozen=await asyncio.to_thread(store.frozen),
            notice=notice,
        )

    async def publish(self, user: str, notice: str | None = None) -> None:
        team, enterprise = self.viewers.get(user, ("", None))
        view = home_view(await self.content(user, team, notice, enterprise), now())
        await self.publisher.publish_home(user, view)

    async def changed(self, record: RequestRecord) -> None:
        """Re-publish the open tabs this request shows on: its requester's, its approvers', and those
        of everyone who may approve on its workspace (it waits for them, or has just stopped waiting)."""
        try:
            pool = policy.approver_pool(self.config.policy, await self.groups.all_members(), record.workspace)
            for user in sorted(self.viewers.keys() & ({record.requester, *record.approvers} | pool)):
                await self.publish(user)
        except Exception:  # a stale tab is repaired when it is next opened; it never stops a decision or a job
            log.exception("home tab refresh failed", extra={"request_id": record.id})


def register(app: AsyncApp, requests: Requests, tab: HomeTab) -> None:
    tab.publisher.on_change.append(tab.changed)
    tab.publisher.on_home_notice.append(lambda user, text: tab.publish(user, notice=text))

    @app.event("app_home_opened")
    async def opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab") == "home":  # the Messages tab opens with the same event
            enterprise = body.get("enterprise_id")
            tab.viewers[event["user"]] = (str(body.get("team_id") or ""), enterprise if isinstance(enterprise, str) and enterprise else None)
            await tab.publish(event["user"])

    @app.action(cards.ACTION_PATTERN, matchers=[from_home])
    async def decide(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext) -> None:
        # A click on the tab has no channel and no response_url: the answer goes on top of the tab.
        await ack()
        user = id_of(body.get("user"))
        where = Where(team=id_of(body.get("team")), channel=HOME_TAB, user=user, enterprise=id_of(body.get("enterprise")) or None)

        async def click() -> str | None:
            tab.viewers[user] = (where.team, where.enterprise)
            return await requests.click(action["action_id"], action.get("value"), where, trigger_of(body))

        acted, reply = await once(context, click, "home click")
        if acted:
            await tab.publish(user, notice=reply)

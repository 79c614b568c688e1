"""What every runner of a command or click works with, and the refusals they share."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bot import cards, metrics, policy, wording
from bot.audit import AuditEntry
from bot.contexts import Contexts
from bot.group_commit import GroupCommit
from bot.publisher import HOME_TAB, Publisher, Where
from bot.settings import AppConfig
from bot.store.store import REQUEST_ID, RequestRecord, Store, check_audit_fields
from bot.usergroups import GroupResolver
from commands import grammar


@dataclass(frozen=True)
class Desk:
    """The parts a runner decides with: the store, the policy's people, Slack and Azure."""

    config: AppConfig
    store: Store
    groups: GroupResolver
    publisher: Publisher
    contexts: Contexts
    wake_worker: asyncio.Event  # set when a job may start now
    # Refusals, audited together when they come together (a burst of clicks on a stale card).
    refusals: GroupCommit[dict[str, Any], AuditEntry]

    async def actor(self, where: Where) -> policy.Actor:
        return await self.groups.actor(where.user)

    async def _audit_refusal(self, where: Where, event: str, request_id: str | None, detail: dict[str, Any]) -> None:
        check_audit_fields(where.user, where.channel)  # a malformed one fails alone, not its batch
        await self.refusals.submit({
            "actor": where.user, "event": event, "outcome": "refused", "request_id": request_id,
            "channel_id": where.channel, "detail": detail,
        })
        metrics.refused(event)

    async def refuse(self, where: Where, event: str, reason: str, request_id: str | None = None, **detail: object) -> str:
        """Every refusal is audited (committed before the caller answers, privately, with the returned text)."""
        await self._audit_refusal(where, event, request_id, {"reason": reason, **detail})
        return f":no_entry: {reason}"

    async def too_late(self, where: Where, event: str, record: RequestRecord) -> str:
        """A click on a card that has moved on (a stale card, a second click, a race): refused,
        unchanged, and said as it stands now."""
        current = await asyncio.to_thread(self.store.get, record.id) or record
        return await self.refuse(where, event, wording.already(current), request_id=record.id)

    async def visible(self, request_id: str, where: Where, event: str) -> RequestRecord | str:
        """The request, if this person may hear of it here; else the very answer an unknown id gets
        (another team's or channel's request is not even confirmed to exist), the refusal audited."""
        record = await asyncio.to_thread(self.store.get, request_id)
        if record is not None:
            actor = await self.actor(where)
            if policy.may_see(self.config.policy, actor, record, team=where.team, channel=where.channel, enterprise=where.enterprise):
                return record
            await self._audit_refusal(where, event, record.id, {"reason": "not visible to this person here", "team": where.team})
        return cards.error_text(f"No request `{request_id}`.", grammar.USAGE["list"])

    async def named_request(self, value: object, where: Where, event: str, what: str) -> RequestRecord | str:
        """The request a button or form names, if it exists where it was used; else the refusal."""
        if not isinstance(value, str) or not REQUEST_ID.fullmatch(value):
            return await self.refuse(where, event, f"{what} does not name a request.", value=str(value)[:40])
        record = await asyncio.to_thread(self.store.get, value)
        if record is None or where.channel not in (record.channel_id, HOME_TAB) or not self.here(record, where):
            return await self.refuse(where, event, "That request does not exist in this channel.", value=value)
        return record

    def here(self, record: RequestRecord, where: Where) -> bool:
        """Whether `record` belongs where the person is: their workspace, or (org_wide) their org."""
        return policy.same_place(self.config.policy, record, team=where.team, enterprise=where.enterprise)

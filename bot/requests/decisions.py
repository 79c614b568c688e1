"""Decisions on a request: approve, reject (with a reason), run now, cancel, and expiry. Each is a
guarded state change in the store, then the card and its thread say so."""

from __future__ import annotations

import asyncio
import logging

from bot import cards, metrics, policy, wording
from bot.lifecycle import WAITING, IllegalTransition, RequestExpired, State
from bot.publisher import SLACK_TROUBLE, Where, slack_error
from bot.requests.desk import Desk
from bot.store.store import RequestRecord, now

log = logging.getLogger(__name__)


class Decisions:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def _may_approve(self, record: RequestRecord, where: Where) -> policy.Decision:
        return policy.may_approve_request(self.desk.config.policy, await self.desk.actor(where), record)

    async def approve(self, record: RequestRecord, where: Where) -> str | None:
        desk = self.desk
        if record.state is not State.PENDING:
            return await desk.too_late(where, "approve.refused", record)
        allowed = await self._may_approve(record, where)
        if not allowed.allowed:
            return await desk.refuse(where, "approve.refused", allowed.reason, request_id=record.id)
        wait = policy.cooling_off(desk.config.policy, record.action)
        try:
            result = await asyncio.to_thread(desk.store.approve, record.id, where.user, cooling_off=wait)
        except RequestExpired:
            await self.expire(record.id)  # the sweep may be late: the card says so now
            return await desk.refuse(where, "approve.refused", wording.expired(record), request_id=record.id)
        except IllegalTransition:
            return await desk.too_late(where, "approve.refused", record)
        if not result.added:
            return f"You have already approved {record.id}."
        metrics.approved()
        await desk.publisher.refresh_card(result.request)
        if not result.quorum_reached_now:
            return f"Your approval of {record.id} is recorded: {result.count} of {record.approvals_required}."
        desk.wake_worker.set()
        await desk.publisher.tell(result.request, cards.decision_text(result.request))
        return None

    async def _may_reject(self, record: RequestRecord, where: Where) -> str | None:
        """Why `where.user` may not reject `record` now (refused and audited), or None."""
        if record.state is not State.PENDING:
            return await self.desk.too_late(where, "reject.refused", record)
        allowed = await self._may_approve(record, where)
        # A requester may always withdraw their own request.
        if not allowed.allowed and where.user != record.requester:
            return await self.desk.refuse(where, "reject.refused", allowed.reason, request_id=record.id)
        return None

    async def ask_reason(self, record: RequestRecord, where: Where, trigger_id: str | None) -> str | None:
        """Reject opens a form asking why; the rejection happens when it is sent (`reject`)."""
        if refused := await self._may_reject(record, where):
            return refused
        publisher = self.desk.publisher
        try:
            form = cards.reject_modal(record, await publisher.summary(record), where.channel, await publisher.names(record))
            await publisher.open_form(trigger_id, form)
        except SLACK_TROUBLE as error:
            log.warning("reject form failed", extra={"request_id": record.id, "error": slack_error(error)})
            return cards.error_text(f"Slack did not open the form for a reason ({slack_error(error)}): press Reject again.")
        return None

    async def reject(self, value: object, reason: str, where: Where) -> str | None:
        """The reject form was sent: the request is rejected, and its reason goes to the requester (in
        the card's thread, mentioning them) and into the audit log."""
        record = await self.desk.named_request(value, where, "reject.refused", "That form")
        if isinstance(record, str):
            return record
        if refused := await self._may_reject(record, where):
            return refused
        reason = " ".join(reason.split())[: cards.REASON_LIMIT]
        try:
            moved = await asyncio.to_thread(
                self.desk.store.transition, record.id, State.REJECTED, actor=where.user, event="request.rejected",
                expected=frozenset({State.PENDING}), decided_by=where.user, decided_at=now(), detail={"reason": reason},
            )
        except IllegalTransition:
            return await self.desk.too_late(where, "reject.refused", record)
        await self.desk.publisher.refresh_card(moved)
        await self.desk.publisher.tell(moved, cards.decision_text(moved, where.user, reason))
        return None

    async def run_now(self, record: RequestRecord, where: Where) -> str | None:
        """An approver ends a cooling-off early: APPROVED → QUEUED."""
        desk = self.desk
        if record.state is not State.APPROVED:
            return await desk.too_late(where, "run_now.refused", record)
        actor = await desk.actor(where)
        allowed = policy.may_run_now(desk.config.policy, actor, requester=record.requester, workspace=record.workspace)
        if not allowed.allowed:
            return await desk.refuse(where, "run_now.refused", allowed.reason, request_id=record.id)
        try:
            moved = await asyncio.to_thread(
                desk.store.transition, record.id, State.QUEUED, actor=where.user, event="request.run_now",
                expected=frozenset({State.APPROVED}),
            )
        except IllegalTransition:
            return await desk.too_late(where, "run_now.refused", record)
        desk.wake_worker.set()
        await desk.publisher.refresh_card(moved)
        await desk.publisher.tell(moved, cards.decision_text(moved, where.user))
        return None

    async def cancel_command(self, request_id: str, where: Where) -> str:
        """`/aml cancel R-…`: the request must be one this person may hear of here."""
        record = await self.desk.visible(request_id, where, "cancel.refused")
        if isinstance(record, str):
            return record
        return await self.cancel(record, where)

    async def cancel(self, record: RequestRecord, where: Where) -> str:
        desk = self.desk
        actor = await desk.actor(where)
        allowed = policy.may_cancel(desk.config.policy, actor, requester=record.requester, workspace=record.workspace)
        if not allowed.allowed:
            return await desk.refuse(where, "cancel.refused", allowed.reason, request_id=record.id)
        try:
            result = await asyncio.to_thread(desk.store.cancel, record.id, where.user)
        except IllegalTransition:
            return await desk.too_late(where, "cancel.refused", record)
        if result.stopping:
            await desk.publisher.tell(result.request, f"<@{record.requester}> <@{where.user}> asked to stop {record.id}: "
                                      "it stops after the current step, with a partial receipt.")
            return f"{record.id} is running: it stops after the current step, with a partial receipt."
        await desk.publisher.refresh_card(result.request)
        await desk.publisher.tell(result.request, cards.decision_text(result.request, where.user))
        return f"{record.id} is cancelled."

    async def expire(self, request_id: str) -> None:
        """A request past its deadline (or approved only after it) expires; its card and thread say so."""
        try:
            expired = await asyncio.to_thread(
                self.desk.store.transition, request_id, State.EXPIRED, actor="amlbot", event="request.expired",
                expected=WAITING,
            )
        except IllegalTransition:
            return  # decided, or expired, meanwhile
        await self.desk.publisher.refresh_card(expired)
        await self.desk.publisher.tell(expired, cards.decision_text(expired))

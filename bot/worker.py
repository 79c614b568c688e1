"""The job worker: claims approved requests with a lease, runs them, and posts what they produced.

It also keeps time for requests: expiry, reminders and the end of a cooling-off window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError

from bot import cards
from bot.flow import Flow
from bot.lifecycle import IllegalTransition, State
from bot.store.store import Claim, RequestRecord, now
from commands import receipts
from commands.azure.door import ItemResult, Status
from commands.operations import operation_for
from commands.operations.base import SUCCESS, Execution
from commands.plan import Plan

log = logging.getLogger(__name__)

PROGRESS_EVERY = 3.0  # seconds between edits of one progress message (Slack's rate limits)


class StoreCheckpoint:
    """An operation's progress, kept in the database and shown in the thread."""

    def __init__(self, flow: Flow, record: RequestRecord, owner: str) -> None:
        self.flow = flow
        self.request = record
        self.owner = owner
        outcomes = flow.store.item_outcomes(record.id)
        self.done: dict[str, ItemResult] = {
            key: ItemResult(Status(outcome), detail.get("reason", ""), detail.get("azure_request_id"))
            for key, (outcome, detail) in outcomes.items()
        }
        self._last_post = 0.0
        self._started = time.monotonic()
        self._progress_ts: str | None = (flow.store.job(record.id) or {}).get("progress_ts")

    async def record(self, results: dict[str, ItemResult]) -> None:
        rows = [
            (key, r.status.value, {"reason": r.reason, "azure_request_id": r.azure_request_id})
            for key, r in results.items()
        ]
        await asyncio.to_thread(self.flow.store.record_items, self.request.id, rows)

    async def progress(self, done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        moment = time.monotonic()
        if moment - self._last_post < PROGRESS_EVERY and done < total:
            return
        self._last_post = moment
        elapsed = max(moment - self._started, 1e-6)
        rate = done_bytes / elapsed
        eta = (total_bytes - done_bytes) / rate if rate > 0 and total_bytes else None
        text = cards.progress_text(done, total, done_bytes, total_bytes, rate, eta)
        progress = {"done": done, "total": total, "bytes": done_bytes, "total_bytes": total_bytes}
        await asyncio.to_thread(self.flow.store.set_progress, self.request.id, progress)
        client = self.flow.client
        try:
            if self._progress_ts:
                await client.chat_update(channel=self.request.channel_id, ts=self._progress_ts, text=text)
            else:
                posted = await client.chat_postMessage(channel=self.request.channel_id, thread_ts=self.request.card_ts, text=text)
                self._progress_ts = posted["ts"]
                await asyncio.to_thread(self.flow.store.set_progress, self.request.id, progress, posted["ts"])
        except SlackApiError as error:
            # A Slack outage delays the progress line, never the job.
            log.warning("progress post failed", extra={"request_id": self.request.id, "error": error.response.get("error")})

    async def cancelled(self) -> bool:
        return await asyncio.to_thread(self.flow.store.cancel_requested, self.request.id)


def final_state(execution: Execution, total: int) -> State:
    ok = sum(1 for result in execution.results.values() if result.status in SUCCESS)
    if ok == total and not execution.stopped_early:
        return State.SUCCEEDED
    return State.PARTIALLY_SUCCEEDED if ok else State.FAILED


class Worker:
    def __init__(
        self,
        flow: Flow,
        *,
        concurrency: int = 2,
        lease: timedelta = timedelta(seconds=60),
        poll: float = 2.0,
    ) -> None:
        self.flow = flow
        self.store = flow.store
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.concurrency = concurrency
        self.lease = lease
        self.poll = poll
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        wake = self.flow.s.wake_worker
        while not stop.is_set():
            try:
                await self.tick()
                while len(self._running) < self.concurrency and not stop.is_set():
                    claim = await asyncio.to_thread(self.store.claim_job, self.owner, self.lease)
                    if claim is None:
                        break
                    task = asyncio.create_task(self._run_job(claim))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
            except Exception:  # the loop must outlive any one failure (database blip, Slack outage)
                log.exception("worker loop error")
            wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), self.poll)
        if self._running:
            await asyncio.wait(self._running)

    async def _run_job(self, claim: Claim) -> None:
        renew = asyncio.create_task(self._keep_lease(claim.request_id))
        try:
            await self.run_job(claim)
        except Exception:
            log.exception("job crashed", extra={"request_id": claim.request_id})
        finally:
            renew.cancel()

    async def _keep_lease(self, request_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            if not await asyncio.to_thread(self.store.renew_lease, request_id, self.owner, self.lease):
                log.warning("lease lost", extra={"request_id": request_id})
                return

    async def run_job(self, claim: Claim) -> None:
        record = await asyncio.to_thread(self.store.get, claim.request_id)
        assert record is not None and record.plan is not None
        await self.flow.refresh_card(record)
        plan = Plan.from_dict(record.plan)
        operation = operation_for(record.action)
        started = now()
        checkpoint = await asyncio.to_thread(StoreCheckpoint, self.flow, record, self.owner)
        error: str | None = None
        try:
            if operation is None:
                raise RuntimeError(f"no operation for {record.action}")
            execution = await operation.execute(plan, self.flow._context(record.workspace, record.id), checkpoint)
        except Exception as failure:  # the job ends with what it managed, never silently
            log.exception("job failed", extra={"request_id": record.id})
            error = f"{type(failure).__name__}: {failure}"
            fresh = await asyncio.to_thread(StoreCheckpoint, self.flow, record, self.owner)
            execution = Execution(fresh.done)
        state = State.FAILED if error and not execution.results else final_state(execution, len(plan.items))
        result: dict[str, Any] = {
            "summary": receipts.outcome_counts(execution.results),
            "extras": execution.extras,
            "error": error,
            "stopped_early": execution.stopped_early,
        }
        document_text = None
        if record.action.startswith(("delete ", "cleanup ")):
            document_text = self._receipt(record, plan, execution, state, started, error)
            result["receipt_sha256"] = receipts.digest(document_text)
        finished = await asyncio.to_thread(
            self.store.finish, record.id, self.owner, state, result=result, receipt=document_text
        )
        await self.flow.refresh_card(finished)
        await self.deliver(finished)

    def _receipt(
        self, record: RequestRecord, plan: Plan, execution: Execution, state: State, started: datetime, error: str | None
    ) -> str:
        """The sealed receipt of a finished deletion, partial ones included."""
        context = receipts.ReceiptContext(
            request_id=record.id, requester=record.requester, approvers=record.approvers,
            started_at=started.isoformat(timespec="seconds"), finished_at=now().isoformat(timespec="seconds"),
            state=state.value,
        )
        document = receipts.build(context, plan, execution.results, execution.extras.get("appeared", []))
        if error:
            document["error"] = error
        if execution.stopped_early:
            document["stopped"] = (
                f"Stopped on request after {len(execution.results)} of {len(plan.items)} item(s); the rest were not attempted."
            )
        return receipts.seal(document, self.store.audit_key)

    async def deliver(self, record: RequestRecord) -> None:
        """Post a finished job's link or receipt to its thread, once."""
        client = self.flow.client
        result = record.result or {}
        extras = result.get("extras", {})
        if "link" in extras:
            await client.chat_postMessage(
                channel=record.channel_id, thread_ts=record.card_ts, text=f"<@{record.requester}> your export is ready",
                blocks=cards.export_result(extras["link"], extras["size"], extras["sha256"], extras["expires_at"]),
            )
        elif result.get("error"):
            await client.chat_postMessage(
                channel=record.channel_id, thread_ts=record.card_ts,
                text=f"<@{record.requester}> :x: {record.id} failed: {cards.escape(result['error'])[:500]}",
            )
        document_text = await asyncio.to_thread(self.store.receipt, record.id)
        if document_text and await asyncio.to_thread(self.store.mark_receipt_posted, record.id):
            document = json.loads(document_text)
            await client.chat_postMessage(
                channel=record.channel_id, thread_ts=record.card_ts, text=f"<@{record.requester}> deletion receipt for {record.id}",
                blocks=cards.receipt_summary(document),
            )
            await client.files_upload_v2(
                channel=record.channel_id, thread_ts=record.card_ts, filename=f"{record.id}-receipt.json",
                title=f"Receipt {record.id}", content=document_text,
            )

    # ---- timers --------------------------------------------------------------------------

    async def tick(self) -> None:
        moment = now()
        await self._expire(moment)
        await self._remind(moment + self.flow.s.config.policy.reminder_before)
        await self._end_cooling_off(moment)

    async def _expire(self, moment: datetime) -> None:
        for request_id in await asyncio.to_thread(self.store.due, State.PENDING, "expires_at", moment):
            try:
                expired = await asyncio.to_thread(
                    self.store.transition, request_id, State.EXPIRED, actor="amlbot", event="request.expired",
                    expected=frozenset({State.PENDING}),
                )
            except IllegalTransition:
                continue  # decided meanwhile
            await self.flow.refresh_card(expired)
            await self.flow.tell(expired, cards.decision_text(expired))

    async def _remind(self, expiring_by: datetime) -> None:
        for request_id in await asyncio.to_thread(self.store.due_reminders, expiring_by):
            if await asyncio.to_thread(self.store.mark_reminded, request_id):  # once, across replicas
                record = await asyncio.to_thread(self.store.get, request_id)
                if record:
                    await self.flow.tell(record, cards.reminder_text(record))

    async def _end_cooling_off(self, moment: datetime) -> None:
        for request_id in await asyncio.to_thread(self.store.due, State.APPROVED, "not_before", moment):
            try:
                queued = await asyncio.to_thread(
                    self.store.transition, request_id, State.QUEUED, actor="amlbot", event="request.cooled_off",
                    expected=frozenset({State.APPROVED}),
                )
            except IllegalTransition:
                continue  # cancelled or run now meanwhile
            await self.flow.refresh_card(queued)

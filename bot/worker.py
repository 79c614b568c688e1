"""The job worker: claims approved requests with a lease, runs them, and posts what they produced.

A job's progress is in the database as it goes, so any worker resumes it: after a crash (its lease
lapses), after a shutdown (its lease is handed back between steps), on any replica. What a finished
job posts is counted post by post as Slack confirms it, so a Slack outage delays the result, never
loses or repeats it. The worker also keeps time for requests: expiry, reminders, cooling-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import DBAPIError

from bot import cards, logs, metrics, policy, progress, wording
from bot.contexts import Contexts
from bot.lifecycle import IllegalTransition, State
from bot.outbox import retry_after
from bot.publisher import SLACK_TROUBLE, Publisher, slack_error
from bot.requests import Requests
from bot.settings import AppConfig
from bot.store.store import Claim, RequestRecord, Store, now
from commands import receipts
from commands.azure.door import ItemResult, Status
from commands.operations import operation_for
from commands.operations.base import SUCCESS, Context, Execution, OperationError
from commands.plan import Plan

log = logging.getLogger(__name__)

PROGRESS_EVERY = 3.0  # seconds between progress edits in one channel (Slack's per-channel limits)
MAX_ATTEMPTS = 5  # a job whose worker died this many times is given up, with what it did
# Slack errors that say "later" rather than "never".
TRANSIENT_SLACK_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"})

DB_TRIES = 6  # a checkpoint write is tried this often, waiting DB_BACKOFF, then twice that, …
DB_BACKOFF = 0.1
PAUSED = ":double_vertical_bar: Paused: amlbot is restarting. The job resumes where it stopped."

Post = Callable[[], Awaitable[Any]]
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class Interrupted(BaseException):
    """The worker is shutting down: the job stops between steps and is handed back.

    A BaseException, like asyncio's CancelledError, so no `except Exception` in an operation
    mistakes it for a failure of the job."""


def slack_unavailable(error: BaseException) -> bool:
    """True when Slack may take the same post later: unreachable, overloaded or rate limiting."""
    if not isinstance(error, SlackApiError):
        return True
    status = error.response.status_code
    return status >= 500 or status == 429 or error.response.get("error") in TRANSIENT_SLACK_ERRORS


class ChannelPacer:
    """At most one progress edit per channel every `every` seconds, across this process's jobs."""

    def __init__(self, every: float = PROGRESS_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._last: dict[str, float] = {}

    def ready(self, channel: str) -> bool:
        moment = self._clock()
        if channel in self._last and moment - self._last[channel] < self.every:
            return False
        self._last[channel] = moment
        return True


class ProgressLine:
    """A job's one progress message in its thread, edited in place.

    The newest text wins and goes out in the background: a slow or absent Slack delays the line,
    never the job. Texts superseded while one is in flight are never sent; while Slack rate-limits
    (429 past the client's retries) the newest is tried again after Retry-After, until a shutdown.
    An outage is not waited out here: the result's posts are (see `deliver`)."""

    def __init__(
        self, publisher: Publisher, store: Store, record: RequestRecord, ts: str | None, spawn: Spawn, stopping: asyncio.Event
    ) -> None:
        self.publisher = publisher
        self.store = store
        self.request = record
        self.ts = ts
        self._spawn = spawn  # the worker's: a shutdown waits for the line too
        self._stopping = stopping
        self._latest: str | None = None
        self._sender: asyncio.Task[None] | None = None

    def show(self, text: str) -> None:
        self._latest = text
        if self._sender is None or self._sender.done():
            self._sender = self._spawn(self._send())

    async def settle(self) -> None:
        """Wait until the newest text is sent (or given up on)."""
        if self._sender is not None:
            await self._sender

    async def _send(self) -> None:
        request = self.request
        while self._latest is not None:
            text, self._latest = self._latest, None
            try:
                if self.ts:
                    await self.publisher.edit(request, self.ts, text)
                else:  # its place in the thread: after the posts queued before it
                    posted = await self.publisher.in_thread(request, self.publisher.thread_message(request, text))
                    self.ts = posted["ts"]
                    # Kept so that whoever resumes the job edits this same message.
                    await asyncio.to_thread(self.store.set_progress, request.id, progress_ts=self.ts)
            except SLACK_TROUBLE as error:
                log.warning("progress post failed", extra={"request_id": request.id, "error": slack_error(error)})
                wait = retry_after(error)
                if wait is not None and not self._stopping.is_set():  # Slack said when: the newest text goes then
                    if self._latest is None:
                        self._latest = text
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), wait)


def recorded_outcomes(store: Store, request_id: str) -> dict[str, ItemResult]:
    """The item outcomes a job has recorded so far, over all its attempts."""
    return {
        key: ItemResult(Status(outcome), detail.get("reason", ""), detail.get("azure_request_id"))
        for key, (outcome, detail) in store.item_outcomes(request_id).items()
    }


async def with_db_retries(call: Callable[..., Any], *args: Any) -> Any:
    """A database call off the event loop, tried again with back-off while the database fails: a
    job's record of what it did is worth waiting a few seconds for."""
    for attempt in range(DB_TRIES):
        try:
            return await asyncio.to_thread(call, *args)
        except DBAPIError:
            if attempt == DB_TRIES - 1:
                raise
            log.warning("database call failed: retrying", exc_info=True)
            await asyncio.sleep(DB_BACKOFF * 2**attempt)
    raise AssertionError("unreachable")


class StoreCheckpoint:
    """An operation's progress: item outcomes in the database, a progress line in the thread."""

    def __init__(
        self, store: Store, record: RequestRecord, plan: Plan, line: ProgressLine, pacer: ChannelPacer, stopping: asyncio.Event
    ) -> None:
        self.store = store
        self.request = record
        self.line = line
        self.pacer = pacer
        self.stopping = stopping
        self.done = recorded_outcomes(store, record.id)
        # Every outcome known, recorded or not: if the database fails for good, the receipt still has them.
        self.results = dict(self.done)
        self._eta = progress.Eta()  # this attempt's byte rate, smoothed

    async def record(self, results: dict[str, ItemResult]) -> None:
        self.results.update(results)
        rows = [
            (key, r.status.value, {"reason": r.reason, "azure_request_id": r.azure_request_id})
            for key, r in results.items()
        ]
        await with_db_retries(self.store.record_items, self.request.id, rows)

    async def progress(self, done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        self._eta.update(done_bytes, time.monotonic())
        if done < total and not self.pacer.ready(self.request.channel_id):
            return
        figures = {"done": done, "total": total, "bytes": done_bytes, "total_bytes": total_bytes}
        try:
            await asyncio.to_thread(self.store.set_progress, self.request.id, figures)
        except DBAPIError:  # figures for people to read: the next step writes newer ones
            log.warning("progress not saved", exc_info=True, extra={"request_id": self.request.id})
        self.line.show(progress.progress_text(done, total, done_bytes, total_bytes, self._eta))

    async def cancelled(self) -> bool:
        if self.stopping.is_set():
            # Operations ask between steps: the place to stop for a shutdown, all done recorded.
            self.line.show(PAUSED)
            raise Interrupted(self.request.id)
        return bool(await with_db_retries(self.store.cancel_requested, self.request.id))


def final_state(execution: Execution, total: int, error: str | None = None) -> State:
    """Succeeded only when every item did and nothing went wrong on the way."""
    ok = sum(1 for result in execution.results.values() if result.status in SUCCESS)
    if ok == total and not execution.stopped_early and not error:
        return State.SUCCEEDED
    return State.PARTIALLY_SUCCEEDED if ok else State.FAILED


class Worker:
    def __init__(
        self,
        config: AppConfig,
        store: Store,
        publisher: Publisher,
        contexts: Contexts,
        requests: Requests,
        wake: asyncio.Event,
        *,
        concurrency: int = 2,
        lease: timedelta = timedelta(seconds=60),
        grace: float = 30.0,
        poll: float = 2.0,
    ) -> None:
        self.config = config
        self.store = store
        self.publisher = publisher
        self.contexts = contexts
        self.requests = requests  # the timers expire requests through it
        self.wake = wake  # set when a job may start now
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.concurrency = concurrency
        self.lease = lease
        self.grace = grace  # seconds a shutdown waits for jobs to reach a step's end
        self.poll = poll
        self.pacer = ChannelPacer()
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._posting: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        """Take no new job; running ones stop at their next step's end (see `_drain`)."""
        self._stopping.set()
        self.wake.set()

    async def run(self) -> None:
        wake = self.wake
        while not self._stopping.is_set():
            try:
                await self.tick()
                await self._claim_jobs()
            except Exception:  # the loop must outlive any one failure (database blip, Slack outage)
                log.exception("worker loop error")
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.poll)
        await self._drain()

    async def _claim_jobs(self) -> None:
        while len(self._running) < self.concurrency and not self._stopping.is_set():
            claim = await asyncio.to_thread(self.store.claim_job, self.owner, self.lease)
            if claim is None:
                return
            self._track(self._running, self._run_job(claim))

    def _track(self, tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    def _background(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Slack work on the side of a job (card edits, progress, results): it never holds the job
        up, and a shutdown gives it the same grace as the jobs."""
        return self._track(self._posting, work)

    async def _drain(self) -> None:
        """Within the grace period, jobs reach a step's end and hand themselves back, then what they
        still had to post goes out; whatever runs past the grace is cancelled (a cancelled job hands
        itself back too)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        for tasks in (self._running, self._posting):  # jobs first: they may still start posts
            if tasks:
                _, late = await asyncio.wait(set(tasks), timeout=max(deadline - loop.time(), 0))
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)

    async def _hold(self, renew: Callable[[], bool], holder: asyncio.Task[Any], what: str) -> None:
        """Renew a lease while `holder` works under it; cancel `holder` once the lease is lost."""
        held_until = time.monotonic() + self.lease.total_seconds()
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                if await asyncio.to_thread(renew):
                    held_until = time.monotonic() + self.lease.total_seconds()
                    continue
            except Exception:  # a database blip: try again until the lease would lapse anyway
                log.exception("lease renewal failed", extra={"what": what})
                if time.monotonic() < held_until:
                    continue
            log.warning("lease lost: stopping", extra={"what": what})
            holder.cancel()
            return

    @contextlib.asynccontextmanager
    async def _held(self, renew: Callable[[], bool], what: str) -> AsyncIterator[None]:
        """The lease is renewed while inside; losing it cancels the task inside."""
        holder = asyncio.current_task()
        assert holder is not None, "a lease is held by a task"
        keeper = asyncio.create_task(self._hold(renew, holder, what))
        try:
            yield
        finally:
            keeper.cancel()

    async def _run_job(self, claim: Claim) -> None:
        request_id = claim.request_id
        logs.bind(request_id)  # this task's log lines (Azure SDK ones included) name the job
        try:
            async with self._held(partial(self.store.renew_lease, request_id, self.owner, self.lease), f"job {request_id}"):
                await self.run_job(claim)
        except (Interrupted, asyncio.CancelledError) as stop:
            # A shutdown, or the lease went to another worker: hand the job back (a no-op if it
            # is no longer ours); it resumes from its checkpoint.
            await asyncio.to_thread(self.store.release_lease, request_id, self.owner)
            log.info("job handed back", extra={"request_id": request_id})
            if isinstance(stop, asyncio.CancelledError):
                raise
        except Exception:  # the lease lapses, and the job is retried up to MAX_ATTEMPTS
            log.exception("job crashed", extra={"request_id": request_id})

    async def run_job(self, claim: Claim) -> None:
        record = await asyncio.to_thread(self.store.get, claim.request_id)
        job = await asyncio.to_thread(self.store.job, claim.request_id)
        assert record is not None and job is not None
        self._background(self.publisher.refresh_card(record))
        plan = await asyncio.to_thread(self._stored_plan, record.id)  # seconds for 100 000 items: not on the loop
        line = ProgressLine(self.publisher, self.store, record, job["progress_ts"], self._background, self._stopping)
        checkpoint = await asyncio.to_thread(StoreCheckpoint, self.store, record, plan, line, self.pacer, self._stopping)
        if claim.resumed:
            done = f"{len(checkpoint.done)}/{len(plan.items)} items"
            line.show(f":arrows_counterclockwise: Resuming {record.id} where it stopped ({done} done before).")
        started = now()
        unbound = await self._unbound(record)
        tampered = unbound or await asyncio.to_thread(self._plan_altered, record, plan)
        # Storage not the workspace's own is not even read (a re-listing there would tell of another account).
        ctx = None if unbound else self.contexts.for_request(record.workspace, record.id)
        if tampered or ctx is None:
            execution, error, gave_up = Execution(checkpoint.done), tampered, True
        else:
            execution, error, gave_up = await self._execute(record, plan, ctx, checkpoint, claim.attempts)
        deletion = record.action.destructive
        if deletion and ctx is not None and not tampered:
            from commands.operations.reconcile import reconcile  # the storage SDKs: loaded on first use, not at start

            execution = await reconcile(plan, ctx, execution)
        if gave_up or (error and not execution.results):
            state = State.FAILED
        else:
            state = final_state(execution, len(plan.items), error)
        result: dict[str, Any] = {
            "summary": receipts.outcome_counts(execution.results),
            "extras": execution.extras,
            "error": error,
            "stopped_early": execution.stopped_early,
        }
        document_text = None
        if deletion:
            document_text = self._receipt(record, plan, execution, state, job["started_at"], error)
            result["receipt_sha256"] = receipts.digest(document_text)
        finished = await asyncio.to_thread(
            self.store.finish, record.id, self.owner, state, result=result, receipt=document_text, posting_lease=self.lease
        )
        metrics.job_finished(finished, started)
        line.show(progress.final_text(state.value, len(execution.results), len(plan.items), plan.total_bytes,
                                      (now() - started).total_seconds(), execution.stopped_early))
        # Posting the result waits for Slack, not the job: this slot takes the next job at once.
        self._background(self._post_result(finished, 0, line))

    async def _unbound(self, record: RequestRecord) -> str | None:
        """Why the job may not touch the workspace's storage, or None. Checked in this process too:
        the job may run in another process than its preview, started with another config."""
        try:
            await self.contexts.bind_storage(record.action, record.workspace)
        except OperationError as error:
            return f"{error} Nothing was run."
        except Exception as failure:  # Azure could not say which account is the workspace's
            log.exception("storage binding failed", extra={"request_id": record.id})
            return f"{wording.failure_reason(failure)}; nothing was run"
        return None

    def _stored_plan(self, request_id: str) -> Plan:
        stored = self.store.plan_of(request_id)
        assert stored is not None, f"{request_id} was queued without a plan"
        return Plan.from_dict(stored)

    def _plan_altered(self, record: RequestRecord, plan: Plan) -> str | None:
        """Why the stored plan may not run: it no longer hashes to the plan_hash approvers saw (kept
        on the request and in the audit chain), or its size is not the one the policy judged it by
        (the request's plan_items). None when both hold. An altered plan is audited."""
        created = next((e for e in self.store.audit_entries(record.id) if e.event == "request.created"), None)
        chained = json.loads(created.detail).get("plan_hash") if created else None
        hashed = plan.hash == record.plan_hash == chained
        if hashed and len(plan.items) == record.plan_items:
            return None
        self.store.audit(
            actor="amlbot", event="plan.altered", outcome="refused", request_id=record.id, channel_id=record.channel_id,
            detail={"plan_hash": record.plan_hash, "chained_plan_hash": chained, "stored_plan_hashes_to": plan.hash,
                    "plan_items": record.plan_items, "stored_plan_has_items": len(plan.items)},
        )
        how = (
            f"it has {len(plan.items)} items, not the {record.plan_items} the policy was told" if hashed else
            f"it hashes to {plan.hash[:19]}…, not to the approved {str(chained or record.plan_hash)[:19]}…"
        )
        return f"the stored plan was altered after approval: {how}; nothing was run, ask again"

    async def _execute(
        self, record: RequestRecord, plan: Plan, ctx: Context, checkpoint: StoreCheckpoint, attempts: int
    ) -> tuple[Execution, str | None, bool]:
        """The operation's outcome, the error that ended it early, and whether it was given up."""
        if attempts > MAX_ATTEMPTS:
            return Execution(checkpoint.done), (
                f"given up after {MAX_ATTEMPTS} attempts: each one ended without finishing (the worker crashed "
                "or was killed); what was done before is listed, and nothing else was touched"
            ), True
        operation = operation_for(record.action)
        try:
            if operation is None:
                raise RuntimeError(f"no operation for {record.action}")
            return await operation.execute(plan, ctx, checkpoint), None, False
        except Exception as failure:  # the job ends with what it managed, never silently
            log.exception("job failed", extra={"request_id": record.id})
            # Slack and the receipt get a short reason; the error itself is in the log line above.
            return Execution(dict(checkpoint.results)), wording.failure_reason(failure), False

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
        if execution.extras.get("unverified"):
            document["unverified"] = execution.extras["unverified"]
        if execution.stopped_early:
            document["stopped"] = (
                f"Stopped on request after {len(execution.results)} of {len(plan.items)} item(s); the rest were not attempted."
            )
        return receipts.seal(document, self.store.keyring.signer())

    # ---- posting results -------------------------------------------------------------------

    async def _post_result(self, record: RequestRecord, posted: int, line: ProgressLine | None = None) -> None:
        """Post a finished job's result under the posting claim, kept while Slack is slow."""
        renew = partial(self.store.renew_posting, record.id, self.owner, self.lease)
        try:
            async with self._held(renew, f"result of {record.id}"):
                if line is not None:
                    await line.settle()  # the progress line first, so the result comes after it in the thread
                await self.deliver(record, posted)
        except Exception:  # the claim lapses and a later sweep tries again
            log.exception("posting the result failed", extra={"request_id": record.id})

    def _result_posts(self, record: RequestRecord, document_text: str | None) -> list[Post]:
        """What a finished job posts to its thread, in order: its link or error, then its receipt."""
        result = record.result or {}
        extras = result.get("extras", {})
        posts: list[Post] = []
        post = partial(self.publisher.thread_message, record)
        if "link" in extras:
            blocks = cards.export_ready(extras)
            if policy.link_is_private(record.action, self.config.private_export_links):
                # The link to the requester alone; the channel hears where it went.
                posts.append(partial(self.publisher.direct_message, record.requester, text=f"Your export {record.id} is ready", blocks=blocks))
                posts.append(post(wording.sent_privately(record)))
            else:
                posts.append(post(f"<@{record.requester}> your export is ready", blocks))
        elif result.get("stopped_early") and not document_text:
            posts.append(post(f"<@{record.requester}> :octagonal_sign: {record.id} was stopped on request: no archive was made."))
        elif result.get("error"):
            say = wording.partly_done if record.state is State.PARTIALLY_SUCCEEDED else wording.failed
            icon = ":warning:" if record.state is State.PARTIALLY_SUCCEEDED else ":x:"
            posts.append(post(f"<@{record.requester}> {icon} {cards.escape(say(record.id, result['error']))}"))
        if document_text:
            summary = cards.receipt_summary(json.loads(document_text))
            posts.append(post(f"<@{record.requester}> deletion receipt for {record.id}", summary))
            posts.append(self.publisher.thread_file(record, f"{record.id}-receipt.json", f"Receipt {record.id}", document_text))
        return posts

    async def deliver(self, record: RequestRecord, posted: int) -> None:
        """Post what is not in the thread yet, counting each post as Slack confirms it: a post is
        repeated only if the process dies between Slack's answer and the count."""
        await self.publisher.refresh_card(record)
        document_text = await asyncio.to_thread(self.store.receipt, record.id)
        posts = self._result_posts(record, document_text)
        for step in range(posted, len(posts)):
            try:  # in the thread's order, each waiting out Slack's rate limits
                await self.publisher.in_thread(record, posts[step])
            except SLACK_TROUBLE as error:
                if slack_unavailable(error):
                    log.warning("result waits for Slack", extra={"request_id": record.id, "error": slack_error(error)})
                    return  # the claim lapses; a later sweep posts from this step on
                # Slack will never take this one (the channel is gone, the bot was removed): say so in the audit log.
                await asyncio.to_thread(
                    self.store.audit, actor="amlbot", event="result.undeliverable", outcome="skipped",
                    request_id=record.id, channel_id=record.channel_id, detail={"step": step, "error": slack_error(error)},
                )
            if not await asyncio.to_thread(self.store.mark_posted, record.id, self.owner, step + 1):
                return  # the claim went to another worker: it posts the rest
        await asyncio.to_thread(self.store.mark_posted, record.id, self.owner, len(posts), complete=True)

    async def _post_unposted(self) -> None:
        """Results still owed to Slack (it was down, or their worker died): one worker claims each."""
        for request_id in await asyncio.to_thread(self.store.unposted_results):
            posted = await asyncio.to_thread(self.store.claim_posting, request_id, self.owner, self.lease)
            if posted is None:
                continue  # another worker claimed it first
            record = await asyncio.to_thread(self.store.get, request_id)
            if record is not None:
                self._background(self._post_result(record, posted))

    # ---- timers --------------------------------------------------------------------------

    async def tick(self) -> None:
        moment = now()
        await self._expire(moment)
        await self._remind(moment + self.config.policy.reminder_before)
        await self._end_cooling_off(moment)
        await self._post_unposted()

    async def _expire(self, moment: datetime) -> None:
        for request_id in await asyncio.to_thread(self.store.due_expiry, moment):
            await self.requests.expire(request_id)

    async def _remind(self, expiring_by: datetime) -> None:
        for request_id in await asyncio.to_thread(self.store.due_reminders, expiring_by):
            if await asyncio.to_thread(self.store.mark_reminded, request_id):  # once, across replicas
                record = await asyncio.to_thread(self.store.get, request_id)
                if record:
                    await self.publisher.tell(record, cards.reminder_text(record))

    async def _end_cooling_off(self, moment: datetime) -> None:
        for request_id in await asyncio.to_thread(self.store.due, State.APPROVED, "not_before", moment):
            try:
                queued = await asyncio.to_thread(
                    self.store.transition, request_id, State.QUEUED, actor="amlbot", event="request.cooled_off",
                    expected=frozenset({State.APPROVED}),
                )
            except IllegalTransition:
                continue  # cancelled or run now meanwhile
            await self.publisher.refresh_card(queued)

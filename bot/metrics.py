"""Prometheus metrics (served at `/metrics` by bot.server).

Counters and histograms live in the process-wide registry (one process is one scrape target), in
bot/instruments.py: each hook imports it when it first counts, so that prometheus_client (and
azure-core, for the Azure policies) are not loaded before serve answers. Under `amlbot serve` with
jobs in its child process, both processes keep them in files that /metrics sums (prometheus_client's
multiprocess mode, see bot.metric_files): a `Gauge` added there then needs a `multiprocess_mode`
(`livesum`, `max`, …) saying how to combine processes. What the database knows (requests by action
and state, jobs by state, the freeze) is read at scrape time, so every replica reports the same
truth. Metrics come in through hooks: a Bolt middleware (deliveries and ack latency), the Slack
client (`MeasuredWebClient`), an azure-core policy on every Azure client
(`commands.azure.calls.CallPolicy`), and a few one-line calls from the use cases (bot/requests/) and
the worker.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlalchemy import and_, func, select

from bot import metric_files
from bot.lifecycle import State
from bot.slack_http import shared_session
from bot.store import schema as t
from bot.store.store import RequestRecord, Store, now

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from commands.azure.calls import CallPolicy


# ---- calls from the use cases and the worker ---------------------------------------------------


def refused(event: str) -> None:
    from bot import instruments as m

    m.REFUSALS.labels(event).inc()


def approved() -> None:
    from bot import instruments as m

    m.APPROVALS.inc()


def rejected(reason: str) -> None:
    from bot import instruments as m

    m.SLACK_REJECTED.labels(reason).inc()


def job_finished(record: RequestRecord, started: datetime) -> None:
    """A job ended (any way): its duration, what happened to its items, and what it exported."""
    from bot import instruments as m

    result = record.result or {}
    m.JOB_SECONDS.labels(str(record.action), record.state.value).observe((now() - started).total_seconds())
    for outcome, count in (result.get("summary") or {}).items():
        m.JOB_ITEMS.labels(str(record.action), outcome).inc(count)
    size = (result.get("extras") or {}).get("size")
    if isinstance(size, int):
        m.EXPORTED_BYTES.labels(str(record.action)).inc(size)


# ---- Slack --------------------------------------------------------------------------------------


def delivery_kind(body: dict[str, Any]) -> str:
    """command, block_actions, event:<type>, … : few values, so fit for a label."""
    if body.get("command"):
        return "command"
    if body.get("type") == "event_callback":
        event = body.get("event")
        return f"event:{event.get('type') if isinstance(event, dict) else 'unknown'}"
    return str(body.get("type") or "other")


async def measure_ack(req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
    """Bolt middleware: `next()` returns once the listener has acked (the work goes on after)."""
    from bot import instruments as m

    kind = delivery_kind(req.body)
    m.SLACK_DELIVERIES.labels(kind).inc()
    started = time.perf_counter()
    try:
        return await next()
    finally:
        m.ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)


class MeasuredWebClient(AsyncWebClient):
    """Every Web API method goes through `api_call`: timed here, failures counted by Slack's error, and
    sent on the process's keep-alive session (bot.slack_http)."""

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        from bot import instruments as m

        shared_session(self)
        started = time.perf_counter()
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            m.SLACK_CALL_ERRORS.labels(api_method, str(error.response.get("error") or error.response.status_code)).inc()
            raise
        except Exception as error:  # cannot reach Slack at all
            m.SLACK_CALL_ERRORS.labels(api_method, type(error).__name__).inc()
            raise
        finally:
            m.SLACK_CALL_SECONDS.labels(api_method).observe(time.perf_counter() - started)


# ---- Azure --------------------------------------------------------------------------------------


def _observe_azure(service: str, method: str, seconds: float | None, failure: str | None) -> None:
    from bot import instruments as m

    if seconds is not None:
        m.AZURE_CALL_SECONDS.labels(service, method).observe(seconds)
    if failure is not None:
        m.AZURE_CALL_ERRORS.labels(service, failure).inc()


@cache
def _policy(service: str) -> CallPolicy:
    """The measuring policy of one service: management, storage, or graph (Microsoft Graph: who a person is)."""
    from commands.azure.calls import CallPolicy

    return CallPolicy(partial(_observe_azure, service))


def management_kwargs(kwargs: dict[str, Any], service: str = "management") -> dict[str, Any]:
    """azure-core client options with the measuring policy after the retry policy (each try counts)."""
    return {**kwargs, "per_retry_policies": [*kwargs.get("per_retry_policies", []), _policy(service)]}


def storage_kwargs() -> dict[str, Any]:
    # The storage clients take no `per_retry_policies`; their pipeline builder appends these, after retries.
    return {"_additional_pipeline_policies": [_policy("storage")]}


# ---- what the database knows, read at scrape time ----------------------------------------------


class StoreCollector:
    """Requests by action and state, jobs by state, lapsed leases and the freeze, from one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> list[Metric]:
        return []  # generated per scrape; nothing to check for clashes at registration

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        requests = GaugeMetricFamily("amlbot_requests", "Requests by action and state", labels=["action", "state"])
        jobs = GaugeMetricFamily("amlbot_jobs", "Jobs by their request's state", labels=["state"])
        lapsed = GaugeMetricFamily(
            "amlbot_jobs_lease_lapsed", "Running jobs whose worker stopped renewing the lease (resumed by the next claim)"
        )
        frozen = GaugeMetricFamily("amlbot_frozen", "1 while an admin has frozen the start of jobs")
        head_sound = GaugeMetricFamily(
            "amlbot_audit_head_sound", "1 while a trusted key signed the audit head and it names the last entry, unaltered"
        )
        breaks = GaugeMetricFamily("amlbot_audit_chain_breaks", "Breaks of the audit chain recorded in the log (alert on > 0)")
        r, j = t.requests, t.jobs
        with self.store.engine.connect() as conn:
            for action, state, count in conn.execute(select(r.c.action, r.c.state, func.count()).group_by(r.c.action, r.c.state)):
                requests.add_metric([action, state], count)
            joined = j.join(r, r.c.id == j.c.request_id)
            for state, count in conn.execute(select(r.c.state, func.count()).select_from(joined).group_by(r.c.state)):
                jobs.add_metric([state], count)
            stale = select(func.count()).select_from(joined).where(and_(r.c.state == State.RUNNING.value, j.c.lease_until < now()))
            lapsed.add_metric([], conn.execute(stale).scalar_one())
        frozen.add_metric([], int(self.store.frozen()))
        health = self.store.audit_health()
        head_sound.add_metric([], int(health.head_problem is None))
        breaks.add_metric([], health.breaks)
        yield from (requests, jobs, lapsed, frozen, head_sound, breaks)


def renderer(store: Store) -> Callable[[], tuple[bytes, str]]:
    """The process's metrics (with its worker child's, when they share a directory: see
    bot.metric_files) and the store's, in Prometheus' text format, with its content type."""
    collector = StoreCollector(store)

    def render() -> tuple[bytes, str]:
        from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
        from prometheus_client.exposition import CONTENT_TYPE_LATEST
        from prometheus_client.multiprocess import MultiProcessCollector

        from bot import instruments  # noqa: F401  # the process's own metrics, registered before the first delivery too

        own = CollectorRegistry(auto_describe=False)
        own.register(collector)
        shared = metric_files.directory()
        if shared is None:
            return generate_latest(REGISTRY) + generate_latest(own), CONTENT_TYPE_LATEST
        # Every process's files, this one's included: REGISTRY would show this process's values twice.
        MultiProcessCollector(own, shared)
        return generate_latest(own), CONTENT_TYPE_LATEST

    return render


def process_gone(pid: int) -> None:
    """A process that shared the directory has ended: its counts stay (they happened), while what a
    live-only gauge (multiprocess_mode `live…`) said of it goes."""
    shared = metric_files.directory()
    if shared is not None:
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, shared)

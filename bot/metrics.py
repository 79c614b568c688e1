"""Prometheus metrics (served at `/metrics` by bot.server).

Counters and histograms live in the process-wide registry (one process is one scrape target). Under
`amlbot serve` with jobs in its child process, both processes keep them in files that /metrics sums
(prometheus_client's multiprocess mode, see bot.metric_files): a `Gauge` added here then needs a
`multiprocess_mode` (`livesum`, `max`, …) saying how to combine processes. What the database knows
(requests by action and state, jobs by state, the freeze) is read at scrape time, so every replica
reports the same truth. Metrics come in through hooks: a Bolt middleware (deliveries and ack
latency), the Slack client (`MeasuredWebClient`), an azure-core policy on every Azure client
(`commands.azure.calls.CallPolicy`), and a few one-line calls from the use cases (bot/requests/) and
the worker.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from slack_bolt.async_app import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlalchemy import and_, func, select

from bot import metric_files
from bot.lifecycle import State
from bot.store import schema as t
from bot.store.store import RequestRecord, Store, now
from commands.azure.calls import CallPolicy

# Slack allows 3 s for an ack: the buckets resolve the range around it.
ACK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
JOB_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)

SLACK_DELIVERIES = Counter("amlbot_slack_deliveries", "Requests from Slack, by kind", ["kind"])
ACK_SECONDS = Histogram(
    "amlbot_slack_ack_seconds", "From a verified Slack request reaching the listeners to its ack", ["kind"], buckets=ACK_BUCKETS
)
SLACK_CALL_SECONDS = Histogram(
    "amlbot_slack_call_seconds", "Slack Web API calls, retries included", ["method"], buckets=CALL_BUCKETS
)
SLACK_CALL_ERRORS = Counter("amlbot_slack_call_errors", "Slack Web API calls that failed, by Slack's error", ["method", "error"])
AZURE_CALL_SECONDS = Histogram(
    "amlbot_azure_call_seconds", "Azure HTTP requests, each try", ["service", "method"], buckets=CALL_BUCKETS
)
AZURE_CALL_ERRORS = Counter(
    "amlbot_azure_call_errors", "Azure HTTP requests that failed: status code or exception", ["service", "reason"]
)
SLACK_REJECTED = Counter(
    "amlbot_slack_rejected", "Deliveries refused before parsing: unsigned, stale, bad signature (audited in aggregate)", ["reason"]
)
REFUSALS = Counter("amlbot_refusals", "Commands and clicks refused, by audit event", ["event"])
APPROVALS = Counter("amlbot_approvals", "Approvals recorded")
JOB_SECONDS = Histogram(
    "amlbot_job_duration_seconds", "From a job's claim to its end", ["action", "state"], buckets=JOB_BUCKETS
)
JOB_ITEMS = Counter(
    "amlbot_job_items", "Items finished jobs handled, by outcome (deleted, already_absent, failed, …)", ["action", "outcome"]
)
EXPORTED_BYTES = Counter("amlbot_exported_bytes", "Bytes of export archives written", ["action"])


# ---- calls from the use cases and the worker ---------------------------------------------------


def refused(event: str) -> None:
    REFUSALS.labels(event).inc()


def approved() -> None:
    APPROVALS.inc()


def job_finished(record: RequestRecord, started: datetime) -> None:
    """A job ended (any way): its duration, what happened to its items, and what it exported."""
    result = record.result or {}
    JOB_SECONDS.labels(str(record.action), record.state.value).observe((now() - started).total_seconds())
    for outcome, count in (result.get("summary") or {}).items():
        JOB_ITEMS.labels(str(record.action), outcome).inc(count)
    size = (result.get("extras") or {}).get("size")
    if isinstance(size, int):
        EXPORTED_BYTES.labels(str(record.action)).inc(size)


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
    kind = delivery_kind(req.body)
    SLACK_DELIVERIES.labels(kind).inc()
    started = time.perf_counter()
    try:
        return await next()
    finally:
        ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)


class MeasuredWebClient(AsyncWebClient):
    """Every Web API method goes through `api_call`: timed here, and failures counted by Slack's error."""

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        started = time.perf_counter()
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            SLACK_CALL_ERRORS.labels(api_method, str(error.response.get("error") or error.response.status_code)).inc()
            raise
        except Exception as error:  # cannot reach Slack at all
            SLACK_CALL_ERRORS.labels(api_method, type(error).__name__).inc()
            raise
        finally:
            SLACK_CALL_SECONDS.labels(api_method).observe(time.perf_counter() - started)


# ---- Azure --------------------------------------------------------------------------------------


def _observe_azure(service: str, method: str, seconds: float | None, failure: str | None) -> None:
    if seconds is not None:
        AZURE_CALL_SECONDS.labels(service, method).observe(seconds)
    if failure is not None:
        AZURE_CALL_ERRORS.labels(service, failure).inc()


MANAGEMENT_POLICY = CallPolicy(partial(_observe_azure, "management"))
STORAGE_POLICY = CallPolicy(partial(_observe_azure, "storage"))
GRAPH_POLICY = CallPolicy(partial(_observe_azure, "graph"))  # Microsoft Graph: who a person is


def management_kwargs(kwargs: dict[str, Any], policy: CallPolicy = MANAGEMENT_POLICY) -> dict[str, Any]:
    """azure-core client options with the measuring policy after the retry policy (each try counts)."""
    return {**kwargs, "per_retry_policies": [*kwargs.get("per_retry_policies", []), policy]}


# The storage clients take no `per_retry_policies`; their pipeline builder appends these, after retries.
STORAGE_KWARGS: dict[str, Any] = {"_additional_pipeline_policies": [STORAGE_POLICY]}


# ---- what the database knows, read at scrape time ----------------------------------------------


class StoreCollector:
    """Requests by action and state, jobs by state, lapsed leases and the freeze, from one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> list[Metric]:
        return []  # generated per scrape; nothing to check for clashes at registration

    def collect(self) -> Iterator[Metric]:
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


CONTENT_TYPE = CONTENT_TYPE_LATEST  # of what `renderer` renders


def renderer(store: Store) -> Callable[[], bytes]:
    """The process's metrics (with its worker child's, when they share a directory: see
    bot.metric_files) and the store's, in Prometheus' text format (`CONTENT_TYPE`)."""
    own = CollectorRegistry(auto_describe=False)
    own.register(StoreCollector(store))
    shared = metric_files.directory()
    if shared is None:
        return lambda: generate_latest(REGISTRY) + generate_latest(own)
    # Every process's files, this one's included: REGISTRY would show this process's values twice.
    MultiProcessCollector(own, shared)
    return lambda: generate_latest(own)


def process_gone(pid: int) -> None:
    """A process that shared the directory has ended: its counts stay (they happened), while what a
    live-only gauge (multiprocess_mode `live…`) said of it goes."""
    shared = metric_files.directory()
    if shared is not None:
        mark_process_dead(pid, shared)

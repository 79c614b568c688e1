"""The process's Prometheus counters and histograms, in prometheus_client's process-wide registry.

Imported on first use through bot.metrics (the first delivery, Slack call or scrape; serve's preload
loads it right after the server answers), so that serve's start does not wait for prometheus_client.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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

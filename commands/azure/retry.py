"""Retry settings for every Azure client, tuned in one place: 429 and 5xx back off and retry."""

from __future__ import annotations

import os
from typing import Any

# One scale for every back-off; tests shrink it through the environment.
_SCALE = float(os.environ.get("AMLBOT_AZURE_RETRY_BACKOFF", "1.0"))

_STORAGE_BACKOFF: dict[str, Any] = {
    "initial_backoff": 1.0 * _SCALE,
    "increment_base": 4.0 * _SCALE,
    "retry_total": 5,
    "random_jitter_range": int(_SCALE >= 1),  # so replicas do not retry in step
}


def storage_retry(*, asynchronous: bool) -> dict[str, Any]:
    """Waits of about 1, 5, 17, 65 s (scaled) between tries of a throttled or failing storage call."""
    # Imported here, where a storage client is made: the management clients' settings below must not load it.
    from azure.storage.blob import ExponentialRetry
    from azure.storage.blob.aio import ExponentialRetry as AsyncExponentialRetry

    policy = AsyncExponentialRetry if asynchronous else ExponentialRetry
    return {"retry_policy": policy(**_STORAGE_BACKOFF)}


def file_share_retry() -> dict[str, Any]:
    """The same back-off for the async file share client, which builds its own policy from these
    keywords (its package exports no async policy class)."""
    return dict(_STORAGE_BACKOFF)
# azure-core's policy for the management and Azure ML clients.
MGMT_RETRY: dict[str, Any] = {"retry_total": 6, "retry_backoff_factor": 0.8 * _SCALE, "retry_backoff_max": 60}

"""Slack's Web API rate limits, for the stand-in to enforce: each method's tier, per workspace, and
chat.postMessage's own limit of about one message a second per channel.

Sources (SLACK-FACTS.md): Slack's "Rate limits" guide (docs.slack.dev/apis/web-api/
rate-limits): Tier 1 1+ a minute, Tier 2 20+, Tier 3 50+, Tier 4 100+, applied per method, per app,
per workspace; "special" methods have their own, chat.postMessage "one message per second per
channel" with short bursts allowed. Over a limit Slack answers HTTP 429, `{"ok": false, "error":
"ratelimited"}` and `Retry-After` in whole seconds. Each method's tier is its reference page's (U
where marked: not read from the page itself).

A limit is a token bucket: `burst` calls at once, refilled at `calls` per `window`. `scale` shrinks
every window (0.01: a minute lasts 0.6 s), so tests meet the limits without waiting for them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    calls: int  # refilled per window
    window: float  # seconds, before scaling
    burst: int  # taken at once from a full bucket
    per_channel: bool = False  # one bucket per channel instead of one per workspace


def tier(calls_per_minute: int) -> Limit:
    # "Sporadic bursts are welcome": a minute's quota may be used at once.
    return Limit(calls_per_minute, 60.0, calls_per_minute)


TIER_1, TIER_2, TIER_3, TIER_4 = tier(1), tier(20), tier(50), tier(100)
# About one message a second per channel; "short bursts >1 allowed" (how many is not documented: 3 here).
POSTING = Limit(1, 1.0, 3, per_channel=True)

SLACK_LIMITS: Mapping[str, Limit] = {
    "chat.postMessage": POSTING,
    "chat.update": TIER_3,
    "chat.postEphemeral": TIER_4,
    "chat.getPermalink": TIER_4,  # (U) documented as "Special"
    "auth.test": TIER_4,  # (U) documented as "Special"
    "apps.connections.open": TIER_1,
    "users.info": TIER_4,
    "users.lookupByEmail": TIER_3,
    "users.list": TIER_2,
    "usergroups.users.list": TIER_2,
    "conversations.info": TIER_3,
    "conversations.open": TIER_3,
    "views.publish": TIER_4,
    "views.open": TIER_4,
    "files.getUploadURLExternal": TIER_4,
    "files.completeUploadExternal": TIER_4,
}


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class SlackRateLimits:
    """Decides, call by call, whether Slack would take it now; if not, for how long to wait."""

    def __init__(
        self,
        scale: float = 1.0,
        limits: Mapping[str, Limit] = SLACK_LIMITS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self.limits = dict(limits)
        self._clock = clock
        self._buckets: dict[tuple[str, str | None], _Bucket] = {}

    def wait(self, method: str, channel: str | None) -> float:
        """0 when the call is taken now (its token spent), else the seconds until it would be."""
        limit = self.limits.get(method)
        if limit is None:
            return 0.0
        key = (method, channel if limit.per_channel else None)
        now = self._clock()
        rate = limit.calls / (limit.window * self.scale)  # tokens a second
        bucket = self._buckets.setdefault(key, _Bucket(float(limit.burst), now))
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    @staticmethod
    def retry_after(wait: float) -> str:
        """The `Retry-After` header Slack would send: whole seconds, rounded up (never too early)."""
        return str(max(1, math.ceil(wait)))

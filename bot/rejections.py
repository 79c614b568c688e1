"""Deliveries refused for their signature: counted at once, logged by sample, audited in aggregate.

A forged request must cost the bot less than it costs the sender: no database write each, no log
line each. Each one is counted in `amlbot_slack_rejected_total{reason}`; one log line per window
says how many there were; one audit entry per window (and one at shutdown) records the count by
reason and the busiest sources.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk.signature import SignatureVerifier

from bot import metrics
from bot.store.store import Store

log = logging.getLogger(__name__)

WINDOW = 60.0  # seconds: at most one log line and one audit entry per window
MAX_SOURCES = 50  # distinct sources remembered per window: a spoofed flood cannot grow memory
SLACK_MAX_AGE = 60 * 5  # Slack's rule: a timestamp more than five minutes off is a replay


def rejection(secret: str | None, raw: bytes, headers: Mapping[str, str]) -> str | None:
    """Why a delivery is refused, decided on the raw bytes before anything parses them; None
    when Slack signed it."""
    if not secret:
        return "no signing secret"  # nothing can be verified: nothing is accepted
    timestamp, signature = headers.get("X-Slack-Request-Timestamp"), headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        return "unsigned"
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return "bad timestamp"
    if age > SLACK_MAX_AGE:
        return "stale"
    try:
        valid = SignatureVerifier(secret).is_valid(raw, timestamp, signature)
    except ValueError:  # a body that is not UTF-8: forged, not broken
        return "bad signature"
    return None if valid else "bad signature"


@dataclass
class Rejections:
    store: Store
    window: float = WINDOW
    reasons: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    first_at: str | None = None
    _logged: float | None = None

    def record(self, reason: str, source: str) -> None:
        """One refused delivery: in memory only (runs on the event loop)."""
        metrics.rejected(reason)
        at = datetime.now(UTC).isoformat(timespec="seconds")
        self.first_at = self.first_at or at
        self.reasons[reason] += 1
        if source in self.sources or len(self.sources) < MAX_SOURCES:
            self.sources[source] += 1
        moment = time.monotonic()
        if self._logged is None or moment - self._logged >= self.window:
            self._logged = moment
            log.warning(
                "Slack deliveries refused (one line per window; amlbot_slack_rejected_total counts each)",
                extra={"reason": reason, "remote": source, "refused_this_window": sum(self.reasons.values())},
            )

    def take(self) -> dict[str, Any] | None:
        """The window's tally as an audit detail, and a fresh window; None when nothing was refused."""
        if not self.reasons:
            return None
        detail = {
            "count": sum(self.reasons.values()),
            "reasons": dict(self.reasons),
            "sources": dict(self.sources.most_common(10)),
            "first_at": self.first_at,
            "last_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.reasons, self.sources, self.first_at = Counter(), Counter(), None
        return detail

    async def flush(self) -> None:
        detail = self.take()
        if detail is not None:
            await asyncio.to_thread(
                self.store.audit, actor="unknown", event="signature.rejected", outcome="refused", detail=detail
            )

    async def run(self) -> None:
        """Audit the tally once per window while the server runs, and once more when it stops."""
        try:
            while True:
                await asyncio.sleep(self.window)
                try:
                    await self.flush()
                except Exception:  # the database is away: this window's tally is in the log, not the audit
                    log.exception("could not audit the refused deliveries")
        finally:
            await self.flush()

"""Ten jobs at once against a Slack stand-in that enforces Slack's rate limits (429 + Retry-After):
every thread post arrives, once, in order, and each card and progress line ends on its newest state."""

from __future__ import annotations

import asyncio
from typing import Any

from bot import cards
from bot.lifecycle import State
from sandbox.standins.slack_limits import SlackRateLimits
from tests.e2e.harness import ADMIN, APPROVER_1, REQUESTER, Harness

EXPORTS, DELETES = 6, 4
# A scaled minute lasts 12 s and a second 0.2 s: ten jobs in one channel go past the limits of
# posting (a burst of 3, then 5 a second) and of chat.update (Tier 3: 50 per scaled minute).
SCALE = 0.2


def run_id(n: int) -> str:
    return f"busy_train_17000000{n:02d}_abcd12{n:02d}"


def kind(message: dict[str, Any], request_id: str) -> str:
    """What a thread post is, by what it says: the test's expectations are sequences of these."""
    text = message.get("text") or ""
    files = [f["name"] for f in message.get("files") or []]
    if files:
        return {f"{request_id}-plan.json": "plan", f"{request_id}-receipt.json": "receipt file"}.get(files[0], f"file {files}")
    if f"{request_id} is approved by" in text:
        return "approved"
    if text.startswith(":white_check_mark: Finished:"):
        return "progress, finished"
    if "your export is ready" in text:
        return "link"
    if f"deletion receipt for {request_id}" in text:
        return "receipt"
    return f"other: {text[:60]!r}"


async def test_ten_jobs_at_once_deliver_every_post_in_order_within_slack_rate_limits(harness: Harness) -> None:
    harness.bot.worker.concurrency = EXPORTS + DELETES
    for n in range(EXPORTS + DELETES):
        prefix = f"ExperimentRun/dcid.{run_id(n)}/"
        await harness.seed({f"{prefix}outputs/part-{k}.bin": bytes([n, k]) * 512 for k in range(3)})
    assert (await harness.command("freeze", ADMIN))[0] == 200  # the ten start together, at unfreeze
    await harness.wait_reply(ADMIN, "Frozen")
    verbs = ["export"] * EXPORTS + ["delete"] * DELETES
    requests = [await harness.submit(f"{verb} run {run_id(n)}") for n, verb in enumerate(verbs)]

    harness.slack.rate_limits = SlackRateLimits(scale=SCALE)
    await asyncio.gather(*(harness.click(cards.ActionId.APPROVE, r.id, APPROVER_1) for r in requests))
    for request in requests:
        await harness.wait_state(request.id, State.QUEUED)
    assert (await harness.command("unfreeze", ADMIN))[0] == 200

    def all_posted() -> bool:
        return all((harness.store.job(r.id) or {}).get("result_posted") for r in requests)

    await harness.slack.wait_for(all_posted, timeout=120, description="every job's result posted")
    assert harness.slack.throttled, "the stand-in never said 429: this test proved nothing"
    assert {c.method for c in harness.slack.throttled} >= {"chat.postMessage"}
    for request, verb in zip(requests, verbs, strict=True):
        assert harness.request(request.id).state is State.SUCCEEDED
        results = ["link"] if verb == "export" else ["receipt", "receipt file"]
        expected = ["plan", "approved", "progress, finished", *results]
        # Edits are coalesced, never lost: the card and the progress line end on the newest state.
        await harness.slack.wait_for(
            lambda request=request: "Done" in str(harness.card(request.id)["blocks"]), description=f"{request.id}'s card says Done"
        )
        assert [kind(m, request.id) for m in harness.thread(request.id)] == expected, request.id
        assert all(m.get("user") != REQUESTER for m in harness.thread(request.id))

"""The worker's pure parts: how often progress may be edited, and which Slack failures are worth a retry."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.worker import ChannelPacer, slack_unavailable


def test_progress_edits_are_paced_per_channel_across_jobs() -> None:
    moment = [100.0]
    pacer = ChannelPacer(every=3.0, clock=lambda: moment[0])
    assert pacer.ready("C1") and not pacer.ready("C1")  # a second job in the same channel waits
    assert pacer.ready("C2")  # another channel does not
    moment[0] = 102.9
    assert not pacer.ready("C1")
    moment[0] = 103.0
    assert pacer.ready("C1") and not pacer.ready("C1")


def _refusal(error: str, status: int = 200) -> SlackApiError:
    response = AsyncSlackResponse(
        client=None, http_verb="POST", api_url="https://slack.test/api/chat.postMessage", req_args={},
        data={"ok": False, "error": error}, headers={}, status_code=status,
    )
    return SlackApiError(error, response)


def test_slack_down_is_retried_later_and_a_refusal_is_not() -> None:
    assert slack_unavailable(aiohttp.ClientConnectionError("refused"))
    assert slack_unavailable(TimeoutError())
    assert slack_unavailable(_refusal("ratelimited", 429))
    assert slack_unavailable(_refusal("service_unavailable", 503))
    assert slack_unavailable(_refusal("internal_error"))
    assert not slack_unavailable(_refusal("channel_not_found"))
    assert not slack_unavailable(_refusal("not_in_channel"))

"""Everything the bot sends to Slack, Web API calls and response_url answers alike, rides one
keep-alive session: a burst of answers must not open a connection (a TLS handshake with slack.com) each."""

from __future__ import annotations

from tests.e2e.harness import CHANNEL, REQUESTER, Harness

ANSWERS = 6


def connections(h: Harness, prefix: str) -> set[object]:
    return {peer for path, peer in h.slack.peers if path.startswith(prefix)}


async def test_answers_and_api_calls_reuse_one_connection(harness: Harness) -> None:
    for n in range(ANSWERS):
        status, _ = await harness.command(f"status r-{n:08d}", REQUESTER)
        assert status == 200
        await harness.slack.wait_for(lambda n=n: len(harness.slack.response_posts) > n, description=f"answer {n + 1}")
    answers = [p for p, _ in harness.slack.peers if p.startswith("/response/")]
    assert len(answers) == ANSWERS
    assert len(connections(harness, "/response/")) == 1

    calls_before = len([p for p, _ in harness.slack.peers if p.startswith("/api/")])
    for n in range(3):
        await harness.bot.publisher.client.chat_postMessage(channel=CHANNEL, text=f"note {n}")
    api = [p for p, _ in harness.slack.peers if p.startswith("/api/")]
    assert len(api) >= calls_before + 3
    assert len(connections(harness, "/")) == 1  # answers and API calls: the same connection

"""In a burst, every ack goes out before any delivery's follow-up (claim, reads, audit, reply) takes
the event loop: what a listener does after `ack()` waits while another delivery waits for its ack."""

from __future__ import annotations

import asyncio

from bot import cards
from tests.e2e.harness import APPROVER_1, REQUESTER, Harness


async def test_follow_ups_wait_while_another_delivery_waits_for_its_ack(harness: Harness) -> None:
    acks = harness.bot.acks
    acks.longest = 30.0
    with acks.answering():  # another delivery of the burst, not yet answered
        assert (await harness.command("status R-AAAAAAAA", REQUESTER))[0] == 200  # acks are not held back
        assert (await harness.sender.send(harness.click_body(cards.ActionId.APPROVE, "R-AAAAAAAA", APPROVER_1)))[0] == 200
        await asyncio.sleep(0.3)
        assert harness.slack.response_posts == []  # ... their follow-ups are: no reply
        assert harness.events() == []  # and no audited refusal yet
    await harness.wait_reply(REQUESTER, "No request")
    await harness.wait_reply(APPROVER_1, "does not exist")
    assert harness.events() == ["click.refused"]

"""Thread posts keep their order; edits of one message are coalesced to the newest."""

from __future__ import annotations

import asyncio

from bot.outbox import Outbox


async def test_posts_to_one_thread_go_out_one_at_a_time_in_the_order_asked() -> None:
    outbox, sent, gate = Outbox(), [], asyncio.Event()

    async def slow() -> str:
        await gate.wait()  # the first post is slow (Slack made it wait): the others queue behind it
        sent.append("first")
        return "first"

    async def quick(name: str) -> str:
        sent.append(name)
        return name

    first = outbox.post("C1", "1.0", slow)
    second = outbox.post("C1", "1.0", lambda: quick("second"))
    elsewhere = outbox.post("C1", "2.0", lambda: quick("another thread"))
    assert await elsewhere == "another thread"  # another thread does not wait
    assert sent == ["another thread"] and not second.done()
    gate.set()
    assert [await first, await second] == ["first", "second"]
    assert sent == ["another thread", "first", "second"]


async def test_edits_superseded_while_one_is_in_flight_are_never_sent() -> None:
    outbox, sent, gate, started = Outbox(), [], asyncio.Event(), asyncio.Event()

    def edit(text: str, wait: bool = False):  # type: ignore[no-untyped-def]
        async def send() -> None:
            if wait:
                started.set()
                await gate.wait()
            sent.append(text)
        return send

    first = asyncio.ensure_future(outbox.edit("C1", "1.0", edit("1 of 4", wait=True)))
    await started.wait()  # the first edit is in flight
    later = [asyncio.ensure_future(outbox.edit("C1", "1.0", edit(f"{n} of 4"))) for n in (2, 3, 4)]
    gate.set()
    await asyncio.gather(first, *later)
    assert sent == ["1 of 4", "4 of 4"]

"""Delivery claims: first copies told from later ones, a burst of them in one transaction; the work
after an ack held back while other deliveries wait for theirs."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bot.deliveries import CLAIM, GATE, AckGate, DeliveryClaims, first_copy
from bot.store.store import Store
from tests.conftest import AUDIT_KEY


def test_claims_in_one_transaction_tell_first_copies_from_later_ones(store: Store) -> None:
    assert store.claim_deliveries(["trigger:seen"]) == [True]
    keys = ["trigger:a", "trigger:seen", "trigger:b", "trigger:a"]
    assert store.claim_deliveries(keys) == [True, False, True, False]
    assert store.claim_deliveries(keys) == [False] * 4


async def test_a_burst_of_claims_is_one_transaction(store: Store) -> None:
    batches: list[list[str]] = []
    claim_deliveries = store.claim_deliveries

    def counted(keys: list[str]) -> list[bool]:
        batches.append(keys)
        return claim_deliveries(keys)

    store.claim_deliveries = counted  # type: ignore[method-assign]
    claims = DeliveryClaims(store)
    firsts = await asyncio.gather(*(claims.claim(f"trigger:{i % 5}") for i in range(20)))
    assert firsts == [True] * 5 + [False] * 15
    assert len(batches) == 1  # all twenty arrived before the first commit began
    assert await claims.claim("trigger:1") is False and len(batches) == 2


async def test_a_failed_transaction_refuses_every_claim_in_it(tmp_path: Path) -> None:
    path = tmp_path / "amlbot.db"
    store = Store.open(f"sqlite:///{path}", AUDIT_KEY)
    event.listen(store.engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=0"))
    store.engine.dispose()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the database is locked for the claims' whole transaction
    claims = DeliveryClaims(store)
    try:
        outcomes = await asyncio.gather(*(claims.claim(f"trigger:{i}") for i in range(3)), return_exceptions=True)
        assert all(isinstance(o, OperationalError) for o in outcomes)
    finally:
        writer.rollback()
        writer.close()
    assert await claims.claim("trigger:0") is True  # nothing of the failed transaction was kept
    store.close()


async def test_work_after_an_ack_waits_until_no_delivery_waits_for_its_own(store: Store) -> None:
    gate = AckGate(longest=30)
    claims = DeliveryClaims(store)
    context = {GATE: gate, CLAIM: ("trigger:held", None, claims)}
    with gate.answering():  # this delivery, acked, its HTTP answer not yet written
        with gate.answering():  # another, still on its way to its ack
            follow_up = asyncio.create_task(first_copy(context))
            await asyncio.sleep(0.05)
            assert not follow_up.done()
        await asyncio.sleep(0.05)
        assert not follow_up.done()  # one is still answering
    assert await asyncio.wait_for(follow_up, 5) is True
    assert store.claim_deliveries(["trigger:held"]) == [False]  # claimed once let through, not before


async def test_work_after_an_ack_waits_no_longer_than_its_limit(store: Store) -> None:
    gate = AckGate(longest=0.1)
    with gate.answering():  # a load with no lull: the follow-ups must still go on
        assert await asyncio.wait_for(first_copy({GATE: gate}), 5) is True
    # The gate opens and closes again as deliveries come and go.
    with gate.answering():
        waiting = asyncio.create_task(gate.quiet())
        await asyncio.sleep(0)
        assert not waiting.done()
    await asyncio.wait_for(waiting, 5)
    await asyncio.wait_for(gate.quiet(), 0.01)  # nothing answering: no wait at all

"""Delivery claims: first copies told from later ones, a burst of them in one transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bot.deliveries import DeliveryClaims
from bot.store.store import Store
from tests.conftest import AUDIT_KEY


def test_claims_in_one_transaction_tell_first_copies_from_later_ones(store: Store) -> None:
    assert store.claim_delivery("trigger:seen")
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

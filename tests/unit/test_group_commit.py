"""Refusals that come together are audited together: one transaction, one head signature, the
chain intact and in the order they were asked for; a malformed one never takes the others with it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.group_commit import GroupCommit
from bot.store.store import Store


def refusal(n: int, actor: object = "UAPP00001") -> dict[str, Any]:
    return {"actor": actor, "event": "approve.refused", "outcome": "refused", "request_id": None,
            "channel_id": "C0AMLBOT1", "detail": {"reason": f"refusal {n}"}}


async def test_a_burst_of_refusals_is_one_transaction_and_the_chain_holds(store: Store) -> None:
    store.audit(actor="UREQ00001", event="freeze", outcome="ok")  # a head to extend
    batches: list[int] = []
    audit_all = store.audit_all

    def counted(events: list[dict[str, Any]]) -> list[Any]:
        batches.append(len(events))
        return audit_all(events)

    refusals = GroupCommit(counted)
    entries = await asyncio.gather(*(refusals.submit(refusal(n)) for n in range(12)))
    assert batches == [12]  # all arrived before the first commit began
    assert [e.seq for e in entries] == list(range(entries[0].seq, entries[0].seq + 12))
    logged = store.audit_entries()[-12:]
    assert [json.loads(e.detail)["reason"] for e in logged] == [f"refusal {n}" for n in range(12)]  # in the order asked
    assert [e.hash for e in logged] == [e.hash for e in entries]
    assert store.audit_head().seq == entries[-1].seq  # type: ignore[union-attr]
    assert store.verify_audit().ok
    await refusals.submit(refusal(12))
    assert batches == [12, 1] and store.verify_audit().ok


def test_a_malformed_event_keeps_none_of_its_batch(store: Store) -> None:
    before = len(store.audit_entries())
    with pytest.raises(TypeError):
        store.audit_all([refusal(0), refusal(1, actor=5)])
    assert len(store.audit_entries()) == before
    store.audit_all([refusal(2)])
    assert store.verify_audit().ok
    assert store.audit_all([]) == [] and len(store.audit_entries()) == before + 1  # nothing to chain, no head re-signed

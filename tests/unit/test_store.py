"""The store on SQLite and PostgreSQL: compare-and-set transitions, quorum, jobs, audit chain."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from bot.lifecycle import IllegalTransition, State
from bot.store.store import Store


def _request(store: Store, approvals: int = 1):
    return store.create_request(
        team_id="T1", channel_id="C1", requester="UREQ", text="delete run r1",
        action="delete run", workspace="dev", intent={"verb": "delete"}, plan={"items": []},
        plan_hash="sha256:x", approvals_required=approvals, expires_in=timedelta(hours=1),
    )


def test_transition_is_compare_and_set(store: Store) -> None:
    request = _request(store)
    rejected = store.transition(request.id, State.REJECTED, actor="UAPP", event="request.rejected")
    assert rejected.state is State.REJECTED
    with pytest.raises(IllegalTransition, match="is rejected"):
        store.transition(request.id, State.CANCELLED, actor="UREQ", event="request.cancelled")
    assert store.get(request.id).state is State.REJECTED


def test_quorum_of_two_distinct_approvers(store: Store) -> None:
    request = _request(store, approvals=2)
    first = store.approve(request.id, "UA", cooling_off=timedelta(0))
    again = store.approve(request.id, "UA", cooling_off=timedelta(0))
    assert (first.added, first.quorum_reached_now, again.added, again.count) == (True, False, False, 1)
    second = store.approve(request.id, "UB", cooling_off=timedelta(0))
    assert second.quorum_reached_now and second.request.state is State.QUEUED
    assert second.request.approvers == ("UA", "UB")
    assert store.count_jobs(request.id) == 1
    with pytest.raises(IllegalTransition):
        store.approve(request.id, "UC", cooling_off=timedelta(0))


def test_concurrent_approvals_make_one_job(store: Store) -> None:
    request = _request(store, approvals=2)
    results, errors = [], []

    def click(user: str) -> None:
        try:
            results.append(store.approve(request.id, user, cooling_off=timedelta(0)))
        except IllegalTransition as error:
            errors.append(error)

    threads = [threading.Thread(target=click, args=(f"U{i % 4}",)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.quorum_reached_now for r in results) == 1
    assert store.count_jobs(request.id) == 1
    assert store.verify_audit().ok


def test_job_claim_lease_and_resume(store: Store) -> None:
    request = _request(store)
    store.approve(request.id, "UA", cooling_off=timedelta(0))
    claim = store.claim_job("w1", timedelta(seconds=60))
    assert claim and claim.request_id == request.id and claim.attempts == 1
    assert store.claim_job("w2", timedelta(seconds=60)) is None  # leased
    assert store.get(request.id).state is State.RUNNING
    # w1 dies: its lease lapses and w2 resumes the job.
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE jobs SET lease_until = :past"), {"past": "2000-01-01 00:00:00+00:00"})
    resumed = store.claim_job("w2", timedelta(seconds=60))
    assert resumed and resumed.attempts == 2
    assert not store.renew_lease(request.id, "w1", timedelta(seconds=60))
    store.record_items(request.id, [("blob:a", "deleted", {})])
    store.record_items(request.id, [("blob:a", "failed", {}), ("blob:b", "deleted", {})])
    assert store.item_outcomes(request.id) == {"blob:a": ("deleted", {}), "blob:b": ("deleted", {})}
    done = store.finish(request.id, "w2", State.SUCCEEDED, result={"summary": {}}, receipt="{}")
    assert done.state is State.SUCCEEDED
    assert store.mark_receipt_posted(request.id) and not store.mark_receipt_posted(request.id)


def test_freeze_stops_claims(store: Store) -> None:
    request = _request(store)
    store.approve(request.id, "UA", cooling_off=timedelta(0))
    assert store.set_frozen(True, "UADMIN") and not store.set_frozen(True, "UADMIN")
    assert store.claim_job("w1", timedelta(seconds=60)) is None
    store.set_frozen(False, "UADMIN")
    assert store.claim_job("w1", timedelta(seconds=60)) is not None


def test_delivery_claimed_once(store: Store) -> None:
    assert store.claim_delivery("trigger-1") and not store.claim_delivery("trigger-1")


@pytest.mark.parametrize(
    "tamper, seq",
    [
        ("UPDATE audit_log SET actor = 'UEVIL' WHERE seq = 2", 2),
        ("DELETE FROM audit_log WHERE seq = 2", 2),
        # swap entries 2 and 3 through negative numbers, since seq is unique
        ("UPDATE audit_log SET seq = -seq WHERE seq IN (2, 3);"
         "UPDATE audit_log SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE seq < 0", 2),
        ("DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)", 4),
    ],
    ids=["altered", "removed", "swapped", "truncated"],
)
def test_audit_verify_catches_tampering(store: Store, tamper: str, seq: int) -> None:
    request = _request(store, approvals=2)
    store.approve(request.id, "UA", cooling_off=timedelta(0))
    store.approve(request.id, "UB", cooling_off=timedelta(0))
    assert store.verify_audit().ok
    with store.engine.begin() as conn:
        for statement in tamper.split(";"):
            conn.execute(text(statement))
    result = store.verify_audit()
    assert not result.ok and result.first_bad_seq == seq, result

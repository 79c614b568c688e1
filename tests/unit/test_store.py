"""The store on SQLite and PostgreSQL: compare-and-set transitions, quorum, jobs, audit chain."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from bot.lifecycle import WAITING, IllegalTransition, RequestExpired, State
from bot.store.store import LeaseLost, Store, now
from commands.intents import Action
from tests.conftest import AUDIT_KEY
from tests.support.plan_reads import plan_reads

LEASE = timedelta(seconds=60)
PAST = {"past": "2000-01-01 00:00:00+00:00"}


def _request(store: Store, approvals: int = 1):
    return store.create_request(
        team_id="T1", channel_id="C1", requester="UREQ", text="delete run r1",
        action=Action.parse("delete run"), workspace="dev", intent={"verb": "delete"}, plan={"items": []},
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
    done = store.finish(request.id, "w2", State.SUCCEEDED, result={"summary": {}}, receipt="{}", posting_lease=LEASE)
    assert done.state is State.SUCCEEDED


def _running(store: Store, owner: str = "w1") -> str:
    request = _request(store)
    store.approve(request.id, "UA", cooling_off=timedelta(0))
    assert store.claim_job(owner, LEASE)
    return request.id


def _lapse(store: Store, column: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(f"UPDATE jobs SET {column} = :past"), PAST)


def test_a_shutdown_hands_the_job_back_with_its_attempt(store: Store) -> None:
    request_id = _running(store)
    assert not store.release_lease(request_id, "w2")  # not its lease to give
    assert store.release_lease(request_id, "w1")
    job = store.job(request_id)
    assert job and job["lease_owner"] is None and job["attempts"] == 0
    resumed = store.claim_job("w2", LEASE)  # at once: nothing to wait out
    assert resumed and resumed.resumed and resumed.attempts == 1
    assert store.job(request_id)["started_at"] == job["started_at"]  # the first start stays
    events = [e.event for e in store.audit_entries(request_id)]
    assert events[-3:] == ["job.started", "job.interrupted", "job.resumed"]


def test_only_the_lease_holder_finishes_a_job(store: Store) -> None:
    request_id = _running(store)
    _lapse(store, "lease_until")
    assert store.claim_job("w2", LEASE)
    with pytest.raises(LeaseLost, match="now w2"):
        store.finish(request_id, "w1", State.SUCCEEDED, result={}, receipt="{}", posting_lease=LEASE)
    assert store.get(request_id).state is State.RUNNING and store.receipt(request_id) is None
    store.finish(request_id, "w2", State.SUCCEEDED, result={}, receipt="{}", posting_lease=LEASE)
    assert store.get(request_id).state is State.SUCCEEDED


def test_one_worker_at_a_time_posts_a_result_counting_each_post(store: Store) -> None:
    request_id = _running(store)
    store.finish(request_id, "w1", State.SUCCEEDED, result={}, receipt="{}", posting_lease=LEASE)
    assert store.unposted_results() == [] and store.claim_posting(request_id, "w2", LEASE) is None  # w1 posts
    assert store.mark_posted(request_id, "w1", 1) and not store.mark_posted(request_id, "w2", 2)
    _lapse(store, "posting_until")  # w1 died (or Slack was down) after its first post
    assert store.unposted_results() == [request_id]
    assert store.claim_posting(request_id, "w2", LEASE) == 1  # w2 goes on from the second post
    assert store.claim_posting(request_id, "w3", LEASE) is None
    assert not store.renew_posting(request_id, "w1", LEASE) and store.renew_posting(request_id, "w2", LEASE)
    assert store.mark_posted(request_id, "w2", 3, complete=True)
    _lapse(store, "posting_until")
    assert store.unposted_results() == [] and store.claim_posting(request_id, "w3", LEASE) is None
    assert store.job(request_id)["result_posted"]


def test_freeze_stops_claims(store: Store) -> None:
    request = _request(store)
    store.approve(request.id, "UA", cooling_off=timedelta(0))
    assert store.set_frozen(True, "UADMIN") and not store.set_frozen(True, "UADMIN")
    assert store.claim_job("w1", timedelta(seconds=60)) is None
    store.set_frozen(False, "UADMIN")
    assert store.claim_job("w1", timedelta(seconds=60)) is not None


def test_delivery_claimed_once(store: Store) -> None:
    assert store.claim_deliveries(["trigger-1"]) == [True]
    assert store.claim_deliveries(["trigger-1"]) == [False]


def test_sqlite_reads_never_wait_for_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "amlbot.db"
    store = Store.open(f"sqlite:///{path}", AUDIT_KEY)
    request = _request(store)
    # No waiting at all from here on: whatever needs the write lock fails at once.
    event.listen(store.engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=0"))
    store.engine.dispose()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another writer (a job's checkpoint) holds the lock
    try:
        assert store.get(request.id).state is State.PENDING
        assert [r.id for r in store.list_requests()] == [request.id]
        with pytest.raises(OperationalError, match="locked"):
            store.claim_deliveries(["trigger-1"])  # writers still queue behind it
    finally:
        writer.rollback()
        writer.close()
        store.close()


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


def _set(store: Store, request_id: str, sql: str, **values: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(f"UPDATE requests SET {sql} WHERE id = :id"), {"id": request_id, **values})


def test_no_approval_is_recorded_past_the_deadline_even_before_the_sweep(store: Store) -> None:
    request = _request(store, approvals=2)
    store.approve(request.id, "UA", cooling_off=timedelta(0))
    _set(store, request.id, "expires_at = :past", **PAST)
    with pytest.raises(RequestExpired):
        store.approve(request.id, "UB", cooling_off=timedelta(0))
    after = store.get(request.id)
    assert after.state is State.PENDING and after.approvers == ("UA",) and store.count_jobs() == 0
    assert store.due_expiry(now()) == [request.id]


def test_the_deadline_is_in_the_compare_and_set_of_the_move_itself(store: Store) -> None:
    request = _request(store)
    stale = store.get(request.id)  # read while it was in time
    _set(store, request.id, "expires_at = :past", **PAST)
    with store.engine.begin() as conn, pytest.raises(RequestExpired):
        store._move(conn, stale, State.QUEUED, actor="UA", event="request.approved")
    assert store.get(request.id).state is State.PENDING and store.count_jobs() == 0


def test_a_request_approved_after_its_deadline_is_never_claimed_and_is_expired(store: Store) -> None:
    request = _request(store)
    store.approve(request.id, "UA", cooling_off=timedelta(0))
    _set(store, request.id, "expires_at = :past", **PAST)  # as if approved late, by a replica that did not check
    assert store.claim_job("w1", LEASE) is None
    assert store.due_expiry(now()) == [request.id]
    expired = store.transition(request.id, State.EXPIRED, actor="amlbot", event="request.expired", expected=WAITING)
    assert expired.state is State.EXPIRED and store.claim_job("w1", LEASE) is None


def test_reading_and_deciding_a_request_never_reads_its_plan(store: Store) -> None:
    """Only `plan_of` reads the plan: every other read carries its size (plan_items), not its items."""
    items = [{"kind": "blob", "ref": f"ExperimentRun/dcid.r1/{i}.txt", "size": 1, "container": "azureml"} for i in range(500)]
    with plan_reads(store.engine) as read:
        request = store.create_request(
            team_id="T1", channel_id="C1", requester="UREQ", text="delete run r1", action=Action.parse("delete run"),
            workspace="dev", intent={}, plan={"items": items}, plan_hash="sha256:x", approvals_required=2,
            expires_in=timedelta(hours=1),
        )
        assert request.plan_items == 500 and not hasattr(request, "plan")
        store.approve(request.id, "UAPP1", cooling_off=timedelta(0))
        assert [r.plan_items for r in store.list_requests(states=frozenset({State.PENDING}))] == [500]
        store.approve(request.id, "UAPP2", cooling_off=timedelta(0))
        claim = store.claim_job("w1", LEASE)
        assert claim is not None and store.get(request.id).state is State.RUNNING
        assert read == []
        assert store.plan_of(request.id) == {"items": items}
        assert len(read) == 1
    assert store.plan_of("R-NOTHERE") is None

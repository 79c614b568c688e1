"""The request state machine: which states exist and which moves between them are legal."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # quorum reached, cooling off before it is queued
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_SUCCEEDED = "partially_succeeded"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


WAITING = frozenset({State.PENDING, State.APPROVED, State.QUEUED})  # not started: may still expire
FINAL = frozenset(
    {
        State.SUCCEEDED,
        State.FAILED,
        State.PARTIALLY_SUCCEEDED,
        State.REJECTED,
        State.CANCELLED,
        State.EXPIRED,
    }
)

TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.APPROVED, State.QUEUED, State.REJECTED, State.CANCELLED, State.EXPIRED}),
    # Expired from here only when approved after the deadline (see Store.due_expiry).
    State.APPROVED: frozenset({State.QUEUED, State.CANCELLED, State.EXPIRED}),
    State.QUEUED: frozenset({State.RUNNING, State.CANCELLED, State.EXPIRED}),
    State.RUNNING: frozenset({State.SUCCEEDED, State.FAILED, State.PARTIALLY_SUCCEEDED}),
}


class IllegalTransition(Exception):
    def __init__(self, request_id: str, current: State, wanted: State) -> None:
        super().__init__(f"Request {request_id} is {current.value}; it cannot become {wanted.value}.")
        self.request_id = request_id
        self.current = current
        self.wanted = wanted


class RequestExpired(IllegalTransition):
    """Its approval deadline passed: it may only become expired (the sweep may not have run yet)."""

    def __init__(self, request_id: str, wanted: State) -> None:
        super().__init__(request_id, State.EXPIRED, wanted)


def is_legal(current: State, wanted: State) -> bool:
    return wanted in TRANSITIONS.get(current, frozenset())

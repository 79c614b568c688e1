"""The store: every state change is one transaction that also appends its audit entry.

Methods are synchronous (SQLAlchemy Core); async callers run them with `asyncio.to_thread`.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, inspect, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from bot import audit
from bot.audit import AuditEntry, Head, VerifyResult
from bot.lifecycle import FINAL, IllegalTransition, RequestExpired, State, is_legal
from bot.store import schema as t
from bot.store.db import create_store_engine, migrate_engine, sqlite_file, transaction
from commands.intents import Action
from commands.signing import Keyring

log = logging.getLogger(__name__)

BREAK_FLAG = "audit_break"  # flags row: the latest break of the audit chain, and how many there were
_ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
DELIVERY_MEMORY = timedelta(hours=1)  # how long a delivery key is kept to recognise Slack's retries
REQUEST_ID = re.compile(f"R-[{_ID_ALPHABET}]{{8}}")  # what new_request_id makes, and nothing else
# A request's columns but its plan: see RequestRecord.
_RECORD_COLUMNS = tuple(column for column in t.requests.c if column is not t.requests.c.plan)
# Moves that count as an approval: only before the request's deadline.
_APPROVING = frozenset({State.APPROVED, State.QUEUED})


def now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def plan_items(plan: dict[str, Any] | None) -> int | None:
    """What the `plan_items` column holds for this plan (migration 4 counts stored plans the same way)."""
    return None if plan is None else len(plan.get("items", []))


def new_request_id() -> str:
    return "R-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


@dataclass(frozen=True)
class RequestRecord:
    id: str
    team_id: str
    channel_id: str
    requester: str
    text: str
    action: Action
    workspace: str
    intent: dict[str, Any]
    # No `plan`: decoding one of 100 000 items holds the GIL for most of a second, and nearly every
    # read needs only its size. Whoever needs the items reads them with `Store.plan_of`.
    plan_items: int | None  # how many items the plan has; None for a request without one
    plan_hash: str | None
    state: State
    approvals_required: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    reminded: bool
    not_before: datetime | None
    card_ts: str | None
    decided_by: str | None
    decided_at: datetime | None
    result: dict[str, Any] | None
    enterprise_id: str | None = None  # the Enterprise Grid org of `team_id`, when there is one
    approvers: tuple[str, ...] = ()

    @property
    def final(self) -> bool:
        return self.state in FINAL


@dataclass(frozen=True)
class ApprovalResult:
    request: RequestRecord
    added: bool  # False: this user had already approved (a double click)
    count: int
    quorum_reached_now: bool  # True for exactly one click: the one that reached the quorum


@dataclass(frozen=True)
class CancelResult:
    request: RequestRecord
    stopping: bool  # True: the job was running and stops after its current step


class NoDatabase(Exception):
    """The database to read is not there; the message says where it was looked for."""


class LeaseLost(Exception):
    """The job's lease went to another worker (this one was presumed dead): its work here ends."""

    def __init__(self, request_id: str, owner: str, holder: str | None) -> None:
        super().__init__(f"{owner} no longer holds the lease of {request_id} (now {holder or 'nobody'})")


@dataclass(frozen=True)
class Claim:
    request_id: str
    attempts: int  # this one included; a shutdown gives its attempt back
    resumed: bool  # the job had started before: its checkpoint says how far it got


@dataclass(frozen=True)
class AuditHealth:
    head_problem: str | None  # why the next append will start a new segment; None when the head is sound
    breaks: int  # breaks recorded in the log so far
    last_break_seq: int | None


def check_audit_fields(actor: object, channel_id: object) -> None:
    """The hash is taken over these values as given, the row stores them as text: a number (or a
    None actor) would be stored as something other than what was hashed, and fail verification."""
    if not isinstance(actor, str) or not isinstance(channel_id, str | None):
        raise TypeError(f"audit actor and channel_id must be strings, not {type(actor).__name__}/{type(channel_id).__name__}")


class Store:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self.engine = engine
        self.keyring = keyring

    @classmethod
    def open(cls, url: str, keyring: Keyring) -> Store:
        engine = create_store_engine(url)
        migrate_engine(engine)
        return cls(engine, keyring)

    @classmethod
    def open_existing(cls, url: str, keyring: Keyring) -> Store:
        """For reading (`amlbot audit …`): never creates a database file or its tables."""
        file = sqlite_file(url)
        if file is not None and not file.exists():
            raise NoDatabase(f"no amlbot database at {file} (AMLBOT_DATABASE_URL): nothing to read")
        engine = create_store_engine(url)
        with engine.connect() as conn:
            present = inspect(conn).has_table(t.audit_log.name)
        if not present:
            engine.dispose()
            raise NoDatabase(f"{make_url(url).render_as_string(hide_password=True)} holds no amlbot tables: nothing to read")
        return cls(engine, keyring)

    def close(self) -> None:
        self.engine.dispose()

    # ---- audit -------------------------------------------------------------------------------

    def _append_audit(
        self,
        conn: Connection,
        *,
        actor: str,
        event: str,
        outcome: str,
        request_id: str | None = None,
        channel_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> audit.AuditEntry:
        return self._append_audits(
            conn, [{"actor": actor, "event": event, "outcome": outcome, "request_id": request_id, "channel_id": channel_id, "detail": detail}]
        )[0]

    def _append_audits(self, conn: Connection, events: list[dict[str, Any]]) -> list[audit.AuditEntry]:
        """`events` (each: actor, event, outcome, and request_id, channel_id, detail or not) chained in
        order after the head, which is checked once before and signed once after."""
        if not events:
            return []
        for fields in events:
            check_audit_fields(fields["actor"], fields.get("channel_id"))
        # Lock the head row so concurrent appends queue up behind it (PostgreSQL); SQLite's
        # BEGIN IMMEDIATE already serialises writers.
        head, last = self._head_and_last(conn, lock=True)
        # Verify before extending: a head no trusted key signed is never signed over as if intact.
        problem = audit.check_head(head, last, self.keyring)
        if problem:
            log.error("the audit chain was found broken; a new signed segment records it", extra={"reason": problem})
            recorded = self._insert_entry(
                conn, max(head.seq if head else 0, last.seq if last else 0) + 1, audit.GENESIS, actor="amlbot",
                event=audit.BREAK, outcome="recorded", detail=audit.break_detail(problem, head, last),
            )
            self._note_break(conn, recorded, problem)
            previous: audit.AuditEntry | None = recorded
        else:
            previous = last
            signer = audit.head_signer(head, self.keyring) if head else None
            if head and signer is not None and signer != self.keyring.signer().public.id:
                previous = self._insert_entry(
                    conn, head.seq + 1, head.hash, actor="amlbot", event=audit.ROTATED, outcome="recorded",
                    detail=audit.rotation_detail(signer, self.keyring),
                )
        entries = []
        for fields in events:
            previous = self._insert_entry(
                conn, (previous.seq if previous else 0) + 1, previous.hash if previous else audit.GENESIS,
                actor=fields["actor"], event=fields["event"], outcome=fields["outcome"], request_id=fields.get("request_id"),
                channel_id=fields.get("channel_id"), detail=fields.get("detail") or {},
            )
            entries.append(previous)
        entry = entries[-1]
        signature = audit.sign_head(entry.seq, entry.hash, self.keyring.signer())
        values = {"seq": entry.seq, "hash": entry.hash, "signature": signature}
        if head:
            conn.execute(update(t.audit_head).where(t.audit_head.c.id == 1).values(**values))
        else:
            conn.execute(insert(t.audit_head).values(id=1, **values))
        return entries

    @staticmethod
    def _head_and_last(conn: Connection, *, lock: bool = False) -> tuple[audit.Head | None, audit.AuditEntry | None]:
        query = select(t.audit_head).where(t.audit_head.c.id == 1)
        row = conn.execute(query.with_for_update() if lock else query).first()
        last = conn.execute(select(t.audit_log).order_by(t.audit_log.c.seq.desc()).limit(1)).first()
        return (
            audit.Head(row.seq, row.hash, row.signature) if row else None,
            audit.AuditEntry(**last._mapping) if last else None,
        )

    def _insert_entry(
        self, conn: Connection, seq: int, prev_hash: str, *, actor: str, event: str, outcome: str,
        detail: dict[str, Any], request_id: str | None = None, channel_id: str | None = None,
    ) -> audit.AuditEntry:
        fields: dict[str, Any] = {
            "seq": seq, "at": now().isoformat(timespec="microseconds"), "actor": actor, "event": event, "request_id": request_id,
            "channel_id": channel_id, "outcome": outcome, "detail": audit.detail_text(detail), "prev_hash": prev_hash,
        }
        entry = audit.AuditEntry(**fields, hash=audit.entry_hash(**fields))
        conn.execute(insert(t.audit_log).values(**fields, hash=entry.hash))
        return entry

    def _note_break(self, conn: Connection, entry: audit.AuditEntry, reason: str) -> None:
        """The latest break and how many there were, where probes read them without a scan."""
        row = conn.execute(select(t.flags.c.value).where(t.flags.c.name == BREAK_FLAG)).first()
        count = (json.loads(row.value).get("count", 0) if row and row.value else 0) + 1
        values = {"value": json.dumps({"count": count, "seq": entry.seq, "reason": reason}), "set_by": "amlbot", "set_at": now()}
        if row:
            conn.execute(update(t.flags).where(t.flags.c.name == BREAK_FLAG).values(**values))
        else:
            conn.execute(insert(t.flags).values(name=BREAK_FLAG, **values))

    def audit(self, **kwargs: Any) -> audit.AuditEntry:
        """Record an event that changes no request: a refusal, a bad signature, a freeze."""
        with transaction(self.engine) as conn:
            return self._append_audit(conn, **kwargs)

    def audit_all(self, events: list[dict[str, Any]]) -> list[AuditEntry]:
        """`audit` for each of `events` (its keyword arguments), in order, in one transaction: a burst
        of refusals pays one commit and one head signature. Raises for all if any fails: none is kept."""
        with transaction(self.engine) as conn:
            return self._append_audits(conn, events)

    # Below `def audit`, the name `audit` is that method to a type checker: the module's types go by their own names.
    def audit_entries(self, request_id: str | None = None) -> list[AuditEntry]:
        query = select(t.audit_log).order_by(t.audit_log.c.seq)
        if request_id:
            query = query.where(t.audit_log.c.request_id == request_id)
        with self.engine.connect() as conn:
            return [audit.AuditEntry(**row._mapping) for row in conn.execute(query)]

    def audit_head(self) -> Head | None:
        with self.engine.connect() as conn:
            return self._head_and_last(conn)[0]

    def verify_audit(self) -> VerifyResult:
        return audit.verify_chain(self.audit_entries(), self.audit_head(), self.keyring)

    def audit_health(self) -> AuditHealth:
        """What probes say about the chain, cheaply: the head as the next append would find it,
        and the breaks recorded so far."""
        with self.engine.connect() as conn:
            head, last = self._head_and_last(conn)
            noted = conn.execute(select(t.flags.c.value).where(t.flags.c.name == BREAK_FLAG)).scalar()
        recorded = json.loads(noted) if noted else {}
        return AuditHealth(audit.check_head(head, last, self.keyring), recorded.get("count", 0), recorded.get("seq"))

    # ---- deliveries (Slack retries) ----------------------------------------------------------

    def claim_deliveries(self, keys: list[str]) -> list[bool]:
        """For each key, True the first time it is seen (by any replica), False for a retry or a copy;
        all in one transaction: a burst of deliveries pays one commit."""
        firsts = []
        with transaction(self.engine) as conn:
            for key in keys:
                try:
                    with conn.begin_nested():  # a seen key undoes its own insert alone
                        conn.execute(insert(t.deliveries).values(key=key, at=now()))
                    firsts.append(True)
                except IntegrityError:
                    firsts.append(False)
            # Slack stops retrying within minutes: older keys are forgotten, so the table stays small.
            conn.execute(delete(t.deliveries).where(t.deliveries.c.at < now() - DELIVERY_MEMORY))
        return firsts

    # ---- requests ----------------------------------------------------------------------------

    def _load(self, conn: Connection, request_id: str, *, lock: bool = False) -> RequestRecord | None:
        query = select(*_RECORD_COLUMNS).where(t.requests.c.id == request_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            return None
        approvers = tuple(
            conn.execute(
                select(t.approvals.c.user_id).where(t.approvals.c.request_id == request_id).order_by(t.approvals.c.at)
            ).scalars()
        )
        data = dict(row._mapping)
        for key in ("created_at", "updated_at", "expires_at", "not_before", "decided_at"):
            data[key] = _aware(data[key])
        data["state"] = State(data["state"])
        data["action"] = Action.parse(data["action"])
        return RequestRecord(**data, approvers=approvers)

    def get(self, request_id: str) -> RequestRecord | None:
        with self.engine.connect() as conn:
            return self._load(conn, request_id)

    def plan_of(self, request_id: str) -> dict[str, Any] | None:
        """The request's plan, items and all: for those that need the items (running the job, the
        plan file, the card's summary), never for an ordinary read."""
        with self.engine.connect() as conn:
            plan: dict[str, Any] | None = conn.execute(select(t.requests.c.plan).where(t.requests.c.id == request_id)).scalar()
        return plan

    def create_request(
        self,
        *,
        team_id: str,
        channel_id: str,
        requester: str,
        text: str,
        action: Action,
        workspace: str,
        intent: dict[str, Any],
        plan: dict[str, Any] | None,
        plan_hash: str | None,
        approvals_required: int,
        expires_in: timedelta,
        enterprise_id: str | None = None,
    ) -> RequestRecord:
        created = now()
        with transaction(self.engine) as conn:
            request_id = new_request_id()
            conn.execute(
                insert(t.requests).values(
                    id=request_id,
                    team_id=team_id,
                    enterprise_id=enterprise_id,
                    channel_id=channel_id,
                    requester=requester,
                    text=text,
                    action=str(action),
                    workspace=workspace,
                    intent=intent,
                    plan=plan,
                    plan_items=plan_items(plan),
                    plan_hash=plan_hash,
                    state=State.PENDING.value,
                    approvals_required=approvals_required,
                    created_at=created,
                    updated_at=created,
                    expires_at=created + expires_in,
                    reminded=False,
                )
            )
            self._append_audit(
                conn,
                actor=requester,
                event="request.created",
                outcome=State.PENDING.value,
                request_id=request_id,
                channel_id=channel_id,
                detail={"action": str(action), "workspace": workspace, "text": text, "plan_hash": plan_hash},
            )
            record = self._load(conn, request_id)
        assert record is not None
        return record

    def set_card(self, request_id: str, card_ts: str) -> None:
        with transaction(self.engine) as conn:
            conn.execute(update(t.requests).where(t.requests.c.id == request_id).values(card_ts=card_ts))

    def _move(
        self,
        conn: Connection,
        record: RequestRecord,
        to: State,
        *,
        actor: str,
        event: str,
        detail: dict[str, Any] | None = None,
        **fields: Any,
    ) -> RequestRecord:
        if not is_legal(record.state, to):
            raise IllegalTransition(record.id, record.state, to)
        at = now()
        unchanged = [t.requests.c.id == record.id, t.requests.c.state == record.state.value]
        approving = record.state is State.PENDING and to in _APPROVING
        if approving:  # the deadline is part of the compare-and-set, whether or not the sweep has run
            unchanged.append(t.requests.c.expires_at > at)
        changed = conn.execute(
            update(t.requests).where(and_(*unchanged)).values(state=to.value, updated_at=at, **fields)
        ).rowcount
        if changed != 1:  # someone else moved it first, or its deadline passed
            current = self._load(conn, record.id)
            if approving and current is not None and current.state is State.PENDING:
                raise RequestExpired(record.id, to)
            raise IllegalTransition(record.id, current.state if current else record.state, to)
        self._append_audit(
            conn,
            actor=actor,
            event=event,
            outcome=to.value,
            request_id=record.id,
            channel_id=record.channel_id,
            detail=detail,
        )
        if to is State.QUEUED:
            conn.execute(insert(t.jobs).values(request_id=record.id, attempts=0, cancel_requested=False))
        moved = self._load(conn, record.id)
        assert moved is not None
        return moved

    def transition(
        self,
        request_id: str,
        to: State,
        *,
        actor: str,
        event: str,
        expected: frozenset[State] | None = None,
        detail: dict[str, Any] | None = None,
        **fields: Any,
    ) -> RequestRecord:
        """Compare-and-set: moves the request only from a legal (and, if given, expected) state."""
        with transaction(self.engine) as conn:
            record = self._load(conn, request_id, lock=True)
            if record is None:
                raise KeyError(request_id)
            if expected is not None and record.state not in expected:
                raise IllegalTransition(request_id, record.state, to)
            return self._move(conn, record, to, actor=actor, event=event, detail=detail, **fields)

    def approve(self, request_id: str, user_id: str, *, cooling_off: timedelta) -> ApprovalResult:
        """Record one approval; the click that reaches the quorum, and only it, moves the request on."""
        with transaction(self.engine) as conn:
            record = self._load(conn, request_id, lock=True)
            if record is None:
                raise KeyError(request_id)
            if record.state is not State.PENDING:
                raise IllegalTransition(request_id, record.state, State.APPROVED)
            if record.expires_at <= now():  # not even a first approval is recorded past the deadline
                raise RequestExpired(request_id, State.APPROVED)
            added = user_id not in record.approvers
            if added:
                conn.execute(insert(t.approvals).values(request_id=request_id, user_id=user_id, at=now()))
                self._append_audit(
                    conn,
                    actor=user_id,
                    event="request.approval",
                    outcome="recorded",
                    request_id=request_id,
                    channel_id=record.channel_id,
                )
            count = len(record.approvers) + (1 if added else 0)
            reached = added and count >= record.approvals_required
            if reached:
                decided: dict[str, Any] = {"decided_by": user_id, "decided_at": now()}
                if cooling_off > timedelta(0):
                    record = self._move(
                        conn, record, State.APPROVED, actor=user_id, event="request.approved",
                        not_before=now() + cooling_off, **decided,
                    )
                else:
                    record = self._move(conn, record, State.QUEUED, actor=user_id, event="request.approved", **decided)
            else:
                record = self._load(conn, request_id) or record
            return ApprovalResult(record, added, count, reached)

    def list_requests(
        self,
        *,
        requester: str | None = None,
        states: frozenset[State] | None = None,
        team: str | None = None,
        enterprise: str | None = None,
        limit: int | None = 20,
    ) -> list[RequestRecord]:
        query = select(t.requests.c.id).order_by(t.requests.c.created_at.desc()).limit(limit)
        if requester:
            query = query.where(t.requests.c.requester == requester)
        if team:
            query = query.where(t.requests.c.team_id == team)
        if enterprise:
            query = query.where(t.requests.c.enterprise_id == enterprise)
        if states:
            query = query.where(t.requests.c.state.in_([s.value for s in states]))
        with self.engine.connect() as conn:
            ids = list(conn.execute(query).scalars())
            return [r for r in (self._load(conn, i) for i in ids) if r is not None]

    def due(self, state: State, column: str, at: datetime) -> list[str]:
        """Ids of requests in `state` whose time in `column` has passed (expiry, cooling-off)."""
        col = t.requests.c[column]
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(t.requests.c.id).where(and_(t.requests.c.state == state.value, col <= at))).scalars()
            )

    def due_expiry(self, at: datetime) -> list[str]:
        """Ids of requests to expire: pending past their deadline, and any approved only after it
        (by a replica that did not check the deadline): those are never started."""
        requests = t.requests.c
        late = and_(requests.state.in_([State.APPROVED.value, State.QUEUED.value]), requests.decided_at > requests.expires_at)
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(requests.id).where(or_(and_(requests.state == State.PENDING.value, requests.expires_at <= at), late))
                ).scalars()
            )

    def due_reminders(self, expiring_by: datetime) -> list[str]:
        """Ids of pending requests that expire by then and have not been reminded of yet."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(t.requests.c.id).where(
                        t.requests.c.state == State.PENDING.value,
                        t.requests.c.expires_at <= expiring_by,
                        t.requests.c.reminded.is_(False),
                    )
                ).scalars()
            )

    def mark_reminded(self, request_id: str) -> bool:
        with transaction(self.engine) as conn:
            return (
                conn.execute(
                    update(t.requests)
                    .where(and_(t.requests.c.id == request_id, t.requests.c.reminded.is_(False)))
                    .values(reminded=True)
                ).rowcount
                == 1
            )

    # ---- flags -------------------------------------------------------------------------------

    def set_frozen(self, frozen: bool, actor: str) -> bool:
        """Returns False when the flag was already in that position."""
        with transaction(self.engine) as conn:
            row = conn.execute(select(t.flags).where(t.flags.c.name == "freeze").with_for_update()).first()
            current = bool(row and row.value == "on")
            if current == frozen:
                return False
            values = {"value": "on" if frozen else "off", "set_by": actor, "set_at": now()}
            if row:
                conn.execute(update(t.flags).where(t.flags.c.name == "freeze").values(**values))
            else:
                conn.execute(insert(t.flags).values(name="freeze", **values))
            self._append_audit(conn, actor=actor, event="freeze" if frozen else "unfreeze", outcome="ok")
            return True

    def frozen(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(t.flags.c.value).where(t.flags.c.name == "freeze")).scalar() == "on"

    # ---- jobs --------------------------------------------------------------------------------

    def claim_job(self, owner: str, lease: timedelta) -> Claim | None:
        """Atomically take one runnable job: queued, or running with a lapsed lease (a dead worker)."""
        at = now()
        runnable = (
            select(t.jobs.c.request_id)
            .join(t.requests, t.requests.c.id == t.jobs.c.request_id)
            .where(
                t.requests.c.state.in_([State.QUEUED.value, State.RUNNING.value]),
                or_(t.jobs.c.lease_until.is_(None), t.jobs.c.lease_until < at),
                # Never start what was approved after its deadline (see due_expiry).
                or_(t.requests.c.state == State.RUNNING.value, t.requests.c.decided_at <= t.requests.c.expires_at),
            )
            .order_by(t.requests.c.updated_at)
            .limit(1)
        )
        with transaction(self.engine) as conn:
            if conn.execute(select(t.flags.c.value).where(t.flags.c.name == "freeze")).scalar() == "on":
                return None
            if self.engine.dialect.name == "postgresql":
                runnable = runnable.with_for_update(skip_locked=True, of=t.jobs)
            request_id = conn.execute(runnable).scalar()
            if request_id is None:
                return None
            attempts = conn.execute(
                update(t.jobs)
                .where(t.jobs.c.request_id == request_id)
                .values(
                    lease_owner=owner, lease_until=at + lease, attempts=t.jobs.c.attempts + 1,
                    started_at=func.coalesce(t.jobs.c.started_at, at),
                )
                .returning(t.jobs.c.attempts)
            ).scalar_one()
            record = self._load(conn, request_id)
            assert record is not None
            resumed = record.state is State.RUNNING
            if resumed:
                self._append_audit(
                    conn, actor=owner, event="job.resumed", outcome="running",
                    request_id=request_id, channel_id=record.channel_id, detail={"attempt": attempts},
                )
            else:
                self._move(conn, record, State.RUNNING, actor=owner, event="job.started")
            return Claim(request_id, attempts, resumed)

    def _extend(self, request_id: str, owner_column: str, until_column: str, owner: str, lease: timedelta) -> bool:
        with transaction(self.engine) as conn:
            return (
                conn.execute(
                    update(t.jobs)
                    .where(t.jobs.c.request_id == request_id, t.jobs.c[owner_column] == owner)
                    .values({until_column: now() + lease})
                ).rowcount
                == 1
            )

    def renew_lease(self, request_id: str, owner: str, lease: timedelta) -> bool:
        """False when the lease was lost (another worker took the job): stop working on it."""
        return self._extend(request_id, "lease_owner", "lease_until", owner, lease)

    def release_lease(self, request_id: str, owner: str) -> bool:
        """Hand a job back between steps (a shutdown): any worker resumes it at once. The attempt
        is given back too, so redeploys never count towards giving up on a job."""
        with transaction(self.engine) as conn:
            released = conn.execute(
                update(t.jobs)
                .where(t.jobs.c.request_id == request_id, t.jobs.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None, attempts=t.jobs.c.attempts - 1)
            ).rowcount == 1
            if released:
                record = self._load(conn, request_id)
                self._append_audit(
                    conn, actor=owner, event="job.interrupted", outcome="released", request_id=request_id,
                    channel_id=record.channel_id if record else None,
                )
            return released

    def cancel(self, request_id: str, actor: str) -> CancelResult:
        """Cancel a waiting request, or ask its running job to stop after the current step; one
        transaction either way, so a job that starts meanwhile is never missed."""
        with transaction(self.engine) as conn:
            record = self._load(conn, request_id, lock=True)
            if record is None:
                raise KeyError(request_id)
            if record.state is not State.RUNNING:
                moved = self._move(
                    conn, record, State.CANCELLED, actor=actor, event="request.cancelled",
                    decided_by=actor, decided_at=now(),
                )
                return CancelResult(moved, stopping=False)
            conn.execute(update(t.jobs).where(t.jobs.c.request_id == request_id).values(cancel_requested=True))
            self._append_audit(
                conn, actor=actor, event="cancel.requested", outcome="stopping",
                request_id=request_id, channel_id=record.channel_id,
            )
            return CancelResult(record, stopping=True)

    def cancel_requested(self, request_id: str) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(select(t.jobs.c.cancel_requested).where(t.jobs.c.request_id == request_id)).scalar())

    def record_items(self, request_id: str, outcomes: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Checkpoint item outcomes (key, outcome, detail); a resumed job skips what is recorded."""
        if not outcomes:
            return
        with transaction(self.engine) as conn:
            done = set(
                conn.execute(
                    select(t.job_items.c.item_key).where(
                        t.job_items.c.request_id == request_id,
                        t.job_items.c.item_key.in_([key for key, _, _ in outcomes]),
                    )
                ).scalars()
            )
            rows = [
                {"request_id": request_id, "item_key": key, "outcome": outcome, "detail": detail}
                for key, outcome, detail in outcomes
                if key not in done
            ]
            if rows:
                conn.execute(insert(t.job_items), rows)

    def item_outcomes(self, request_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
        with self.engine.connect() as conn:
            return {
                row.item_key: (row.outcome, row.detail or {})
                for row in conn.execute(select(t.job_items).where(t.job_items.c.request_id == request_id))
            }

    def set_progress(
        self, request_id: str, progress: dict[str, Any] | None = None, progress_ts: str | None = None
    ) -> None:
        """The job's latest progress figures, and the ts of its progress message once posted."""
        values = {key: value for key, value in (("progress", progress), ("progress_ts", progress_ts)) if value}
        with transaction(self.engine) as conn:
            conn.execute(update(t.jobs).where(t.jobs.c.request_id == request_id).values(**values))

    def job(self, request_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.jobs).where(t.jobs.c.request_id == request_id)).first()
        if row is None:
            return None
        return {key: _aware(value) if isinstance(value, datetime) else value for key, value in row._mapping.items()}

    def count_jobs(self, request_id: str | None = None) -> int:
        query = select(func.count()).select_from(t.jobs)
        if request_id:
            query = query.where(t.jobs.c.request_id == request_id)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def finish(
        self,
        request_id: str,
        owner: str,
        to: State,
        *,
        result: dict[str, Any],
        receipt: str | None,
        posting_lease: timedelta,
    ) -> RequestRecord:
        """End a job: its final state, result and receipt are written together, once, by the
        worker holding its lease, which also takes the claim to post the result."""
        with transaction(self.engine) as conn:
            record = self._load(conn, request_id, lock=True)
            if record is None:
                raise KeyError(request_id)
            holder = conn.execute(select(t.jobs.c.lease_owner).where(t.jobs.c.request_id == request_id)).scalar()
            if holder != owner:
                raise LeaseLost(request_id, owner, holder)
            if receipt is not None:
                conn.execute(insert(t.receipts).values(request_id=request_id, document=receipt, posted=False))
            # The receipt's hash goes into the chain: the two vouch for each other.
            detail = {"summary": result.get("summary", {}), "receipt_sha256": result.get("receipt_sha256")}
            moved = self._move(conn, record, to, actor=owner, event="job.finished", result=result, detail=detail)
            at = now()
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.request_id == request_id)
                .values(lease_owner=None, lease_until=None, finished_at=at, posting_owner=owner, posting_until=at + posting_lease)
            )
            return moved

    # ---- posting results ---------------------------------------------------------------------

    def _unposted(self, at: datetime) -> Any:
        """Finished jobs whose result is not all in Slack yet, and whose posting claim is free."""
        return and_(
            t.jobs.c.finished_at.is_not(None),
            t.jobs.c.result_posted.is_(False),
            or_(t.jobs.c.posting_until.is_(None), t.jobs.c.posting_until < at),
        )

    def unposted_results(self, limit: int = 20) -> list[str]:
        with self.engine.connect() as conn:
            query = select(t.jobs.c.request_id).where(self._unposted(now())).order_by(t.jobs.c.finished_at).limit(limit)
            return list(conn.execute(query).scalars())

    def claim_posting(self, request_id: str, owner: str, lease: timedelta) -> int | None:
        """Compare-and-set: the one caller that gets to post the result gets how many of its posts
        are already in Slack; everyone else gets None."""
        at = now()
        with transaction(self.engine) as conn:
            return conn.execute(
                update(t.jobs)
                .where(t.jobs.c.request_id == request_id, self._unposted(at))
                .values(posting_owner=owner, posting_until=at + lease)
                .returning(t.jobs.c.posted_steps)
            ).scalar()

    def renew_posting(self, request_id: str, owner: str, lease: timedelta) -> bool:
        return self._extend(request_id, "posting_owner", "posting_until", owner, lease)

    def mark_posted(self, request_id: str, owner: str, steps: int, *, complete: bool = False) -> bool:
        """Count the result's posts Slack has confirmed; `complete` when none is left. False when
        the claim was lost: stop posting."""
        values: dict[str, Any] = {"posted_steps": steps}
        if complete:
            values.update(result_posted=True, posting_owner=None, posting_until=None)
        with transaction(self.engine) as conn:
            return (
                conn.execute(
                    update(t.jobs).where(t.jobs.c.request_id == request_id, t.jobs.c.posting_owner == owner).values(**values)
                ).rowcount
                == 1
            )

    def revoke_export(self, request_id: str, actor: str, detail: dict[str, Any]) -> RequestRecord:
        """Record that an export's archive was deleted, so its link is dead; every revoke is audited."""
        with transaction(self.engine) as conn:
            record = self._load(conn, request_id, lock=True)
            if record is None:
                raise KeyError(request_id)
            result = dict(record.result or {})
            result.setdefault("revoked", {"by": actor, "at": now().isoformat(timespec="seconds")})
            conn.execute(update(t.requests).where(t.requests.c.id == request_id).values(result=result))
            self._append_audit(
                conn, actor=actor, event="export.revoked", outcome=str(detail.get("outcome", "deleted")),
                request_id=request_id, channel_id=record.channel_id, detail=detail,
            )
            revoked = self._load(conn, request_id)
        assert revoked is not None
        return revoked

    # ---- receipts ----------------------------------------------------------------------------

    def receipt(self, request_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.receipts.c.document).where(t.receipts.c.request_id == request_id)).scalar()

"""The audit chain: each entry carries the SHA-256 of the one before; the head is signed (HMAC-SHA256).

Pure functions: the store appends entries and hands them back for verification.
Altering an entry breaks its own hash; removing or reordering breaks the next entry's link or the
sequence; truncating the tail breaks the signed head.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from commands.plan import canonical_json

GENESIS = "sha256:" + "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    event: str
    request_id: str | None
    channel_id: str | None
    outcome: str
    detail: str  # canonical JSON text
    prev_hash: str
    hash: str


def entry_hash(
    *,
    seq: int,
    at: str,
    actor: str,
    event: str,
    request_id: str | None,
    channel_id: str | None,
    outcome: str,
    detail: str,
    prev_hash: str,
) -> str:
    body = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "event": event,
        "request_id": request_id,
        "channel_id": channel_id,
        "outcome": outcome,
        "detail": detail,
        "prev_hash": prev_hash,
    }
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def detail_text(detail: dict[str, Any]) -> str:
    return canonical_json(detail).decode()


def sign(value: str, key: bytes) -> str:
    return "hmac-sha256:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def signature_ok(value: str, signature: str, key: bytes) -> bool:
    return hmac.compare_digest(sign(value, key), signature)


def head_message(seq: int, head_hash: str) -> str:
    return f"{seq}:{head_hash}"


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(
    entries: Iterable[AuditEntry], head: tuple[int, str, str] | None, key: bytes
) -> VerifyResult:
    """Check every link and the signed head. `head` is (seq, hash, signature) or None if empty."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    for entry in entries:
        count += 1
        if entry.seq != expected_seq:
            return VerifyResult(False, count, expected_seq, f"entry {expected_seq} is missing or out of order (found {entry.seq})")
        if entry.prev_hash != prev:
            return VerifyResult(False, count, entry.seq, f"entry {entry.seq} does not link to entry {entry.seq - 1}: an entry before it was removed, reordered or altered")
        recomputed = entry_hash(
            seq=entry.seq,
            at=entry.at,
            actor=entry.actor,
            event=entry.event,
            request_id=entry.request_id,
            channel_id=entry.channel_id,
            outcome=entry.outcome,
            detail=entry.detail,
            prev_hash=entry.prev_hash,
        )
        if recomputed != entry.hash:
            return VerifyResult(False, count, entry.seq, f"entry {entry.seq} was altered: its content does not match its hash")
        prev = entry.hash
        expected_seq += 1
    if head is None:
        if count:
            return VerifyResult(False, count, 1, "the signed head is missing")
        return VerifyResult(True, 0)
    head_seq, head_hash, signature = head
    if not signature_ok(head_message(head_seq, head_hash), signature, key):
        return VerifyResult(False, count, head_seq, "the head signature does not match: the head was altered or the key is wrong")
    if head_seq != count or head_hash != prev:
        return VerifyResult(False, count, min(head_seq, count) + 1, f"the signed head names entry {head_seq} but the log ends at entry {count}: entries were removed or added at the end")
    return VerifyResult(True, count)

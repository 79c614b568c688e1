"""The audit chain: each entry carries the SHA-256 of the one before; the head is signed (Ed25519).

Pure functions: the store appends entries and hands them back for verification.
Altering an entry breaks its own hash; removing or reordering breaks the next entry's link or the
sequence; truncating the tail breaks the signed head. Before each append the store checks the head
(`check_head`): a head no trusted key signed is never extended as if nothing happened. An
`audit.chain_broken` entry starts a new segment (it links to nothing) and records the head and last
entry it found, which freezes the segment before it: `verify_chain` reports every such break.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from commands.plan import canonical_json
from commands.signing import Keyring, PublicKey, SigningKey

GENESIS = "sha256:" + "0" * 64
BREAK = "audit.chain_broken"
ROTATED = "audit.key_rotated"
LEGACY_SIGNER = "hmac-sha256"


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


class Head(NamedTuple):
    seq: int
    hash: str
    signature: str


def head_message(seq: int, head_hash: str) -> bytes:
    return f"{seq}:{head_hash}".encode()


def sign_head(seq: int, head_hash: str, key: SigningKey) -> str:
    signature = base64.b64encode(key.sign(head_message(seq, head_hash))).decode()
    return f"ed25519:{key.public.id}:{signature}"


def head_signer(head: Head, keyring: Keyring) -> str | None:
    """The id of the trusted key that signed the head (`hmac-sha256` for a head of earlier
    versions, checked with their secret), or None when no trusted key did."""
    message = head_message(head.seq, head.hash)
    if head.signature.startswith(LEGACY_SIGNER + ":"):
        return LEGACY_SIGNER if keyring.check_legacy(message, head.signature)[0] else None
    scheme, _, rest = head.signature.partition(":")
    key_id, _, signature = rest.partition(":")
    key = keyring.trusted.get(key_id)
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return None
    return key_id if scheme == "ed25519" and key is not None and key.verify(message, raw) else None


def _recomputed(entry: AuditEntry) -> str:
    return entry_hash(
        seq=entry.seq, at=entry.at, actor=entry.actor, event=entry.event, request_id=entry.request_id,
        channel_id=entry.channel_id, outcome=entry.outcome, detail=entry.detail, prev_hash=entry.prev_hash,
    )


def check_head(head: Head | None, last: AuditEntry | None, keyring: Keyring) -> str | None:
    """Why the chain may not be extended as it stands (None when it may): the head must be signed
    by a trusted key and name the last entry, unaltered. Cheap: two rows, one signature."""
    if head is None:
        return None if last is None else f"the log ends at entry {last.seq} but has no signed head"
    if head_signer(head, keyring) is None:
        return f"the head (entry {head.seq}) is not signed by a trusted key: it was rewritten, or this is not the key that signed it"
    if last is None:
        return f"the signed head names entry {head.seq} but the log is empty"
    if (last.seq, last.hash) != (head.seq, head.hash):
        return f"the log ends at entry {last.seq}, not at entry {head.seq} that the signed head names"
    if _recomputed(last) != last.hash:
        return f"entry {last.seq} was altered: its content does not match its hash"
    return None


def break_detail(problem: str, head: Head | None, last: AuditEntry | None) -> dict[str, Any]:
    """What a new segment records of the chain it could not extend: it freezes that segment."""
    return {
        "reason": problem,
        "head": head._asdict() if head else None,
        "last": {"seq": last.seq, "hash": last.hash} if last else None,
    }


def rotation_detail(signer: str, keyring: Keyring) -> dict[str, Any]:
    """The head was signed by an earlier trusted key: the chain records both public keys."""
    current = keyring.signer().public
    earlier: PublicKey | None = keyring.trusted.get(signer)
    return {
        "from_key_id": signer,
        "from_public_key": earlier.text if earlier else None,
        "to_key_id": current.id,
        "to_public_key": current.text,
    }


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str = ""
    breaks: tuple[int, ...] = ()  # entries that record a break: the segment before each is unvouched
    signer: str | None = None  # the key id that signed the head


def _frozen(entry: AuditEntry, last_seq: int | None, last_hash: str | None) -> bool:
    """A break entry agrees with the segment before it as that segment stands now."""
    found = json.loads(entry.detail).get("last")
    if found is None:
        return last_seq is None
    return (found.get("seq"), found.get("hash")) == (last_seq, last_hash)


def verify_chain(entries: Iterable[AuditEntry], head: Head | None, keyring: Keyring) -> VerifyResult:
    """Check every link, every recorded break and the signed head."""
    prev, last_seq, count, breaks = GENESIS, None, 0, []
    for entry in entries:
        count += 1
        expected_seq = (last_seq or 0) + 1
        if entry.event == BREAK and entry.prev_hash == GENESIS:
            if not _frozen(entry, last_seq, None if last_seq is None else prev) or entry.seq < expected_seq:
                return VerifyResult(False, count, entry.seq, f"the entries before entry {entry.seq} were changed after it recorded a break")
            breaks.append(entry.seq)
        elif entry.seq != expected_seq:
            return VerifyResult(False, count, expected_seq, f"entry {expected_seq} is missing or out of order (found {entry.seq})")
        elif entry.prev_hash != prev:
            why = f"entry {entry.seq} does not link to entry {entry.seq - 1}: an entry before it was removed, reordered or altered"
            return VerifyResult(False, count, entry.seq, why)
        if _recomputed(entry) != entry.hash:
            return VerifyResult(False, count, entry.seq, f"entry {entry.seq} was altered: its content does not match its hash")
        prev, last_seq = entry.hash, entry.seq
    if head is None:
        if count:
            return VerifyResult(False, count, 1, "the signed head is missing")
        return VerifyResult(True, 0)
    signer = head_signer(head, keyring)
    if signer is None:
        return VerifyResult(False, count, head.seq, "the head signature does not match: the head was altered or the key is wrong")
    if head.seq != last_seq or head.hash != prev:
        why = f"the signed head names entry {head.seq} but the log ends at entry {last_seq or 0}: entries were removed or added at the end"
        return VerifyResult(False, count, min(head.seq, last_seq or 0) + 1, why)
    if breaks:
        return VerifyResult(
            False, count, breaks[0],
            f"entry {breaks[0]} records that the chain was found broken and a new signed segment began: "
            "what came before it is not vouched for (`amlbot audit show` the entry for the reason)",
            tuple(breaks), signer,
        )
    return VerifyResult(True, count, signer=signer)

"""Deletion receipts: what was asked, who approved it, and each item's outcome, signed (Ed25519).

The signature block names its algorithm, key id and public key, and signs the canonical JSON of
everything else in the receipt. It verifies offline with the public key alone (`amlbot audit
verify-receipt --public-key KEY FILE`), and the receipt's hash is written into the audit chain when
the job finishes, binding the two. Receipts of earlier versions carry an HMAC signature instead,
which only the secret that made it can check.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from commands.azure.door import ItemResult, Status
from commands.plan import Plan, canonical_json
from commands.signing import Keyring, SigningKey

SCHEMA = "amlbot.receipt/v1"


@dataclass(frozen=True)
class ReceiptContext:
    request_id: str
    requester: str
    approvers: tuple[str, ...]
    started_at: str
    finished_at: str
    state: str


def outcome_counts(results: dict[str, ItemResult]) -> dict[str, int]:
    return dict(Counter(result.status.value for result in results.values()))


def build(ctx: ReceiptContext, plan: Plan, results: dict[str, ItemResult], appeared: list[str]) -> dict[str, Any]:
    not_attempted = ItemResult(Status.FAILED, "not attempted: the job stopped before it")
    outcomes = {item.key: results.get(item.key, not_attempted) for item in plan.items}
    items = []
    for item in plan.items:
        result = outcomes[item.key]
        items.append(
            {
                "kind": item.kind.value,
                "container": item.container,
                "ref": item.ref,
                "size": item.size,
                "status": result.status.value,
                "reason": result.reason,
                "azure_request_id": result.azure_request_id,
            }
        )
    return {
        "schema": SCHEMA,
        "request_id": ctx.request_id,
        "action": str(plan.action),
        "workspace": plan.workspace,
        "target": plan.target,
        "requester": ctx.requester,
        "approvers": list(ctx.approvers),
        "plan_hash": plan.hash,
        "state": ctx.state,
        "started_at": ctx.started_at,
        "finished_at": ctx.finished_at,
        "totals": outcome_counts(outcomes),  # by item key: two containers may hold the same name
        "items": items,
        "appeared_and_left_alone": appeared,
        "warnings": list(plan.warnings),
    }


def seal(document: dict[str, Any], key: SigningKey) -> str:
    """The receipt as JSON text, with its signature block over the canonical form of the rest."""
    return json.dumps(document | {"signature": key.signature(canonical_json(document))}, indent=2, sort_keys=True)


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def verify(text: str, keyring: Keyring) -> tuple[bool, str]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return False, f"not JSON: {error}"
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        return False, f"not an amlbot receipt (schema {SCHEMA} expected)"
    signature = document.pop("signature", None)
    if signature is None:
        return False, "the receipt has no signature"
    message = canonical_json(document)
    if isinstance(signature, str):
        ok, why = keyring.check_legacy(message, signature)
    else:
        ok, why = keyring.check_block(message, signature)
    if not ok:
        return False, why
    return True, f"receipt for {document.get('request_id')} is intact ({len(document.get('items') or [])} items), signed by {why}"

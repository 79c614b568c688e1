"""Deletion receipts: what was asked, who approved it, and each item's outcome, sealed with HMAC.

A receipt verifies offline with the audit key (`amlbot audit verify-receipt FILE`), and its hash
is written into the audit chain when the job finishes, binding the two.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from commands.azure.door import ItemResult, Status
from commands.plan import Plan, canonical_json

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
    items = []
    for item in plan.items:
        result = results.get(item.key, ItemResult(Status.FAILED, "not attempted: the job stopped before it"))
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
        "action": plan.action,
        "workspace": plan.workspace,
        "target": plan.target,
        "requester": ctx.requester,
        "approvers": list(ctx.approvers),
        "plan_hash": plan.hash,
        "state": ctx.state,
        "started_at": ctx.started_at,
        "finished_at": ctx.finished_at,
        "totals": outcome_counts({i["ref"]: ItemResult(Status(i["status"])) for i in items}),
        "items": items,
        "appeared_and_left_alone": appeared,
        "warnings": list(plan.warnings),
    }


def _mac(body: dict[str, Any], key: bytes) -> str:
    return "hmac-sha256:" + hmac.new(key, canonical_json(body), hashlib.sha256).hexdigest()


def seal(document: dict[str, Any], key: bytes) -> str:
    """The receipt as JSON text, with its signature over the canonical form of the rest."""
    return json.dumps(document | {"signature": _mac(document, key)}, indent=2, sort_keys=True)


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def verify(text: str, key: bytes) -> tuple[bool, str]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return False, f"not JSON: {error}"
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        return False, f"not an amlbot receipt (schema {SCHEMA} expected)"
    signature = document.pop("signature", None)
    if not isinstance(signature, str):
        return False, "the receipt has no signature"
    if not hmac.compare_digest(_mac(document, key), signature):
        return False, "the signature does not match: the receipt was altered or the key is wrong"
    return True, f"receipt for {document['request_id']} is intact ({len(document['items'])} items)"

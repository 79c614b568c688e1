"""Block Kit rendering: pure functions of a request's state. Nothing here talks to Slack."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.lifecycle import State
from bot.store.store import RequestRecord
from commands.plan import Plan

APPROVE = "amlbot.approve"
REJECT = "amlbot.reject"
CANCEL = "amlbot.cancel"
ACTION_IDS = (APPROVE, REJECT, CANCEL)

MAX_LISTED_ITEMS = 15  # the card lists this many items; the rest are counted
SECTION_LIMIT = 3000

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack's three control characters, so user text never becomes a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{moment.isoformat(timespec='minutes')}>"


def _section(text: str) -> Block:
    if len(text) > SECTION_LIMIT:
        text = text[: SECTION_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(*texts: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts[:10]]}


def plan_summary(plan: Plan) -> str:
    lines = [f"*{len(plan.items)} item(s)*, {human_bytes(plan.total_bytes)}"]
    for item in plan.items[:MAX_LISTED_ITEMS]:
        where = f"{item.container}/" if item.container else ""
        size = f" ({human_bytes(item.size)})" if item.size is not None else ""
        lines.append(f"• `{escape(where + item.ref)}`{size}")
    hidden = len(plan.items) - MAX_LISTED_ITEMS
    if hidden > 0:
        lines.append(f"…and {hidden} more (the full list is in the thread as a file)")
    return "\n".join(lines)


_STATE_LINE = {
    State.PENDING: ":hourglass_flowing_sand: Waiting for approval",
    State.APPROVED: ":timer_clock: Approved — cooling off before it runs",
    State.QUEUED: ":inbox_tray: Approved — queued",
    State.RUNNING: ":gear: Running",
    State.SUCCEEDED: ":white_check_mark: Done",
    State.PARTIALLY_SUCCEEDED: ":warning: Partly done — see the receipt",
    State.FAILED: ":x: Failed",
    State.REJECTED: ":no_entry: Rejected",
    State.CANCELLED: ":heavy_multiplication_x: Cancelled",
    State.EXPIRED: ":zzz: Expired — nothing was run",
}


def request_card(
    request: RequestRecord,
    *,
    approvers: frozenset[str] = frozenset(),
    frozen: bool = False,
) -> list[Block]:
    """The card in the channel: who asked for what, what it touches, and what happened so far."""
    plan = Plan.from_dict(request.plan) if request.plan else None
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{request.action} · {request.id}"[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Requested by*\n<@{request.requester}>"},
                {"type": "mrkdwn", "text": f"*Workspace*\n`{escape(request.workspace)}`"},
                {"type": "mrkdwn", "text": f"*Command*\n`/aml {escape(request.text)}`"},
                {"type": "mrkdwn", "text": f"*Approvals*\n{len(request.approvers)} of {request.approvals_required}"},
            ],
        },
    ]
    if plan:
        blocks.append(_section(plan_summary(plan)))
        for warning in plan.warnings:
            blocks.append(_context(f":warning: {escape(warning)}"))
        blocks.append(_context(f"Plan `{plan.hash[:19]}…`"))
    blocks.append({"type": "divider"})
    status = _STATE_LINE[request.state]
    if request.approvers:
        status += " · approved by " + ", ".join(f"<@{u}>" for u in request.approvers)
    if request.decided_by and request.state in (State.REJECTED, State.CANCELLED):
        status += f" · by <@{request.decided_by}> {_when(request.decided_at)}"
    if request.state is State.APPROVED and request.not_before:
        status += f" · runs {_when(request.not_before)} unless cancelled"
    blocks.append(_section(status))
    if frozen and not request.final:
        blocks.append(_context(":ice_cube: amlbot is frozen: no job starts until an admin runs `/aml unfreeze`."))
    if request.state is State.PENDING:
        if approvers:
            blocks.append(_context("Approvers: " + " ".join(f"<@{u}>" for u in sorted(approvers))))
        blocks.append(_context(f"Expires {_when(request.expires_at)} if nobody decides."))
        blocks.append(_buttons(request.id, approve=True))
    elif request.state in (State.APPROVED, State.QUEUED):
        blocks.append(_buttons(request.id, approve=False))
    return blocks


def _buttons(request_id: str, *, approve: bool) -> Block:
    elements: list[Block] = []
    if approve:
        elements.append(
            {
                "type": "button",
                "action_id": APPROVE,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": request_id,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Approve this request?"},
                    "text": {"type": "mrkdwn", "text": "It runs exactly what the card lists."},
                    "confirm": {"type": "plain_text", "text": "Approve"},
                    "deny": {"type": "plain_text", "text": "Back"},
                },
            }
        )
        elements.append(
            {"type": "button", "action_id": REJECT, "text": {"type": "plain_text", "text": "Reject"}, "style": "danger", "value": request_id}
        )
    elements.append({"type": "button", "action_id": CANCEL, "text": {"type": "plain_text", "text": "Cancel"}, "value": request_id})
    return {"type": "actions", "block_id": f"decide:{request_id}", "elements": elements}


def card_text(request: RequestRecord) -> str:
    """The notification text that goes with the blocks."""
    return f"{request.action} requested by <@{request.requester}> ({request.id}): {request.state.value}"


def progress_text(done: int, total: int, done_bytes: int, total_bytes: int, rate: float, eta: float | None) -> str:
    left = f", about {int(eta)} s left" if eta is not None else ""
    return f":gear: {done}/{total} items, {human_bytes(done_bytes)} of {human_bytes(total_bytes)} ({human_bytes(int(rate))}/s{left})"


def export_result(link: str, size: int, sha256: str, expires_at: str) -> list[Block]:
    return [
        _section(f":package: *Export ready* — {human_bytes(size)}\n<{link}|Download the archive> (read-only, expires {expires_at})"),
        _context(f"SHA-256 `{sha256}`", "The archive holds `manifest.json` with each file's source, size and SHA-256."),
    ]


def receipt_summary(document: dict[str, Any]) -> list[Block]:
    totals = ", ".join(f"{count} {status.replace('_', ' ')}" for status, count in sorted(document["totals"].items()))
    lines = [f":receipt: *Deletion receipt* for {document['request_id']} — {document['state'].replace('_', ' ')}", totals]
    failed = [item for item in document["items"] if item["status"] == "failed"][:10]
    for item in failed:
        lines.append(f"• failed `{escape(item['ref'])}`: {escape(item['reason'])}")
    if document["appeared_and_left_alone"]:
        lines.append(f"{len(document['appeared_and_left_alone'])} item(s) appeared after the plan and were left alone.")
    return [_section("\n".join(lines)), _context(f"Plan `{document['plan_hash'][:19]}…` · verify with `amlbot audit verify-receipt`")]


def error_text(message: str, usage: str | None = None, hint: str | None = None) -> str:
    parts = [f":warning: {escape(message)}"]
    if hint:
        parts.append(escape(hint))
    if usage:
        parts.append("Usage:\n```" + escape(usage) + "```")
    return "\n".join(parts)

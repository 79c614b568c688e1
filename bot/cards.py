"""Block Kit rendering: pure functions of a request's state. Nothing here talks to Slack."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from bot.lifecycle import State
from bot.store.store import RequestRecord
from commands.azure.door import label
from commands.plan import Plan, PlanItem

APPROVE = "amlbot.approve"
REJECT = "amlbot.reject"
CANCEL = "amlbot.cancel"
RUN_NOW = "amlbot.run_now"
ACTION_IDS = (APPROVE, REJECT, CANCEL, RUN_NOW)
ACTION_PATTERN = re.compile("^(" + "|".join(re.escape(a) for a in ACTION_IDS) + ")$")  # what listeners match

MAX_LISTED_ITEMS = 15  # the card lists this many items; the rest are counted
MAX_NAMED_APPROVERS = 20  # named on the card; a bigger pool is counted, not pinged
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
MAX_WARNINGS = 10  # context blocks; the card stays far below Slack's 50 blocks

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


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _truncate(text, SECTION_LIMIT)}}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _truncate(t, FIELD_LIMIT)} for t in texts[:10]]}


def _plan_header(plan: Plan) -> str:
    return f"*{len(plan.items)} item(s)*, {human_bytes(plan.total_bytes)}"


def _item_line(item: PlanItem) -> str:
    where = f"{item.container}/" if item.container else ""
    size = f" ({human_bytes(item.size)})" if item.size is not None else ""
    return f"• `{escape(where + item.ref)}`{size}"


def listed_items(plan: Plan) -> int:
    """How many items the card lists whole: at most MAX_LISTED_ITEMS, and only what fits one section
    with room left to count the rest (a cut-off list would hide how much is not shown)."""
    used = len(_plan_header(plan))
    for count, item in enumerate(plan.items[:MAX_LISTED_ITEMS]):
        used += 1 + len(_item_line(item))
        if used > SECTION_LIMIT - 100:
            return count
    return min(len(plan.items), MAX_LISTED_ITEMS)


def plan_summary(plan: Plan) -> str:
    shown = listed_items(plan)
    lines = [_plan_header(plan), *(_item_line(item) for item in plan.items[:shown])]
    hidden = len(plan.items) - shown
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


def _mentions(users: Iterable[str]) -> str:
    return ", ".join(f"<@{u}>" for u in users)


# States reached through an approval: their card says who approved, and when.
_APPROVED_STATES = frozenset(
    {State.APPROVED, State.QUEUED, State.RUNNING, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED}
)


def status_line(request: RequestRecord) -> str:
    """Where the request stands, who decided and when: the line under the plan."""
    parts = [_STATE_LINE[request.state]]
    if request.approvers and request.state in _APPROVED_STATES:
        parts.append(f"approved by {_mentions(request.approvers)} {_when(request.decided_at)}")
    elif request.approvers:
        parts.append(f"approved so far by {_mentions(request.approvers)}")
    if request.state in (State.REJECTED, State.CANCELLED) and request.decided_by:
        parts.append(f"by <@{request.decided_by}> {_when(request.decided_at)}")
    if request.state is State.EXPIRED:
        parts.append(_when(request.expires_at))
    if request.state is State.APPROVED and request.not_before:
        parts.append(f"runs {_when(request.not_before)} unless cancelled")
    if (request.result or {}).get("stopped_early"):
        parts.append("stopped on request before the end")
    return " · ".join(parts)


def _approvers_line(approvers: frozenset[str]) -> str:
    named = sorted(approvers)[:MAX_NAMED_APPROVERS]
    more = len(approvers) - len(named)
    return "Approvers: " + " ".join(f"<@{u}>" for u in named) + (f" and {more} more" if more > 0 else "")


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
                {"type": "mrkdwn", "text": f"*Command*\n`/aml {_truncate(escape(request.text), FIELD_LIMIT - 40)}`"},
                {"type": "mrkdwn", "text": f"*Approvals*\n{len(request.approvers)} of {request.approvals_required}"},
            ],
        },
    ]
    if plan:
        blocks.append(section(plan_summary(plan)))
        for warning in plan.warnings[:MAX_WARNINGS]:
            blocks.append(context(f":warning: {escape(warning)}"))
        if len(plan.warnings) > MAX_WARNINGS:
            blocks.append(context(f":warning: …and {len(plan.warnings) - MAX_WARNINGS} more warning(s)"))
        blocks.append(context(f"Plan `{plan.hash[:19]}…`"))
    blocks.append({"type": "divider"})
    blocks.append(section(status_line(request)))
    if frozen and not request.final:
        blocks.append(context(":ice_cube: amlbot is frozen: no job starts until an admin runs `/aml unfreeze`."))
    if request.state is State.PENDING:
        if approvers:
            blocks.append(context(_approvers_line(approvers)))
        blocks.append(context(f"Expires {_when(request.expires_at)} if nobody decides."))
    buttons = _BUTTONS.get(request.state)
    if buttons:
        blocks.append({"type": "actions", "block_id": f"decide:{request.id}", "elements": [b(request.id) for b in buttons]})
    return blocks


def _button(action_id: str, label: str, style: str | None = None, confirm: tuple[str, str] | None = None) -> Callable[[str], Block]:
    def render(request_id: str) -> Block:
        button: Block = {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": label}, "value": request_id}
        if style:
            button["style"] = style
        if confirm:
            title, text = confirm
            button["confirm"] = {
                "title": {"type": "plain_text", "text": title},
                "text": {"type": "mrkdwn", "text": text},
                "confirm": {"type": "plain_text", "text": label},
                "deny": {"type": "plain_text", "text": "Back"},
            }
        return button

    return render


_APPROVE_BUTTON = _button(APPROVE, "Approve", "primary", ("Approve this request?", "It runs exactly what the card lists."))
_REJECT_BUTTON = _button(REJECT, "Reject", "danger")
_CANCEL_BUTTON = _button(CANCEL, "Cancel")
_RUN_NOW_BUTTON = _button(RUN_NOW, "Run now", "primary", ("Run it now?", "It skips the rest of the cooling-off."))

# What may still be done to a request in each state; a decided one shows nothing to click.
_BUTTONS: dict[State, tuple[Callable[[str], Block], ...]] = {
    State.PENDING: (_APPROVE_BUTTON, _REJECT_BUTTON, _CANCEL_BUTTON),
    State.APPROVED: (_RUN_NOW_BUTTON, _CANCEL_BUTTON),
    State.QUEUED: (_CANCEL_BUTTON,),
    State.RUNNING: (_CANCEL_BUTTON,),  # stops between steps, with a partial receipt
}


def approval_buttons(request_id: str) -> list[Block]:
    """Approve and Reject exactly as the card has them, for other places that list what waits (App Home)."""
    return [_APPROVE_BUTTON(request_id), _REJECT_BUTTON(request_id)]


def card_text(request: RequestRecord) -> str:
    """The notification text that goes with the blocks."""
    return f"{request.action} requested by <@{request.requester}> ({request.id}): {request.state.value}"


def decision_text(request: RequestRecord, actor: str | None = None) -> str:
    """The thread post that tells the requester what was decided: by whom, and what happens next."""
    by = f" by <@{actor}>" if actor else ""
    approvers = _mentions(request.approvers)
    match request.state:
        case State.APPROVED:
            news = f"is approved by {approvers}; it runs {_when(request.not_before)} unless cancelled."
        case State.QUEUED if actor:
            news = f"is queued{by}, before the end of its cooling-off."
        case State.QUEUED:
            news = f"is approved by {approvers} and queued."
        case State.REJECTED | State.CANCELLED:
            news = f"was {request.state.value}{by}."
        case State.EXPIRED:
            news = "expired — nothing was run."
        case _:
            news = f"is {request.state.value}."
    return f"<@{request.requester}> {request.id} {news}"


def reminder_text(request: RequestRecord) -> str:
    return f"Reminder: {request.id} still needs approval ({len(request.approvers)} of {request.approvals_required}); it expires {_when(request.expires_at)}."


def approvers_notice(request: RequestRecord, card_link: str | None) -> str:
    """The one short post in the approvers' channel: what waits, and where its card is."""
    where = f"<{card_link}|its card> in <#{request.channel_id}>" if card_link else f"its card in <#{request.channel_id}>"
    return (
        f":raising_hand: {request.id} needs {request.approvals_required} approval(s): `{escape(request.action)}` "
        f"on `{escape(request.workspace)}` for <@{request.requester}> — see {where}."
    )


def progress_text(done: int, total: int, done_bytes: int, total_bytes: int, rate: float, eta: float | None) -> str:
    left = f", about {int(eta)} s left" if eta is not None else ""
    return f":gear: {done}/{total} items, {human_bytes(done_bytes)} of {human_bytes(total_bytes)} ({human_bytes(int(rate))}/s{left})"


def export_result(link: str, size: int, sha256: str, expires_at: str) -> list[Block]:
    return [
        section(f":package: *Export ready* — {human_bytes(size)}\n<{link}|Download the archive> (read-only, expires {expires_at})"),
        context(f"SHA-256 `{sha256}`", "The archive holds `manifest.json` with each file's source, size and SHA-256."),
    ]


def totals_text(counts: dict[str, int]) -> str:
    """Outcome counts as people read them: `3 deleted, 1 changed since the plan`."""
    return ", ".join(f"{count} {label(status)}" for status, count in sorted(counts.items()))


def receipt_summary(document: dict[str, Any]) -> list[Block]:
    lines = [f":receipt: *Deletion receipt* for {document['request_id']} — {document['state'].replace('_', ' ')}", totals_text(document["totals"])]
    for note in ("stopped", "unverified"):
        if document.get(note):
            lines.append(escape(document[note]))
    unsettled = [item for item in document["items"] if item["status"] in ("failed", "changed", "retained")][:10]
    for item in unsettled:
        lines.append(f"• {label(item['status'])} `{escape(item['ref'])}`: {escape(item['reason'])}")
    if document["appeared_and_left_alone"]:
        lines.append(f"{len(document['appeared_and_left_alone'])} item(s) appeared after the plan and were left alone.")
    return [section("\n".join(lines)), context(f"Plan `{document['plan_hash'][:19]}…` · verify with `amlbot audit verify-receipt`")]


def error_text(message: str, usage: str | None = None, hint: str | None = None) -> str:
    parts = [f":warning: {escape(message)}"]
    if hint:
        parts.append(escape(hint))
    if usage:
        parts.append("Usage:\n```" + escape(usage) + "```")
    return "\n".join(parts)

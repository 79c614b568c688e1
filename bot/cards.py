"""Block Kit rendering: pure functions of a request's state. Nothing here talks to Slack."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot import plan_words
from bot.lifecycle import State
from bot.plan_words import Summary, human_bytes
from bot.store.store import RequestRecord
from commands.azure.door import label
from commands.intents import Action, Intent, Verb
from commands.plan import SERVER_SIDE, ItemKind, Plan, PlanItem


class ActionId(StrEnum):
    """Every action_id and callback_id the bot's blocks and views carry, in one place: the card,
    the Home tab and the listeners all name them from here."""

    APPROVE = "amlbot.approve"
    REJECT = "amlbot.reject"
    CANCEL = "amlbot.cancel"
    RUN_NOW = "amlbot.run_now"
    REJECT_REASON = "amlbot.reject_reason"  # the modal that asks why (callback_id), and its input


ACTION_IDS = (ActionId.APPROVE, ActionId.REJECT, ActionId.CANCEL, ActionId.RUN_NOW)  # the buttons
ACTION_PATTERN = re.compile("^(" + "|".join(re.escape(a) for a in ACTION_IDS) + ")$")  # exactly those, no prefix

MAX_NAMED_APPROVERS = 20  # named on the card; a bigger pool is counted, not pinged
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
MAX_WARNINGS = 10  # context blocks; the card stays far below Slack's 50 blocks

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack's three control characters, so user text never becomes a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def when(moment: datetime | None) -> str:
    """A moment as Slack shows dates: in each reader's own time zone, with an ISO fallback."""
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


MAX_GROUP_MEMBERS = 5  # named in a group's field; the rest are counted


def _group_field(group: plan_words.Group) -> Block:
    members = sorted(group.members.items())
    head = f"*{plan_words.count(len(members), group.noun)}*" if group.noun != "notebooks" else "*Notebooks and files*"
    files = plan_words.files_and_size(group.files, group.bytes)
    lines = [head + (f" · {files}" if files else "")]
    lines += [f"• {escape(plan_words.member_line(name, member))}" for name, member in members[:MAX_GROUP_MEMBERS]]
    if len(members) > MAX_GROUP_MEMBERS:
        lines.append(f"…and {len(members) - MAX_GROUP_MEMBERS} more")
    return {"type": "mrkdwn", "text": _truncate("\n".join(lines), FIELD_LIMIT)}


def plan_detail(plan: Summary) -> list[Block]:
    """What the plan touches, grouped as people think of it (runs, models, notebooks…), with counts
    and sizes; the blob-by-blob list is the plan file in the thread."""
    fields = [_group_field(g) for g in plan.groups[:10]]
    return [{"type": "section", "fields": fields}] if fields else []


def names_every_item(plan: Summary) -> bool:
    """Whether the card names each item itself (one record or resource per member); if not, the
    full list goes to the thread as a file."""
    return all(not m.files and len(m.versions) <= 1 for g in plan.groups for m in g.members.values()) and (
        sum(len(g.members) for g in plan.groups) <= MAX_GROUP_MEMBERS
    )


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
        parts.append(f"approved by {_mentions(request.approvers)} {when(request.decided_at)}")
    elif request.approvers:
        parts.append(f"approved so far by {_mentions(request.approvers)}")
    if request.state in (State.REJECTED, State.CANCELLED) and request.decided_by:
        parts.append(f"by <@{request.decided_by}> {when(request.decided_at)}")
    if request.state is State.EXPIRED:
        parts.append(when(request.expires_at))
    if request.state is State.APPROVED and request.not_before:
        parts.append(f"runs {when(request.not_before)} unless cancelled")
    if (request.result or {}).get("stopped_early"):
        parts.append("stopped on request before the end")
    return " · ".join(parts)


def _approvers_line(approvers: frozenset[str], groups: tuple[str, ...] = ()) -> str:
    named = sorted(approvers)[:MAX_NAMED_APPROVERS]
    more = len(approvers) - len(named)
    mentions = [f"<!subteam^{g}>" for g in groups] + [f"<@{u}>" for u in named]
    return "Approvers: " + " ".join(mentions) + (f" and {more} more" if more > 0 else "")


def headline(request: RequestRecord, plan: Summary | None, names: Mapping[str, str] | None = None) -> str:
    """The plain-words line a card opens with (also the Home tab's); `plan` is `Publisher.summary(request)`."""
    intent = plan_words.intent_of(request.intent.get("text"))
    if plan is None:
        return f"{request.action} on workspace {request.workspace}"
    return plan_words.headline(plan, intent, names)


def _icon(intent: Intent | None) -> str:
    if plan_words.severe(intent):
        return ":rotating_light:"
    return ":package:" if intent is not None and intent.verb is Verb.EXPORT else ":warning:"


def warning_blocks(request: RequestRecord, plan: Summary | None) -> list[Block]:
    """What an approver must not miss: the red line of a workspace deletion, then the plan's warnings."""
    intent = plan_words.intent_of(request.intent.get("text"))
    blocks: list[Block] = []
    if plan_words.severe(intent):
        assert intent is not None
        words = "PERMANENT — the workspace cannot be recovered" if intent.purge else "The whole workspace goes, with everything in it"
        blocks.append(section(f":red_circle: *{words}.* {escape(plan_words.consequence(plan, intent)) if plan else ''}"))
    elif intent is not None and intent.destructive:
        blocks.append(context(":warning: *Deletion* — approving deletes what is listed here; it cannot be undone."))
    elif plan is not None and plan.action.verb is Verb.EXPORT:
        blocks.append(context(f":package: {plan_words.export_way(plan)}"))
    warnings = plan.warnings if plan else ()
    for warning in warnings[:MAX_WARNINGS]:
        blocks.append(context(f":warning: {escape(warning)}"))
    if len(warnings) > MAX_WARNINGS:
        blocks.append(context(f":warning: …and {len(warnings) - MAX_WARNINGS} more warning(s)"))
    return blocks


def request_card(
    request: RequestRecord,
    plan: Summary | None,
    *,
    approvers: frozenset[str] = frozenset(),
    groups: tuple[str, ...] = (),
    frozen: bool = False,
    names: Mapping[str, str] | None = None,
) -> list[Block]:
    """The card in the channel: a plain-words headline, what it touches grouped as people think of
    it, warnings where it matters, who asked, and what happened so far. `approvers` and `groups`
    are whom it asks for a decision (policy.whom_to_ask); `plan` is `Publisher.summary(request)`."""
    intent = plan_words.intent_of(request.intent.get("text"))
    title = _truncate(f"{_icon(intent)} {headline(request, plan, names)}", 150)
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
        *warning_blocks(request, plan),
    ]
    if plan:
        blocks += plan_detail(plan)
    blocks.append(
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Request*\n{request.id}"},
                {"type": "mrkdwn", "text": f"*Requested by*\n<@{request.requester}>"},
                {"type": "mrkdwn", "text": f"*Command*\n`/aml {_truncate(escape(request.text), FIELD_LIMIT - 40)}`"},
                {"type": "mrkdwn", "text": f"*Approvals*\n{len(request.approvers)} of {request.approvals_required}"},
            ],
        }
    )
    if plan and request.plan_hash:
        # The hash stored with the request (and in its audit entry), which the worker checks the plan
        # against before it runs: recomputing it here would cost seconds a render on a big plan.
        listed = "" if names_every_item(plan) else " · every item is listed in the plan file in the thread"
        blocks.append(context(f"Plan `{request.plan_hash[:19]}…`{listed}"))
    blocks.append({"type": "divider"})
    blocks.append(section(status_line(request)))
    if frozen and not request.final:
        blocks.append(context(":ice_cube: amlbot is frozen: no job starts until an admin runs `/aml unfreeze`."))
    if request.state is State.PENDING:
        if approvers or groups:
            blocks.append(context(_approvers_line(approvers, groups)))
        blocks.append(context(f"Expires {when(request.expires_at)} if nobody decides."))
    buttons = _BUTTONS.get(request.state)
    if buttons:
        blocks.append({"type": "actions", "block_id": f"decide:{request.id}", "elements": [b(request, plan) for b in buttons]})
    return blocks


def _button(action_id: str, label: str, style: str | None = None, confirm: tuple[str, str] | None = None) -> Block:
    button: Block = {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": label}}
    if style:
        button["style"] = style
    if confirm:
        title, text = confirm
        button["confirm"] = {
            "title": {"type": "plain_text", "text": _truncate(title, 100)},
            "text": {"type": "mrkdwn", "text": _truncate(text, 300)},
            "confirm": {"type": "plain_text", "text": label[:30]},
            "deny": {"type": "plain_text", "text": "Back"},
            **({"style": style} if style else {}),
        }
    return button


def approve_button(request: RequestRecord, plan: Summary | None) -> Block:
    """Approve, dressed for what it does: a destructive request's button and its confirmation are
    red and say the consequence for this request; an export's are green."""
    intent = plan_words.intent_of(request.intent.get("text"))
    consequence = plan_words.consequence(plan, intent) if plan else "It runs exactly what the card lists."
    if intent is not None and intent.verb is Verb.EXPORT:
        button = _button(ActionId.APPROVE, "Approve", "primary", ("Approve this export?", consequence))
    elif plan_words.severe(intent):
        assert intent is not None
        label = "Approve purge" if intent.purge else "Approve workspace deletion"
        button = _button(ActionId.APPROVE, label, "danger", (f"{'Purge' if intent.purge else 'Delete'} workspace {request.workspace}?", consequence))
    else:
        button = _button(ActionId.APPROVE, "Approve deletion", "danger", ("Delete for good?", consequence))
    return button | {"value": request.id}


Button = Callable[[RequestRecord, Summary | None], Block]


def _simple(action_id: str, label: str, style: str | None = None, confirm: tuple[str, str] | None = None) -> Button:
    return lambda request, _: _button(action_id, label, style, confirm) | {"value": request.id}


_REJECT_BUTTON = _simple(ActionId.REJECT, "Reject")
_CANCEL_BUTTON = _simple(ActionId.CANCEL, "Cancel")
_RUN_NOW_BUTTON = _simple(
    ActionId.RUN_NOW, "Run now", "danger", ("Run it now?", "It skips the rest of the cooling-off: the deletion starts at once.")
)

# What may still be done to a request in each state; a decided one shows nothing to click.
_BUTTONS: dict[State, tuple[Button, ...]] = {
    State.PENDING: (approve_button, _REJECT_BUTTON, _CANCEL_BUTTON),
    State.APPROVED: (_RUN_NOW_BUTTON, _CANCEL_BUTTON),
    State.QUEUED: (_CANCEL_BUTTON,),
    State.RUNNING: (_CANCEL_BUTTON,),  # stops between steps, with a partial receipt
}


def approval_buttons(request: RequestRecord, plan: Summary | None) -> list[Block]:
    """Approve and Reject exactly as the card has them, for other places that list what waits (App Home)."""
    return [approve_button(request, plan), _REJECT_BUTTON(request, plan)]


REASON_LIMIT = 500  # characters of a rejection's reason


def reject_modal(
    request: RequestRecord, plan: Summary | None, origin: str, names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The form Reject opens: why, in words the requester will read. `origin` is where the click
    came from (the card's channel or the Home tab), for the answer to go back there."""
    return {
        "type": "modal",
        "callback_id": ActionId.REJECT_REASON,
        "private_metadata": json.dumps({"request_id": request.id, "origin": origin}),
        "title": {"type": "plain_text", "text": f"Reject {request.id}"[:24]},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Back"},
        "blocks": [
            section(f"*{escape(headline(request, plan, names))}*\nasked by <@{request.requester}>"),
            {
                "type": "input",
                "block_id": ActionId.REJECT_REASON,
                "label": {"type": "plain_text", "text": "Why? The requester reads this in the card's thread."},
                "element": {
                    "type": "plain_text_input",
                    "action_id": ActionId.REJECT_REASON,
                    "multiline": True,
                    "max_length": REASON_LIMIT,
                    "placeholder": {"type": "plain_text", "text": "e.g. the run is still needed for the Q3 audit"},
                },
            },
        ],
    }


def card_text(request: RequestRecord) -> str:
    """The notification text that goes with the blocks."""
    return f"{request.action} requested by <@{request.requester}> ({request.id}): {request.state.value}"


def decision_text(request: RequestRecord, actor: str | None = None, reason: str | None = None) -> str:
    """The thread post that tells the requester what was decided: by whom, why, and what happens next."""
    by = f" by <@{actor}>" if actor else ""
    approvers = _mentions(request.approvers)
    match request.state:
        case State.APPROVED:
            news = f"is approved by {approvers}; it runs {when(request.not_before)} unless cancelled."
        case State.QUEUED if actor:
            news = f"is queued{by}, before the end of its cooling-off."
        case State.QUEUED:
            news = f"is approved by {approvers} and queued."
        case State.REJECTED | State.CANCELLED if reason:
            news = f"was {request.state.value}{by}: “{escape(reason)}”"
        case State.REJECTED | State.CANCELLED:
            news = f"was {request.state.value}{by}."
        case State.EXPIRED:
            news = "expired — nothing was run."
        case _:
            news = f"is {request.state.value}."
    return f"<@{request.requester}> {request.id} {news}"


def reminder_text(request: RequestRecord) -> str:
    return (
        f"Reminder: {request.id} still needs approval ({len(request.approvers)} of {request.approvals_required}); "
        f"it expires {when(request.expires_at)}."
    )


def approvers_notice(request: RequestRecord, card_link: str | None) -> str:
    """The one short post in the approvers' channel: what waits, and where its card is."""
    where = f"<{card_link}|its card> in <#{request.channel_id}>" if card_link else f"its card in <#{request.channel_id}>"
    return (
        f":raising_hand: {request.id} needs {request.approvals_required} approval(s): `{escape(str(request.action))}` "
        f"on `{escape(request.workspace)}` for <@{request.requester}> — see {where}."
    )


def when_iso(moment: str) -> str:
    """A stored ISO-8601 time, shown in each reader's own time zone (Slack's date formatting)."""
    try:
        return when(datetime.fromisoformat(moment))
    except ValueError:
        return escape(moment)


def export_ready(extras: Mapping[str, Any]) -> list[Block]:
    """What a finished export posts: its archive's link, or its container's (server-side)."""
    if extras.get("way") == SERVER_SIDE:
        return server_export_result(extras)
    return export_result(extras["link"], extras["size"], extras["sha256"], extras["expires_at"])


def server_export_result(extras: Mapping[str, Any]) -> list[Block]:
    """The link to a server-side export's container, the azcopy command that fetches it whole,
    and what was not exported."""
    copied = plan_words.count(extras["copied"], "file")
    lines = [
        f":package: *Export ready* — server-side: {copied} ({human_bytes(extras['size'])}) copied inside the storage account",
        f"<{extras['link']}|The export's container> (read-only, expires {when_iso(extras['expires_at'])}) · <{extras['manifest']}|manifest.json>",
        f"Download it whole:\n```{escape(extras['azcopy'])}```",
    ]
    missed = {word: extras.get(key, 0) for key, word in (("changed", "changed since the plan"), ("missing", "missing"), ("failed", "failed"))}
    said = ", ".join(f"{n} {word}" for word, n in missed.items() if n)
    note = f"Not exported: {said} — each is listed with why in `manifest.json`. " if said else ""
    return [
        section("\n".join(lines)),
        context(note + "`manifest.json` lists each file's source, planned ETag, size and Content-MD5 where storage keeps one."),
    ]


def export_result(link: str, size: int, sha256: str, expires_at: str) -> list[Block]:
    return [
        section(f":package: *Export ready* — {human_bytes(size)}\n<{link}|Download the archive> (read-only, expires {when_iso(expires_at)})"),
        context(f"SHA-256 `{sha256}`", "The archive holds `manifest.json` with each file's source, size and SHA-256."),
    ]


def totals_text(counts: dict[str, int]) -> str:
    """Outcome counts as people read them: `3 deleted, 1 changed since the plan`."""
    return ", ".join(f"{count} {label(status)}" for status, count in sorted(counts.items()))


# A receipt's outcomes in the order and the words a requester reads them.
_OUTCOME_WORDS = {
    "deleted": "Deleted",
    "soft_deleted": "Deleted, recoverable for 14 days",
    "archived": "Archived (the most the service allows)",
    "already_absent": "Already gone",
    "retained": "Kept",
    "changed": "Kept, changed since the plan",
    "failed": "Failed",
}
_WITH_REASONS = ("retained", "changed", "failed")  # outcomes whose items say why
RECEIPT_EXAMPLES = 5  # items named under each outcome; the receipt file lists them all


def receipt_summary(document: dict[str, Any]) -> list[Block]:
    """The receipt in words: what was deleted, what was kept and why, what failed and why, each
    with its first few items by name; every item is in the signed file beside it."""
    state = document["state"].replace("_", " ")
    lines = [f":receipt: *Deletion receipt* for {document['request_id']} — {state}"]
    for note in ("stopped", "unverified"):
        if document.get(note):
            lines.append(escape(document[note]))
    base = Plan(action=Action.parse(document["action"]), workspace=document["workspace"], target=document.get("target", ""))
    present = [st for st in _OUTCOME_WORDS if st in document["totals"]] + [st for st in document["totals"] if st not in _OUTCOME_WORDS]
    for status in present:
        words = _OUTCOME_WORDS.get(status) or label(status).capitalize()
        entries = [i for i in document["items"] if i["status"] == status]
        if not entries:
            continue
        items = tuple(PlanItem(ItemKind(i["kind"]), i["ref"], i.get("size"), i.get("container")) for i in entries)
        plan = Plan(action=base.action, workspace=base.workspace, target=base.target, items=items)
        lines.append(f"*{words}*: {plan_words.amount(plan)}")
        for entry, item in list(zip(entries, items, strict=True))[:RECEIPT_EXAMPLES]:
            why = f" — {escape(entry['reason'])}" if entry.get("reason") and status in _WITH_REASONS else ""
            lines.append(f"  • {escape(plan_words.item_label(item, plan))}{why}")
        if len(entries) > RECEIPT_EXAMPLES:
            lines.append(f"  …and {len(entries) - RECEIPT_EXAMPLES} more")
    if document["appeared_and_left_alone"]:
        lines.append(f"*Left alone*: {len(document['appeared_and_left_alone'])} item(s) appeared after the plan and were not touched.")
    footer = f"Plan `{document['plan_hash'][:19]}…` · every item is in the receipt file · verify with `amlbot audit verify-receipt`"
    return [section("\n".join(lines)), context(footer)]


def error_text(message: str, usage: str | None = None, hint: str | None = None) -> str:
    parts = [f":warning: {escape(message)}"]
    if hint:
        parts.append(escape(hint))
    if usage:
        parts.append("Usage:\n```" + escape(usage) + "```")
    return "\n".join(parts)

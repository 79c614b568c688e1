"""The App Home tab: pure Block Kit of what waits for one user's approval, what they asked for, and
what came of it (export links and receipts). Nothing here talks to Slack or reads the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot import cards, plan_words
from bot.store.store import RequestRecord
from commands.plan import SERVER_SIDE

MAX_WAITING = 12  # at most 1 + HOME_WARNINGS + 1 blocks each; a Home tab holds 100
HOME_WARNINGS = 3  # the card's warnings shown on the tab; the card has them all
MAX_MINE = 10
MAX_RESULTS = 10
LINE_LIMIT = 250  # one request's line in a list, so ten of them fit one section


@dataclass(frozen=True)
class HomeContent:
    user: str
    waiting: list[RequestRecord]  # pending, this user may approve and has not yet
    mine: list[RequestRecord]  # this user's requests, newest first
    results: list[RequestRecord]  # finished, with a link or a receipt, that this user requested or approved
    frozen: bool = False
    notice: str | None = None  # the answer to this user's last click on the tab
    links: dict[str, str] = field(default_factory=dict)  # request id -> permalink of its card
    names: dict[str, str] = field(default_factory=dict)  # Slack user id -> name, for headlines
    summaries: dict[str, plan_words.Summary] = field(default_factory=dict)  # request id -> its plan's, for `waiting`


def _header(text: str) -> cards.Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def _line(request: RequestRecord) -> str:
    line = f"*{request.id}* `{cards.escape(str(request.action))}` on `{cards.escape(request.workspace)}`"
    return line if len(line) <= LINE_LIMIT else line[: LINE_LIMIT - 1] + "…"


def _waiting(request: RequestRecord, content: HomeContent) -> list[cards.Block]:
    """A request waiting for this user, as its card shows it: the same headline, the same warnings
    and the same buttons (with their confirmations), and a link to the card itself."""
    link = content.links.get(request.id)
    card = f"<{link}|Open its card>" if link else f"its card is in <#{request.channel_id}>"
    plan = content.summaries.get(request.id)
    text = (
        f"*{cards.escape(cards.headline(request, plan, content.names))}*\n"
        f"{request.id} for <@{request.requester}> · {len(request.approvers)} of {request.approvals_required} approvals · {card}"
    )
    warnings = cards.warning_blocks(request, plan)
    shown = warnings[:HOME_WARNINGS]
    if len(warnings) > HOME_WARNINGS:
        shown.append(cards.context(f":warning: …and {len(warnings) - HOME_WARNINGS} more on the card"))
    return [
        cards.section(text),
        *shown,
        {"type": "actions", "block_id": f"home:{request.id}", "elements": cards.approval_buttons(request, plan)},
    ]


def _more(shown: int, total: int, where: str) -> list[cards.Block]:
    return [cards.context(f"…and {total - shown} more: {where}")] if total > shown else []


def _result(request: RequestRecord, moment: datetime) -> str:
    result = request.result or {}
    extras = result.get("extras") or {}
    totals = cards.totals_text(result.get("summary") or {})
    line = f"{_line(request)} — {request.state.value.replace('_', ' ')}" + (f": {totals}" if totals else "")
    if extras.get("link") and result.get("revoked"):
        line += "\n:package: the archive was deleted with `/aml revoke`: its link no longer works"
    elif extras.get("link"):
        if datetime.fromisoformat(extras["expires_at"]) > moment:
            size, expires = plan_words.human_bytes(extras.get("size", 0)), cards.when_iso(extras["expires_at"])
            what = "The export's container (azcopy)" if extras.get("way") == SERVER_SIDE else "Download the archive"
            line += f"\n:package: <{extras['link']}|{what}> ({size}, expires {expires})"
        else:
            line += "\n:package: the download link has expired: ask for the export again"
    if result.get("receipt_sha256"):
        line += f"\n:receipt: receipt in the thread of its card in <#{request.channel_id}> · `amlbot audit show {request.id}`"
    return line


def home_view(content: HomeContent, moment: datetime) -> dict[str, Any]:
    """The whole tab for `content.user`; `moment` decides which export links have expired."""
    blocks: list[cards.Block] = [_header("amlbot")]
    if content.notice:
        blocks.append(cards.section(content.notice))
    if content.frozen:
        blocks.append(cards.context(":ice_cube: amlbot is frozen: no job starts until an admin runs `/aml unfreeze`."))

    blocks.append(_header("Waiting for your approval"))
    for request in content.waiting[:MAX_WAITING]:
        blocks += _waiting(request, content)
    if not content.waiting:
        blocks.append(cards.context("Nothing waits for you."))
    blocks += _more(MAX_WAITING, len(content.waiting), "`/aml list pending`")

    blocks.append(_header("Your requests"))
    mine = [f"• {_line(r)} — {cards.status_line(r)}" for r in content.mine[:MAX_MINE]]
    blocks.append(cards.section("\n".join(mine)) if mine else cards.context("You have asked for nothing yet."))

    blocks.append(_header("Latest exports and receipts"))
    for request in content.results[:MAX_RESULTS]:
        blocks.append(cards.section(_result(request, moment)))
    if not content.results:
        blocks.append(cards.context("No export or receipt of yours yet."))
    return {"type": "home", "blocks": blocks}

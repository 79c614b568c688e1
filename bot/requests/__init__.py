"""The use cases: a command's text, a button or a form becomes a request or a decision on one.

One runner per kind of command (submit, lookups, decisions, admin), sharing a Desk; Slack output
goes through bot/publisher.py, Azure through the operation contexts (bot/contexts.py). Listeners
and the worker call only the methods of `Requests`. Handlers stay thin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.cards import ActionId
from bot.publisher import Where
from bot.requests.admin import Admin
from bot.requests.decisions import Decisions
from bot.requests.desk import Desk
from bot.requests.lookups import Lookups
from bot.requests.submit import Submit
from bot.store.store import RequestRecord
from commands import grammar
from commands.intents import (
    CancelCommand,
    FreezeCommand,
    HelpCommand,
    Intent,
    ListCommand,
    RevokeCommand,
    StatusCommand,
    UnfreezeCommand,
)

__all__ = ["Desk", "Requests"]

Click = Callable[[RequestRecord, Where, str | None], Awaitable[str | None]]


class Requests:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self._submit = Submit(desk)
        self._lookups = Lookups(desk)
        self._decisions = Decisions(desk)
        self._admin = Admin(desk)
        self._clicks: dict[str, Click] = {
            ActionId.APPROVE: lambda record, where, _: self._decisions.approve(record, where),
            ActionId.REJECT: self._decisions.ask_reason,
            ActionId.CANCEL: lambda record, where, _: self._decisions.cancel(record, where),
            ActionId.RUN_NOW: lambda record, where, _: self._decisions.run_now(record, where),
        }

    async def command(self, text: str, where: Where) -> str | None:
        """Handle `/aml <text>`; returns the private reply, if any."""
        try:
            parsed = grammar.parse(text)
        except grammar.GrammarError as error:
            return await self._lookups.misread(error, where)
        match parsed:
            case Intent():
                return await self._submit.run(parsed, text, where)
            case HelpCommand():
                return await self._lookups.help(parsed, where)
            case StatusCommand(request_id=rid):
                return await self._lookups.status(rid, where)
            case CancelCommand(request_id=rid):
                return await self._decisions.cancel_command(rid, where)
            case RevokeCommand(request_id=rid):
                return await self._admin.revoke(rid, where)
            case ListCommand(scope=scope):
                return await self._lookups.list(scope, where)
            case FreezeCommand() | UnfreezeCommand():
                return await self._admin.freeze(isinstance(parsed, FreezeCommand), where)
        return None

    async def click(self, action_id: str, value: object, where: Where, trigger_id: str | None = None) -> str | None:
        """A button on a card or the Home tab; returns the private reply, if any. Nothing here trusts the payload."""
        handler = self._clicks.get(action_id)
        found = await self.desk.named_request(value if handler else None, where, "click.refused", "That button")
        if isinstance(found, str):
            return found
        assert handler is not None  # an unknown button names no request: refused above
        return await handler(found, where, trigger_id)

    async def reject(self, value: object, reason: str, where: Where) -> str | None:
        """The reject form was sent."""
        return await self._decisions.reject(value, reason, where)

    async def expire(self, request_id: str) -> None:
        """A request past its deadline expires (the worker's timer)."""
        await self._decisions.expire(request_id)

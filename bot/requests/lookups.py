"""`/aml help`, `status` and `list`, and the answer to a command that did not parse: they read, never change."""

from __future__ import annotations

import asyncio
from functools import partial

from bot import cards, help, policy
from bot.lifecycle import State
from bot.publisher import Where
from bot.requests.desk import Desk
from commands import grammar
from commands.intents import ALL_ACTIONS, Action, HelpCommand
from commands.operations import operation_for

LISTED = 20  # requests one `/aml list` shows


class Lookups:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def help(self, command: HelpCommand, where: Where) -> str:
        if command.topic:
            try:
                return "```" + grammar.usage(command.topic) + "```"
            except ValueError:
                return cards.error_text(f"No help on `{command.topic}`.", grammar.usage("help"))
        actions, may_cancel, admin = await self._may_run(where)
        return help.help_text(actions, may_cancel=may_cancel, admin=admin)

    async def misread(self, error: grammar.GrammarError, where: Where) -> str:
        """A command that did not parse; a guess at what was meant is only ever one this person may run."""
        if error.guess is None:
            return cards.error_text(error.message, error.usage, error.hint)
        actions, may_cancel, admin = await self._may_run(where)
        allowed = help.allowed_commands(actions, may_cancel=may_cancel, admin=admin)
        hint = help.did_you_mean(error.guess, allowed) or "`/aml help` lists what you may run here."
        return cards.error_text(error.message, "\n".join(grammar.USAGE[c] for c in allowed), hint)

    async def _may_run(self, where: Where) -> tuple[list[Action], bool, bool]:
        """What this person may ask for in this channel; whether they may cancel; whether admin."""
        rules = self.desk.config.policy
        actor = await self.desk.actor(where)
        available = [a for a in ALL_ACTIONS if operation_for(a) is not None]
        actions = policy.requestable_actions(rules, actor, available, where.channel)
        return actions, bool(actions) or policy.is_approver(rules, actor), policy.is_admin(rules, actor)

    async def status(self, request_id: str, where: Where) -> str:
        record = await self.desk.visible(request_id, where, "status.refused")
        if isinstance(record, str):
            return record
        approvals = f"{len(record.approvers)} of {record.approvals_required} approvals"
        return f"*{record.id}* `{cards.escape(record.text)}` on `{record.workspace}`: {cards.status_line(record)} ({approvals})"

    async def list(self, scope: str, where: Where) -> str:
        store, rules = self.desk.store, self.desk.config.policy
        team, org = policy.listed_from(rules, team=where.team, enterprise=where.enterprise)
        among = partial(store.list_requests, team=team, enterprise=org)
        if scope == "pending":
            records = await asyncio.to_thread(among, states=frozenset({State.PENDING}), limit=None)
        else:
            records = await asyncio.to_thread(among, requester=where.user)
        actor = await self.desk.actor(where)
        seen = partial(policy.may_see, rules, actor, team=where.team, channel=where.channel, enterprise=where.enterprise)
        shown = [r for r in records if seen(r)][:LISTED]
        if not shown:
            return "Nothing to show."
        return "\n".join(f"• *{r.id}* `{cards.escape(r.text)}` — {r.state.value.replace('_', ' ')}" for r in shown)

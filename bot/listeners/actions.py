"""Card buttons (approve, reject, cancel, run now) and the reject form. Ack at once, then (the first copy of a
delivery only) decide in bot/requests/."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot import cards, replies
from bot.listeners.after_ack import once
from bot.listeners.payload import form_value, from_message, id_of, metadata, trigger_of
from bot.publisher import Publisher, Where
from bot.requests import Requests


def register(app: AsyncApp, requests: Requests, publisher: Publisher) -> None:
    @app.action(cards.ACTION_PATTERN, matchers=[from_message])
    async def decide(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        since = replies.received()
        await ack()
        # Ids of another JSON type count as none: the use case refuses them, and the audit hashes what it stores.
        where = Where(
            team=id_of(body.get("team")), channel=id_of(body.get("channel")), user=id_of(body.get("user")),
            enterprise=id_of(body.get("enterprise")) or None,
        )
        # The use case checks the value: a malformed one is refused and audited like any other click.
        _, reply = await once(context, lambda: requests.click(action["action_id"], action.get("value"), where, trigger_of(body)), "click")
        if reply:
            await replies.answer(publisher, respond, where, reply, since, replace_original=False)

    @app.view(cards.ActionId.REJECT_REASON)
    async def reject_reason(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()  # closes the form; the answer, if any, comes privately
        meta = metadata(view)
        where = Where(
            team=id_of(body.get("team")), channel=str(meta.get("origin") or ""), user=id_of(body.get("user")),
            enterprise=id_of(body.get("enterprise")) or None,
        )
        reason = form_value(view, cards.ActionId.REJECT_REASON)
        _, reply = await once(context, lambda: requests.reject(meta.get("request_id"), reason, where), "reject form")
        if reply:
            await publisher.answer_privately(where, reply)

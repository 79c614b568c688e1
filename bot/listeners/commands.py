"""The `/aml` slash command: ack at once, then (the first copy of a delivery only) hand the text to the use cases (bot/requests/)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot import replies
from bot.listeners.after_ack import once
from bot.publisher import Publisher, Where
from bot.requests import Requests

COMMAND = "/aml"


def register(app: AsyncApp, requests: Requests, publisher: Publisher) -> None:
    @app.command(COMMAND)
    async def aml(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext) -> None:
        since = replies.received()
        await ack()
        where = Where(
            team=body.get("team_id", ""), channel=body.get("channel_id", ""), user=body.get("user_id", ""),
            enterprise=body.get("enterprise_id") or None,
        )
        _, reply = await once(context, lambda: requests.command(body.get("text", ""), where), "command")
        if reply:
            await replies.answer(publisher, respond, where, reply, since)

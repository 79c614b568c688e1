"""The `/aml` slash command: ack at once, then (the first copy of a delivery only) hand the text to the use cases (bot/requests/)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from sqlalchemy.exc import SQLAlchemyError

from bot import replies
from bot.deliveries import first_copy
from bot.listeners.payload import DATABASE_DOWN
from bot.publisher import Publisher, Where
from bot.requests import Requests

log = logging.getLogger(__name__)

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
        try:
            if not await first_copy(context):
                return
            reply = await requests.command(body.get("text", ""), where)
        except SQLAlchemyError:
            # Slack already has its 200: without this the person would hear nothing at all.
            log.exception("database error on a command")
            reply = DATABASE_DOWN
        if reply:
            await replies.answer(publisher, respond, where, reply, since)

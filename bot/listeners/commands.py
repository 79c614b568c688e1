"""The `/aml` slash command: ack at once, then hand the text to the flow."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from sqlalchemy.exc import SQLAlchemyError

from bot import replies
from bot.flow import Flow, Where
from bot.listeners.payload import DATABASE_DOWN

log = logging.getLogger(__name__)

COMMAND = "/aml"


def register(app: AsyncApp, flow: Flow) -> None:
    @app.command(COMMAND)
    async def aml(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        since = replies.received()
        await ack()
        where = Where(
            team=body.get("team_id", ""), channel=body.get("channel_id", ""), user=body.get("user_id", ""),
            enterprise=body.get("enterprise_id") or None,
        )
        try:
            reply = await flow.command(body.get("text", ""), where)
        except SQLAlchemyError:
            # Slack already has its 200: without this the person would hear nothing at all.
            log.exception("database error on a command")
            reply = DATABASE_DOWN
        if reply:
            await replies.answer(flow, respond, where, reply, since)

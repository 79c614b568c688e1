"""The `/aml` slash command: ack at once, then hand the text to the flow."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.flow import Flow, Where

COMMAND = "/aml"


def register(app: AsyncApp, flow: Flow) -> None:
    @app.command(COMMAND)
    async def aml(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        where = Where(team=body.get("team_id", ""), channel=body.get("channel_id", ""), user=body.get("user_id", ""))
        reply = await flow.command(body.get("text", ""), where)
        if reply:
            await respond(text=reply, response_type="ephemeral")

"""Card buttons: approve, reject, cancel, run now. Ack at once, then decide in the flow."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot import cards
from bot.flow import Flow, Where


def register(app: AsyncApp, flow: Flow) -> None:
    @app.action(cards.ACTION_PATTERN)
    async def decide(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        where = Where(
            team=(body.get("team") or {}).get("id", ""),
            channel=(body.get("channel") or {}).get("id", ""),
            user=(body.get("user") or {}).get("id", ""),
        )
        # The flow checks the value: a malformed one is refused and audited like any other click.
        reply = await flow.click(action["action_id"], action.get("value"), where)
        if reply:
            await respond(text=reply, response_type="ephemeral", replace_original=False)

"""Card buttons: approve, reject, cancel. Ack at once, then decide in the flow."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot import cards
from bot.flow import Flow, Where

_REQUEST_ID = re.compile(r"R-[A-Z0-9]{8}")


def register(app: AsyncApp, flow: Flow) -> None:
    @app.action(re.compile("^(" + "|".join(re.escape(a) for a in cards.ACTION_IDS) + ")$"))
    async def decide(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        where = Where(
            team=(body.get("team") or {}).get("id", ""),
            channel=(body.get("channel") or {}).get("id", ""),
            user=(body.get("user") or {}).get("id", ""),
        )
        value = action.get("value")
        if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
            await respond(text=cards.error_text("That button does not name a request."), response_type="ephemeral", replace_original=False)
            return
        reply = await flow.click(action["action_id"], value, where)
        if reply:
            await respond(text=reply, response_type="ephemeral", replace_original=False)

"""Reading Slack payloads defensively: a field of the wrong JSON type counts as absent."""

from __future__ import annotations

import json
from typing import Any


def id_of(part: Any) -> str:
    """A user's, channel's or team's id from a payload; anything but a string counts as none."""
    value = part.get("id") if isinstance(part, dict) else None
    return value if isinstance(value, str) else ""



def metadata(view: Any) -> dict[str, Any]:
    """A view's private_metadata as the JSON object the bot wrote there; anything else counts as empty."""
    raw = view.get("private_metadata") if isinstance(view, dict) else None
    try:
        decoded = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def form_value(view: Any, key: str) -> str:
    """The text typed into the input whose block and action ids are both `key`; '' when absent."""
    try:
        value = view["state"]["values"][key][key]["value"]
    except (KeyError, TypeError):
        return ""
    return value if isinstance(value, str) else ""


async def from_home(body: dict[str, Any]) -> bool:
    """Whether a click came from the App Home tab rather than a message: the card's listener and the
    tab's each take only their own, so the order they are registered in does not matter."""
    container, view = body.get("container"), body.get("view")
    return isinstance(container, dict) and container.get("type") == "view" and isinstance(view, dict) and view.get("type") == "home"


async def from_message(body: dict[str, Any]) -> bool:
    return not await from_home(body)


def trigger_of(body: dict[str, Any]) -> str | None:
    """The trigger id of a click, which lets the bot open a form in answer to it."""
    trigger = body.get("trigger_id")
    return trigger if isinstance(trigger, str) else None

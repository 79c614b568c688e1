"""Reading Slack payloads defensively: a field of the wrong JSON type counts as absent."""

from __future__ import annotations

from typing import Any

# What the person is told when the database fails after the ack (Slack has already had its 200).
DATABASE_DOWN = ":warning: The database is unavailable right now: nothing was recorded. Please try again in a few minutes."


def id_of(part: Any) -> str:
    """A user's, channel's or team's id from a payload; anything but a string counts as none."""
    value = part.get("id") if isinstance(part, dict) else None
    return value if isinstance(value, str) else ""


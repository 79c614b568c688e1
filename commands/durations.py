"""Durations as people type them: `30m`, `12h`, `7d`, `2w`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1),
          "m": timedelta(minutes=1), "s": timedelta(seconds=1)}
_PATTERN = re.compile(r"^(\d{1,6})([wdhms])$")


def parse_duration(text: str) -> timedelta:
    """`7d` -> 7 days. Raises ValueError with the accepted forms."""
    match = _PATTERN.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"`{text[:60]}` is not a duration: use a positive number and a unit, like 30m, 12h, 7d or 2w")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_duration(value: timedelta) -> str:
    """The largest unit that divides exactly: 7 days -> `1w`, 36 hours -> `36h`."""
    seconds = int(value.total_seconds())
    for unit, size in _UNITS.items():
        step = int(size.total_seconds())
        if seconds % step == 0:
            return f"{seconds // step}{unit}"
    return f"{seconds}s"

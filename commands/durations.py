"""Durations as people type them: `30m`, `12h`, `7d`, `2w` (and `s`, where a caller allows it)."""

from __future__ import annotations

import re
from datetime import timedelta

UNITS: dict[str, int] = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}  # seconds, largest first
MAX_DURATION = timedelta(days=3650)
EXAMPLES = "`30m`, `12h`, `7d` or `2w`"
_PATTERN = re.compile(r"([0-9]+)([a-zA-Z])")


class DurationError(ValueError):
    def __init__(self, problem: str, text: str) -> None:
        super().__init__(
            {
                "format": f"`{text[:60]}` is not a duration: use a whole number and a unit, like {EXAMPLES}",
                "zero": "a duration must be more than zero",
                "too_long": f"`{text[:60]}` is too long; the limit is `{format_duration(MAX_DURATION)}`",
            }[problem]
        )
        self.problem = problem  # "format" | "zero" | "too_long"


def looks_like_duration(text: str, units: str = "wdhm") -> bool:
    match = _PATTERN.fullmatch(text)
    return bool(match and match.group(2).lower() in units)


def parse_duration(text: str, units: str = "wdhms") -> timedelta:
    """`7d` -> 7 days. Raises DurationError saying what is wrong."""
    match = _PATTERN.fullmatch(text.strip())
    if not match or match.group(2).lower() not in units:
        raise DurationError("format", text)
    # Compare in seconds first: a huge number would overflow timedelta.
    seconds = int(match.group(1)) * UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise DurationError("zero", text)
    if seconds > MAX_DURATION.total_seconds():
        raise DurationError("too_long", text)
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The largest unit that divides exactly: 14 days -> `2w`, 36 hours -> `36h`."""
    seconds, rest = divmod(value, timedelta(seconds=1))
    if rest or seconds <= 0:
        raise ValueError(f"{value!r} isn't a positive whole number of seconds")
    unit = next(u for u, size in UNITS.items() if seconds % size == 0)
    return f"{seconds // UNITS[unit]}{unit}"

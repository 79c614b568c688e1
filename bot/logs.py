"""Structured logs: JSON lines when not on a terminal, readable lines when on one.

Every line passes a redaction filter on the handler first, so no token, key, SAS signature or email
address reaches the log whichever library wrote it; a request id bound to the current task (a click,
a job) is added to each line that does not name one itself.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
REDACTED = "[redacted]"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("amlbot_request_id", default=None)

# What may never be written, whatever logged it: (pattern, replacement).
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+"), REDACTED),  # Slack bot, user, app-config tokens
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), REDACTED),  # Slack app-level tokens
    (re.compile(r"(AccountKey=)[^;\s'\"]+", re.IGNORECASE), r"\1" + REDACTED),
    (re.compile(r"(\bsig=)[^&\s'\"]+", re.IGNORECASE), r"\1" + REDACTED),  # SAS signatures
    (re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1" + REDACTED),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"), "[email]"),  # people beyond Slack ids
)


def bind(request_id: str | None) -> None:
    """Name the request the current task works on; lines logged from it (and tasks it starts) carry it."""
    _request_id.set(request_id)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v, secrets) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Rewrites each record in place: the message (arguments merged in), the extras and the traceback."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        # Known secret values (the configured token, signing secret, audit key) go whatever their shape.
        self.secrets = tuple(s for s in secrets if s and len(s) >= 8)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, _redact_value(value, self.secrets))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if getattr(record, "request_id", None) is None and _request_id.get():
            record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def _level(name: str) -> tuple[int, str | None]:
    """The level AMLBOT_LOG_LEVEL names, or INFO with a complaint: a typo must not stop the bot."""
    level = logging.getLevelName(name.strip().upper())
    if isinstance(level, int):
        return level, None
    return logging.INFO, f"AMLBOT_LOG_LEVEL={name!r} is not a log level (DEBUG, INFO, WARNING, ERROR): using INFO"


def handler(stream: Any = None, secrets: Iterable[str | None] = ()) -> logging.Handler:
    stream = stream or sys.stderr
    result = logging.StreamHandler(stream)
    if stream.isatty():
        result.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        result.setFormatter(JsonFormatter())
    result.addFilter(RedactingFilter(secrets))
    return result


def configure(level: str, secrets: Iterable[str | None] = ()) -> None:
    number, complaint = _level(level)
    logging.basicConfig(level=number, handlers=[handler(secrets=secrets)], force=True)
    if complaint:
        logging.getLogger(__name__).warning(complaint)

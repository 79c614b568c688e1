"""Why a delivery is refused, decided on its raw bytes (bot.rejections.rejection)."""

from __future__ import annotations

import math
import time

import pytest

from bot.rejections import rejection
from sandbox.standins.slack_signing import sign

SECRET = "s3cret"
BODY = b"command=%2Faml&text=help"


def _headers(timestamp: int | str | None, signature: str | None) -> dict[str, str]:
    headers = {}
    if timestamp is not None:
        headers["X-Slack-Request-Timestamp"] = str(timestamp)
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    return headers


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("signed", None),
        ("no secret configured", "no signing secret"),
        ("no headers", "unsigned"),
        ("no signature", "unsigned"),
        ("timestamp not a number", "bad timestamp"),
        ("stale", "stale"),
        ("from the future", "stale"),
        ("another secret", "bad signature"),
        ("body not UTF-8", "bad signature"),
    ],
)
def test_each_refusal_has_its_reason(case: str, expected: str | None) -> None:
    now = math.ceil(time.time())
    body, secret, headers = BODY, SECRET, _headers(now, sign(SECRET, BODY, now))
    if case == "no secret configured":
        secret = ""
    elif case == "no headers":
        headers = {}
    elif case == "no signature":
        headers = _headers(now, None)
    elif case == "timestamp not a number":
        headers = _headers("soon", sign(SECRET, BODY, now))
    elif case in ("stale", "from the future"):
        then = now - 301 if case == "stale" else now + 301
        headers = _headers(then, sign(SECRET, BODY, then))
    elif case == "another secret":
        headers = _headers(now, sign("other", BODY, now))
    elif case == "body not UTF-8":
        body = b"\xff\xfe"
        headers = _headers(now, "v0=" + "0" * 64)
    assert rejection(secret, body, headers) == expected

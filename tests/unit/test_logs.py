"""Logs: one JSON object per line, with the request id, and nothing secret or personal in it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot import logs

TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SAS_URL = "https://acct.blob.core.windows.net/exports/R-ABCD2345.zip?sv=2024-08-04&sp=r&se=2030-01-01&sig=Zm9vYmFyYmF6%2Bqux%3D"
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through amlbot's handler into a buffer (not a terminal: JSON)."""
    stream = io.StringIO()
    logger = logging.getLogger(f"amlbot.test.{id(stream)}")
    logger.handlers = [logs.handler(stream, secrets=[SIGNING_SECRET])]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.handlers = []


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_event_is_one_json_line_with_its_fields(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("card update failed\nsecond line", extra={"request_id": "R-ABCD2345", "error": "ratelimited"})
    logger.warning("worker %s", "started")
    assert len(stream.getvalue().splitlines()) == 2
    first, second = lines(stream)
    assert first["message"] == "card update failed\nsecond line"
    assert first["request_id"] == "R-ABCD2345" and first["error"] == "ratelimited"
    assert first["level"] == "info" and first["logger"] == logger.name and "time" in first
    assert second["message"] == "worker started" and second["level"] == "warning"


def test_tokens_keys_signatures_and_emails_never_reach_the_log(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("client with %s", TOKEN)
    logger.info("link %s", SAS_URL, extra={"link": SAS_URL, "nested": {"who": ["alice.smith@contoso.com"]}})
    logger.info(f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net")
    logger.info("headers", extra={"headers": {"Authorization": "Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl"}})
    logger.info("secret %s and app token xapp-1-A0AMLBOT01-123-abcdef", SIGNING_SECRET)
    text = stream.getvalue()
    for secret in (TOKEN, ACCOUNT_KEY, "Zm9vYmFyYmF6", "alice.smith", "contoso.com", "eyJhbGciOi", SIGNING_SECRET, "xapp-1"):
        assert secret not in text
    out = lines(stream)
    assert out[1]["link"].startswith("https://acct.blob.core.windows.net/exports/R-ABCD2345.zip?sv=")  # the rest stays useful
    assert out[1]["link"].endswith("sig=[redacted]") and out[1]["nested"] == {"who": ["[email]"]}
    assert "AccountName=acct;AccountKey=[redacted];EndpointSuffix" in out[2]["message"]
    assert out[3]["headers"] == {"Authorization": "Bearer [redacted]"}


def test_a_traceback_is_redacted_too(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise RuntimeError(f"upload to {SAS_URL} failed for bob@example.org")
    except RuntimeError:
        logger.exception("job failed", extra={"request_id": "R-ABCD2345"})
    [entry] = lines(stream)
    assert "RuntimeError" in entry["exception"] and "sig=[redacted]" in entry["exception"]
    assert "Zm9vYmFyYmF6" not in stream.getvalue() and "bob@example.org" not in stream.getvalue()


def test_slack_ids_and_request_ids_are_kept() -> None:
    text = "U0AMLBOT1 approved R-ABCD2345 in C0AMLBOT1 (<@UAPP00001>)"
    assert logs.redact(text) == text


async def test_the_bound_request_id_goes_on_lines_that_name_none(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured

    async def job() -> None:
        logs.bind("R-JOBJOB22")
        logger.warning("lease lost")
        logger.warning("other", extra={"request_id": "R-EXPLICIT"})

    await asyncio.create_task(job())  # a task of its own, as each job and each Slack delivery runs
    logger.info("outside")
    assert [entry.get("request_id") for entry in lines(stream)] == ["R-JOBJOB22", "R-EXPLICIT", None]


def test_the_level_comes_from_the_environment() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("warning")
        assert root.level == logging.WARNING
        logs.configure("LOUD")  # a typo falls back to INFO and says so, rather than stopping the bot
        assert root.level == logging.INFO
    finally:
        root.handlers, root.level = saved


def test_on_a_terminal_lines_are_readable_but_still_redacted() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    record = logging.LogRecord("amlbot", logging.INFO, __file__, 1, "token %s", (TOKEN,), None)
    target = logs.handler(stream)
    target.handle(record)
    assert stream.getvalue().rstrip().endswith("INFO amlbot: token [redacted]")

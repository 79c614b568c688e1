"""`amlbot doctor` prints its table first and quietly: the Azure SDK's request logs only with --verbose."""

from __future__ import annotations

import logging

import pytest

from bot import doctor
from bot.settings import Settings


async def _noisy(settings: Settings) -> list[doctor.Check]:
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").info("Request URL: 'https://management.azure.com/…'")
    logging.getLogger("amlbot.usergroups").warning("usergroup lookup failed")
    return [doctor.Check("config", True, "config.yml parses")]


@pytest.mark.parametrize("verbose", [False, True])
def test_the_table_comes_first_and_sdk_logs_only_when_verbose(verbose: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [Recorder()])  # restored after the test, for every other test
    monkeypatch.setattr(root, "level", logging.INFO)
    monkeypatch.setattr(doctor, "diagnose", _noisy)  # the checks themselves are tested in tests/e2e/test_doctor.py
    monkeypatch.setattr("builtins.print", lambda text, **_: said.append(text))
    assert doctor.main(Settings(), verbose=verbose) == 0, said
    table = next(i for i, line in enumerate(said) if "1 of 1 checks passed" in line)
    if verbose:
        assert any("Request URL" in line for line in said[:table])  # as it happens
    else:
        assert table == 0, said
        assert not any("Request URL" in line for line in said)  # first, and quiet
        assert said[1:] == ["usergroup lookup failed"]  # a warning is never lost: it follows the table

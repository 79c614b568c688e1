"""The Azure stand-in as tests use it: SDKs pointed at it, and checked against the real service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from sandbox.standins.azure import AzureStandIn, standin_environment
from tests.contract.checker import violations


@asynccontextmanager
async def checked_standin(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> AsyncIterator[AzureStandIn]:
    """An ``AzureStandIn(**kwargs)`` this test's SDK clients talk to, checked on the way out."""
    async with AzureStandIn(**kwargs) as standin:
        use_standin(standin, monkeypatch)
        yield standin
        assert_like_the_real_service(standin)


def assert_like_the_real_service(standin: AzureStandIn) -> None:
    """The stand-in had no bug of its own, and every answer it gave has the real service's shape."""
    assert not standin.errors, "stand-in bugs:\n" + "\n".join(standin.errors)
    problems = violations(standin.exchanges)
    assert not problems, "answers unlike the real service's:\n" + "\n".join(problems)


def use_standin(standin: AzureStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point this test's SDK clients at ``standin``, undone after the test; that includes
    ``AZUREML_CURRENT_CLOUD``, which MLClient writes process-wide."""
    for name, value in standin_environment(standin).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)

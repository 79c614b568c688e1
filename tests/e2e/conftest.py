from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Harness, start_harness, stop_harness
from tests.support.azurite import azurite


@pytest.fixture(scope="session")
def azurite_connection() -> Iterator[str]:
    with azurite() as connection:
        yield connection


@pytest.fixture
async def harness(tmp_path: Path, azurite_connection: str) -> AsyncIterator[Harness]:
    running = await start_harness(tmp_path, azurite_connection)
    yield running
    await stop_harness(running)

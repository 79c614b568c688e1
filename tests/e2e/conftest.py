from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.contract.checker import GRAPH_SHAPES, violations
from tests.contract.standin import checked_standin
from tests.e2e.harness import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, Harness, start_harness, stop_harness
from tests.standins.azure.server import AzureStandIn
from tests.standins.azure.tls import certificates
from tests.standins.graph import GraphStandIn
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


@pytest.fixture
async def azure(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AzureStandIn]:
    """The Azure control-plane stand-in, seeded with the harness's `dev` workspace."""
    async with checked_standin(monkeypatch) as standin:
        standin.state.add_workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
        yield standin


@pytest.fixture
async def graph(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GraphStandIn]:
    """Microsoft Graph's users API, with nobody in the directory until a test adds them."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates().bundle_path))
    async with GraphStandIn() as standin:
        yield standin
        problems = violations(standin.exchanges, GRAPH_SHAPES)
        assert not problems, "Graph answers unlike the real service's:\n" + "\n".join(problems)


@pytest.fixture
async def azure_harness(
    tmp_path: Path, azurite_connection: str, azure: AzureStandIn, graph: GraphStandIn
) -> AsyncIterator[Harness]:
    running = await start_harness(tmp_path, azurite_connection, azure, graph)
    yield running
    await stop_harness(running)

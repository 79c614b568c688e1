from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from commands.azure import retry
from sandbox.standins.azure.server import AzureStandIn
from sandbox.standins.azure.state import AZURITE_ACCOUNT
from sandbox.standins.azure.tls import certificates
from sandbox.standins.azurite import azurite
from sandbox.standins.graph import GraphStandIn
from tests.contract.checker import GRAPH_SHAPES, violations
from tests.contract.standin import checked_standin
from tests.e2e.harness import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, Harness, Mode, start_harness, stop_harness
from tests.support.storage_proxy import StorageFaultProxy


@pytest.fixture(scope="session")
def azurite_connection() -> Iterator[str]:
    with azurite() as connection:
        yield connection


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_modes: run the test over HTTP and again in Socket Mode")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A test marked both_modes runs twice: Slack reaching the bot by signed HTTP, then over Socket Mode.
    if metafunc.definition.get_closest_marker("both_modes") and "slack_mode" in metafunc.fixturenames:
        metafunc.parametrize("slack_mode", ["http", "socket"], indirect=True)


def logged(caplog: pytest.LogCaptureFixture, logger: str, message: str) -> int:
    """How many times the bot's `logger` has logged `message` in this test."""
    return sum(1 for record in caplog.records if record.name == logger and record.getMessage() == message)


@pytest.fixture
def duplicates_ignored(caplog: pytest.LogCaptureFixture, harness: Harness) -> Callable[[int], Awaitable[int]]:
    """How many deliveries were dropped as copies, once at least `expected` have been. A copy is
    logged when its claim finds the key taken (a command's or a click's after its 200, an event's
    before it), so the count is proof that each copy was looked at, not merely not acted on yet."""
    caplog.set_level(logging.INFO, logger="bot.deliveries")

    def count() -> int:
        return logged(caplog, "bot.deliveries", "duplicate delivery ignored")

    async def counted(expected: int) -> int:
        await harness.slack.wait_for(lambda: count() >= expected, description=f"{expected} copies dropped")
        return count()

    return counted


@pytest.fixture
def slack_mode(request: pytest.FixtureRequest) -> Mode:
    """How Slack reaches the bot: "http" unless the test is marked both_modes."""
    return getattr(request, "param", "http")


@pytest.fixture
async def harness(tmp_path: Path, azurite_connection: str, slack_mode: Mode) -> AsyncIterator[Harness]:
    running = await start_harness(tmp_path, azurite_connection, mode=slack_mode)
    yield running
    await stop_harness(running)


@pytest.fixture
async def azure(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AzureStandIn]:
    """The Azure control-plane stand-in, seeded with the harness's `dev` workspace."""
    async with checked_standin(monkeypatch) as standin:
        # Its storage account is Azurite's: the account the bot's connection string names.
        standin.state.add_workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, storage_account_name=AZURITE_ACCOUNT)
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


@pytest.fixture
def fast_storage_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production retry policy (5 tries, exponential), its waits scaled down ~100x.
    `AMLBOT_AZURE_RETRY_BACKOFF` is read once at import, so the policy's settings are scaled here."""
    monkeypatch.setitem(retry._STORAGE_BACKOFF, "initial_backoff", 0.01)
    monkeypatch.setitem(retry._STORAGE_BACKOFF, "increment_base", 0.05)
    monkeypatch.setitem(retry._STORAGE_BACKOFF, "random_jitter_range", 0)


@pytest.fixture
async def proxy(azurite_connection: str) -> AsyncIterator[StorageFaultProxy]:
    async with StorageFaultProxy(azurite_connection) as running:
        yield running


@pytest.fixture
async def proxied(tmp_path: Path, proxy: StorageFaultProxy, fast_storage_retries: None) -> AsyncIterator[Harness]:
    """The bot (and the test's own seeding) reaching Azurite only through the fault proxy."""
    running = await start_harness(tmp_path, proxy.connection_string)
    yield running
    await stop_harness(running)

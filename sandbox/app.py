"""Starts the sandbox: Azurite, the Azure ML stand-in with the demo workspace, the real bot, and the
console that plays Slack for it. `run_sandbox(port)` is what `make run` without tokens runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bot.doors import Doors
from bot.server import Bot, assemble, until_signalled, web_app
from bot.settings import Settings, parse_config
from commands.signing import Keyring, SigningKey
from sandbox import demo
from sandbox.console import ConsoleStandIn, command_escapes
from sandbox.parts import (
    FAST_CLIENT_KWARGS,
    MANIFEST,
    AzureStandIn,
    AzuriteUnavailable,
    FakeCredential,
    GraphStandIn,
    azurite,
    free_port,
    standin_environment,
)

log = logging.getLogger("amlbot.sandbox")

DEFAULT_PORT = 3000


@dataclass
class Sandbox:
    url: str  # the console, to open in a browser
    console: ConsoleStandIn
    azure: AzureStandIn
    bot: Bot
    storage_connection_string: str
    home: Path  # the bot's database, gone when the sandbox stops


class PortInUse(Exception):
    pass


@contextlib.contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    """The Azure SDKs read these process-wide (the stand-in's CA; MLClient writes its cloud name)."""
    keys = {*values, "AZUREML_CURRENT_CLOUD"}
    saved = {key: os.environ.get(key) for key in keys}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check_port(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise PortInUse(f"port {port} is in use: start the sandbox on another one, e.g. PORT={port + 1} make run") from None


@contextlib.asynccontextmanager
async def running_sandbox(port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> AsyncIterator[Sandbox]:
    """Everything started and seeded; stopped, and forgotten, on exit."""
    _check_port(host, port)
    with tempfile.TemporaryDirectory(prefix="amlbot-sandbox-") as home, azurite() as connection:
        azure, graph = AzureStandIn(), GraphStandIn()
        await azure.start()
        await graph.start()
        try:
            with _environment(standin_environment(azure)):
                workspace = await asyncio.to_thread(demo.seed, azure.state, connection)
                demo.seed_directory(graph)
                log.info("demo workspace seeded", extra={"workspace": workspace.name})
                async with _console(port, host) as console, _bot(console, azure, graph, connection, Path(home)) as bot:
                    yield Sandbox(console.root_url, console, azure, bot, connection, Path(home))
        finally:
            await graph.stop()
            await azure.stop()


@contextlib.asynccontextmanager
async def _console(port: int, host: str) -> AsyncIterator[ConsoleStandIn]:
    people = demo.PEOPLE
    console = ConsoleStandIn(
        team_id=demo.TEAM,
        team_domain=demo.TEAM_DOMAIN,
        channels={cid: {"name": name, "is_private": False} for cid, name in demo.CHANNELS.items()},
        roles={p.id: p.role for p in people},
        switchable=[p.id for p in people if p.switchable],
        suggestions=list(demo.SUGGESTIONS),
        should_escape=command_escapes(MANIFEST),
        host=host,
        port=port,
    )
    for person in people:
        console.add_user(person.id, person.name, real_name=person.real_name, email=person.email)
    await console.start()
    try:
        yield console
    finally:
        await console.stop()


@contextlib.asynccontextmanager
async def _bot(
    console: ConsoleStandIn, azure: AzureStandIn, graph: GraphStandIn, connection: str, home: Path
) -> AsyncIterator[Bot]:
    """The real bot, configured as an operator would configure it, pointed at the stand-ins."""
    secret = secrets.token_hex(16)
    settings = Settings(
        slack_bot_token="xoxb-sandbox",
        slack_signing_secret=secret,
        slack_app_token=None,
        slack_api_url=console.url,
        amlbot_database_url=f"sqlite:///{home / 'amlbot.db'}",
        amlbot_audit_key=demo.AUDIT_KEY,
        amlbot_worker="inline",  # the worker needs the stand-ins' doors, which only this process has
    )
    config = parse_config(demo.config(connection, azure.url, graph.url), "sandbox config")
    doors = Doors(config.workspaces, credential=FakeCredential(), client_kwargs=FAST_CLIENT_KWARGS,
                  graph_endpoint=config.graph_endpoint)
    bot = assemble(settings, config, Keyring(SigningKey.parse(demo.AUDIT_KEY)), doors)
    bot.worker.poll = 0.5  # the timers (expiry, cooling-off) tick often; approvals wake it at once
    runner = web.AppRunner(web_app(bot), access_log=None, shutdown_timeout=5)
    await runner.setup()
    bot_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", bot_port).start()
    console.connect(f"http://127.0.0.1:{bot_port}/slack/events", secret)
    try:
        yield bot
    finally:
        await runner.cleanup()


PUBLIC_KEY = SigningKey.parse(demo.AUDIT_KEY).public.text  # what `amlbot audit public-key` prints here


def banner(sandbox: Sandbox) -> str:
    url = sandbox.url.replace("127.0.0.1", "localhost")
    return f"""
amlbot sandbox: the real bot, a Slack-like console, and local stand-ins for Azure. No accounts.

  Open  {url}

  Workspace `demo`: experiments churn, fraud and forecast (runs by Alice, Bob and Riley), models
  churn and fraud, computes cpu-cluster and gpu-a100 (idle) and cpu-busy, endpoints churn-online
  and fraud-batch. Files live in Azurite; export links download from it.

  Try first, as Riley (requester), in #ml-ops:
    /aml export run churn-train-01    then act as Avery (approver), press Approve, open the link
    /aml delete experiment fraud      needs two approvers: Avery, then Blake; read the receipt
    /aml help                         what the person you act as may run
  As Casey (on-call): /aml cleanup computes --idle 7d

  Receipts verify offline with the public key alone:
    amlbot audit verify-receipt --public-key {PUBLIC_KEY} <file>
  Ctrl-C stops everything; nothing is kept.
"""


async def run_sandbox(port: int = DEFAULT_PORT) -> None:
    """Start the sandbox, print where to open it, and run until Ctrl-C or SIGTERM."""
    async with running_sandbox(port) as sandbox:
        print(banner(sandbox), flush=True)
        await until_signalled()
        print("stopping the sandbox…", flush=True)


def main(port: int | None = None) -> int:
    """Entry point for `python -m sandbox` and `amlbot sandbox`."""
    from bot.logs import configure

    if port is None:
        port = int(os.environ.get("PORT", DEFAULT_PORT))
    # The console is the show: the bot logs only what goes wrong unless asked for more.
    configure(os.environ.get("AMLBOT_LOG_LEVEL", "WARNING"))
    try:
        asyncio.run(run_sandbox(port))
    except (PortInUse, AzuriteUnavailable) as error:
        print(f"amlbot sandbox cannot start: {error}", file=sys.stderr)
        return 2
    return 0

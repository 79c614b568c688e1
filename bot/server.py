"""The process: Slack's HTTP mode (or Socket Mode), /healthz, /readyz, /metrics and the worker, started together
(the worker in a child process, see bot/supervisor.py, unless AMLBOT_WORKER=inline); or the worker alone
(`amlbot worker`).

SIGTERM (or SIGINT) stops taking jobs at once; running jobs get AMLBOT_SHUTDOWN_GRACE seconds to
reach the end of a step, then hand their leases back so the next process resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.internals import parse_body
from sqlalchemy import text

from bot import metrics
from bot.app import build_app, slack_client
from bot.audit import AuditEntry
from bot.contexts import Contexts
from bot.deliveries import AckGate
from bot.doors import Doors
from bot.group_commit import GroupCommit
from bot.listeners.home import HomeTab
from bot.people import SlackPeople
from bot.publisher import Publisher
from bot.rejections import Rejections, rejection
from bot.requests import Desk, Requests
from bot.settings import AppConfig, Settings
from bot.slack_http import close_session, shared_session
from bot.store.store import Store
from bot.supervisor import WorkerProcess
from bot.usergroups import GroupResolver
from bot.worker import Worker
from commands.signing import Keyring

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

log = logging.getLogger(__name__)

# What requests need beyond the ack: the Prometheus counters, every operation, with the storage SDKs
# and the archive code. Loaded in a thread once the server answers, so that neither the start nor the
# event loop waits for them (a request that needs them meanwhile waits for that import alone). Not
# the Azure ML SDK: its seconds of import would slow every ack in the first seconds after a start.
PRELOAD = ("bot.instruments", "commands.operations.registry")
READY_TIMEOUT = 3.0  # seconds the database may take to answer a readiness probe


@dataclass
class Services:
    """The process's long-lived parts, opened once and closed when it stops."""

    settings: Settings
    config: AppConfig
    store: Store
    doors: Doors
    groups: GroupResolver
    wake_worker: asyncio.Event = field(default_factory=asyncio.Event)  # set when a job may start now


@dataclass
class Bot:
    services: Services
    app: AsyncApp
    requests: Requests
    publisher: Publisher
    worker: Worker
    rejections: Rejections  # deliveries refused for their signature, audited in aggregate
    # The deliveries on their way to their HTTP answer: work after an ack waits for them. The one
    # the app's listeners wait on (build_app), so no default: a second gate would count in vain.
    acks: AckGate
    worker_task: asyncio.Task[None] | None = None  # while it (or its child process) runs; /readyz looks at it
    worker_process: WorkerProcess | None = None  # the child that runs the jobs, unless they run inline
    # Set once the HTTP server listens: the worker's child process is started after it.
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    # Loads, once the server listens, the code requests and jobs need (PRELOAD): not ready until it has.
    warming: asyncio.Task[None] | None = None


def assemble(settings: Settings, config: AppConfig, keyring: Keyring, doors: Doors | None = None) -> Bot:
    """The bot's parts; `doors` lets tests point the Azure clients at local stand-ins."""
    store = Store.open(settings.amlbot_database_url, keyring)
    client = slack_client(settings.slack_bot_token, settings.slack_api_url)
    services = Services(
        settings=settings,
        config=config,
        store=store,
        doors=doors or Doors(config.workspaces, graph_endpoint=config.graph_endpoint),
        groups=GroupResolver(client, config.policy),
    )
    publisher = Publisher(client, store, config.policy, SlackPeople(client))
    contexts = Contexts(config, services.doors)
    refusals: GroupCommit[dict[str, Any], AuditEntry] = GroupCommit(lambda events: store.audit_all(events))
    requests = Requests(Desk(config, store, services.groups, publisher, contexts, services.wake_worker, refusals))
    acks = AckGate()
    app = build_app(settings, store, requests, publisher, HomeTab(config, store, services.groups, publisher), acks)
    worker = Worker(
        config, store, publisher, contexts, requests, services.wake_worker,
        concurrency=settings.amlbot_worker_concurrency,
        lease=timedelta(seconds=settings.amlbot_lease_seconds),
        grace=settings.amlbot_shutdown_grace,
    )
    return Bot(services, app, requests, publisher, worker, Rejections(store), acks)


@contextlib.asynccontextmanager
async def running_worker(bot: Bot, inline: bool = True) -> AsyncIterator[None]:
    """The worker runs while inside, here or (not `inline`) in a child process; on leaving it drains
    (see Worker.stop) and the doors close. Slack's session opens first: Bolt hands each request a client
    on the app client's session as it is then, so one opened later would leave the early ones without."""
    shared_session(bot.publisher.client)
    if inline:
        task = bot.worker_task = asyncio.create_task(bot.worker.run())
    else:
        bot.worker_process = WorkerProcess(
            bot.services.wake_worker, bot.worker.grace, after=bot.listening, nice=bot.services.settings.amlbot_worker_nice
        )
        task = bot.worker_task = asyncio.create_task(bot.worker_process.run())
    try:
        yield
    finally:
        _stop_worker(bot)
        await task
        await bot.services.doors.close()
        await close_session(bot.publisher.client)
        bot.services.store.close()


# Objects Bolt reads while building a request's context: another JSON type would make it raise (a 500).
_OBJECTS = ("container", "event", "view")
_IDS_OR_OBJECTS = ("user", "channel", "team")  # Slack sends these as an id or as an object


def well_formed(raw: bytes, content_type: str | None) -> bool:
    """A body Bolt can take without raising: a JSON object (or form) whose objects are objects."""
    try:
        body = parse_body(raw.decode("utf-8"), content_type)  # as Bolt parses it
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return False
    if not isinstance(body, dict):
        return False
    if not all(isinstance(body.get(key), dict | None) for key in _OBJECTS):
        return False
    if not all(isinstance(body.get(key), dict | str | None) for key in _IDS_OR_OBJECTS):
        return False
    return "actions" not in body or _actions_well_formed(body)


def _actions_well_formed(body: dict[str, Any]) -> bool:
    # Bolt takes body["actions"][0] for every middleware, and matches block actions on its action_id.
    actions = body["actions"]
    if not isinstance(actions, list) or not actions or not all(isinstance(a, dict) for a in actions):
        return False
    return body.get("type") != "block_actions" or all(isinstance(a.get("action_id"), str) for a in actions)


def web_app(bot: Bot) -> web.Application:
    async def events(request: web.Request) -> web.Response:
        raw = await request.read()
        # From here to its answer, work after other deliveries' acks waits (a body still on its way
        # does not count: a slow sender must not hold the follow-ups back).
        with bot.acks.answering():
            return await answer(request, raw)

    async def answer(request: web.Request, raw: bytes) -> web.Response:
        # Forged, stale or replayed: counted, never acted on, and no database write of its own.
        refused = rejection(bot.services.settings.slack_signing_secret, raw, request.headers)
        if refused:
            bot.rejections.record(refused, request.remote or "")
            return web.Response(status=401)
        if not well_formed(raw, request.content_type):
            return web.Response(status=400)  # signed, yet not a payload Slack sends: nothing to act on
        bolt_response = await bot.app.async_dispatch(await to_bolt_request(request))
        if bolt_response.status == 401:  # Bolt checks again: a delivery that went stale meanwhile
            bot.rejections.record("stale", request.remote or "")
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def worker_context(_: web.Application) -> AsyncIterator[None]:
        async with running_worker(bot, inline=bot.services.settings.amlbot_worker == "inline"):
            yield

    application = web.Application()
    application.router.add_post("/slack/events", events)
    application.router.add_get("/healthz", healthz)
    render = metrics.renderer(bot.services.store)

    async def scrape(_: web.Request) -> web.Response:
        body, content_type = await asyncio.to_thread(render)
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def readyz(_: web.Request) -> web.Response:
        problems = await readiness(bot)
        degraded = [] if problems else await asyncio.to_thread(audit_degraded, bot.services.store)
        body = {"ready": not problems, "problems": problems, "degraded": degraded}
        return web.json_response(body, status=503 if problems else 200)

    application.router.add_get("/metrics", scrape)
    application.router.add_get("/readyz", readyz)

    async def rejections_context(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(bot.rejections.run())
        yield
        task.cancel()  # its last act audits what is left of the tally
        with contextlib.suppress(asyncio.CancelledError):
            await task

    application.cleanup_ctx.append(worker_context)
    application.cleanup_ctx.append(rejections_context)  # cleaned up first, while the store is open
    return application


async def readiness(bot: Bot) -> list[str]:
    """Why this replica should not take traffic now; empty when it may."""
    problems = []
    try:
        await asyncio.wait_for(asyncio.to_thread(_ping, bot.services.store), READY_TIMEOUT)
    except Exception as error:  # any failure to answer is unreadiness, said plainly
        problems.append(f"database unreachable: {type(error).__name__}")
    task = bot.worker_task
    if task is None or task.done():
        problems.append("worker not running")
    # An import in a thread holds the GIL for a second or more: traffic waits for it to end, not each ack.
    warming = bot.warming
    if warming is not None and not warming.done():
        problems.append("warming up: loading the code of requests and jobs")
    elif warming is not None and not warming.cancelled() and (failure := warming.exception()) is not None:
        problems.append(f"could not load the code of requests and jobs: {type(failure).__name__}: {failure}")
    return problems


def audit_degraded(store: Store) -> list[str]:
    """What is wrong with the audit chain. It degrades the replica without taking it out of
    service: Slack's requests and the jobs go on, each append records the break, and the operator
    is told here, in the metrics, in the log and by `amlbot doctor`."""
    health = store.audit_health()
    degraded = []
    if health.head_problem:
        degraded.append(f"audit chain: {health.head_problem}; the next entry starts a new signed segment")
    if health.breaks:
        degraded.append(
            f"audit chain: {health.breaks} break(s) recorded, the latest at entry {health.last_break_seq}: "
            "run `amlbot audit verify` and see the README, Security"
        )
    return degraded


def _ping(store: Store) -> None:
    with store.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def serve_http(bot: Bot, host: str, port: int) -> None:
    runner = web.AppRunner(web_app(bot), shutdown_timeout=bot.worker.grace)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bot.listening.set()
    log.info("serving Slack HTTP mode", extra={"host": host, "port": port, "path": "/slack/events"})
    loading = bot.warming = asyncio.create_task(preload())
    await until_signalled()
    loading.cancel()
    await _shut_down(bot, runner)


def socket_mode_handler(bot: Bot, app_token: str, ping_interval: float = 10) -> AsyncSocketModeHandler:
    """Bolt's Socket Mode client for the app: it asks `apps.connections.open` (at SLACK_API_URL) for a
    URL, acks each envelope with what the listener acked, and reconnects when Slack says `disconnect`
    or the connection drops (noticed within `ping_interval` seconds)."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler  # only in Socket Mode

    return AsyncSocketModeHandler(bot.app, app_token, ping_interval=ping_interval)


async def serve_socket_mode(bot: Bot, app_token: str, host: str, port: int) -> None:
    # /healthz and the worker still run over HTTP; Slack's traffic comes over the socket.
    runner = web.AppRunner(web_app(bot), shutdown_timeout=bot.worker.grace)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bot.listening.set()
    handler = socket_mode_handler(bot, app_token)
    await handler.connect_async()
    log.info("connected in Socket Mode")
    loading = bot.warming = asyncio.create_task(preload())
    await until_signalled()
    loading.cancel()
    await handler.close_async()
    await _shut_down(bot, runner)


async def preload() -> None:
    for name in PRELOAD:
        await asyncio.to_thread(importlib.import_module, name)


async def work(bot: Bot, supervised: bool = False) -> None:
    """`amlbot worker`: jobs and timers only; another process takes Slack's requests. `supervised`:
    the child of `amlbot serve`, which nudges it through stdin and whose end closes stdin."""
    async with running_worker(bot):
        log.info("worker started", extra={"owner": bot.worker.owner, "concurrency": bot.worker.concurrency})
        await until_signalled(bot.services.wake_worker if supervised else None)
        log.info("worker shutting down", extra={"owner": bot.worker.owner, "grace_seconds": bot.worker.grace})


def _stop_worker(bot: Bot) -> None:
    bot.worker.stop()
    if bot.worker_process is not None:
        bot.worker_process.stop()


async def _shut_down(bot: Bot, runner: web.AppRunner) -> None:
    _stop_worker(bot)  # jobs start winding down now, while HTTP drains
    log.info("shutting down", extra={"grace_seconds": bot.worker.grace})
    await runner.cleanup()


async def until_signalled(nudged: asyncio.Event | None = None) -> None:
    """Wait for SIGTERM or SIGINT (Ctrl-C); with `nudged`, also for the end of stdin (the parent is
    gone), and set `nudged` for every byte read there."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if nudged is not None:
        wake = nudged

        def read_stdin() -> None:
            if os.read(0, 512):
                wake.set()
            else:
                loop.remove_reader(0)
                log.warning("amlbot serve is gone: stopping")
                stop.set()

        loop.add_reader(0, read_stdin)
    await stop.wait()

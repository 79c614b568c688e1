"""The process: Slack's HTTP mode (or Socket Mode), /healthz, and the worker, started together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.app import build_app, slack_client
from bot.doors import Doors
from bot.flow import Flow, Services
from bot.settings import AppConfig, Settings
from bot.store.store import Store
from bot.usergroups import GroupResolver
from bot.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Bot:
    services: Services
    app: AsyncApp
    flow: Flow
    worker: Worker


def assemble(settings: Settings, config: AppConfig, audit_key: bytes, doors: Doors | None = None) -> Bot:
    """The bot's parts; `doors` lets tests point the Azure clients at local stand-ins."""
    store = Store.open(settings.amlbot_database_url, audit_key)
    client = slack_client(settings.slack_bot_token, settings.slack_api_url)
    services = Services(
        settings=settings,
        config=config,
        store=store,
        doors=doors or Doors(config.workspaces),
        groups=GroupResolver(client, config.policy),
    )
    app, flow = build_app(services, client)
    worker = Worker(flow, concurrency=settings.amlbot_worker_concurrency)
    return Bot(services, app, flow, worker)


def web_app(bot: Bot) -> web.Application:
    async def events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await bot.app.async_dispatch(bolt_request)
        if bolt_response.status == 401:
            # Forged, stale or replayed: recorded, never acted on.
            await asyncio.to_thread(
                bot.services.store.audit, actor="unknown", event="signature.rejected", outcome="refused",
                detail={"remote": request.remote or "", "retry": request.headers.get("X-Slack-Retry-Num")},
            )
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def worker_context(_: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(bot.worker.run(stop))
        yield
        stop.set()
        bot.services.wake_worker.set()
        await task
        await bot.services.doors.close()
        bot.services.store.close()

    application = web.Application()
    application.router.add_post("/slack/events", events)
    application.router.add_get("/healthz", healthz)
    application.cleanup_ctx.append(worker_context)
    return application


async def serve_http(bot: Bot, port: int, host: str = "0.0.0.0") -> None:
    runner = web.AppRunner(web_app(bot), shutdown_timeout=30)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("serving Slack HTTP mode", extra={"port": port, "path": "/slack/events"})
    await _until_signalled()
    await runner.cleanup()


async def serve_socket_mode(bot: Bot, app_token: str, port: int) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    # /healthz and the worker still run over HTTP; Slack's traffic comes over the socket.
    runner = web.AppRunner(web_app(bot))
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    handler = AsyncSocketModeHandler(bot.app, app_token)
    await handler.connect_async()
    log.info("connected in Socket Mode")
    await _until_signalled()
    await handler.close_async()
    await runner.cleanup()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()

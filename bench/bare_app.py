"""The baseline: a bare Bolt AsyncApp on the same aiohttp stack as amlbot, that only acks.

    python -m bench.bare_app PORT SLACK_API_URL

Same adapter (slack_bolt.adapter.aiohttp), same signature check, same `/slack/events` and `/healthz`
routes; no database, no de-duplication, no work after the ack.
"""

from __future__ import annotations

import asyncio
import re
import sys

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bench.common import SIGNING_SECRET


def build(slack_api_url: str) -> web.Application:
    # Like amlbot, it checks its token with auth.test once, on the first request (the stand-in answers).
    client = AsyncWebClient(token="xoxb-bench", base_url=slack_api_url)
    app = AsyncApp(name="bare", signing_secret=SIGNING_SECRET, client=client)  # named as amlbot is: unnamed, Bolt reads inspect.stack()

    @app.command("/aml")
    async def command(ack: AsyncAck) -> None:
        await ack()

    @app.action(re.compile(r"^amlbot\."))
    async def click(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    application = web.Application()
    application.router.add_post("/slack/events", events)
    application.router.add_get("/healthz", healthz)
    return application


async def serve(port: int, slack_api_url: str) -> None:
    runner = web.AppRunner(build(slack_api_url), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))

"""Builds the Bolt AsyncApp: Slack client with retries, de-duplication of Slack's retries, listeners."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.flow import Flow, Services
from bot.listeners import actions, commands
from bot.store.store import Store

log = logging.getLogger(__name__)


def slack_client(token: str | None, base_url: str) -> AsyncWebClient:
    """A Web API client that honours 429 Retry-After and rides out brief outages."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=3),
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def delivery_key(body: dict[str, Any]) -> str | None:
    """What identifies one delivery across Slack's retries: the trigger id of a command or click."""
    trigger = body.get("trigger_id")
    if trigger:
        return f"trigger:{trigger}"
    payload = body.get("payload")
    if isinstance(payload, str):
        try:
            trigger = json.loads(payload).get("trigger_id")
        except (ValueError, AttributeError):
            return None
        return f"trigger:{trigger}" if trigger else None
    return None


def dedupe_middleware(store: Store) -> Callable[..., Awaitable[BoltResponse | None]]:
    async def dedupe(req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:
        key = delivery_key(req.body)
        if key and not await asyncio.to_thread(store.claim_delivery, key):
            log.info("duplicate delivery ignored", extra={"key": key, "retry": req.headers.get("x-slack-retry-num")})
            return BoltResponse(status=200, body="")
        return await next()

    return dedupe


def build_app(services: Services, client: AsyncWebClient) -> tuple[AsyncApp, Flow]:
    settings = services.settings
    app = AsyncApp(
        signing_secret=settings.slack_signing_secret,
        client=client,
        logger=logging.getLogger("slack_bolt"),
    )
    app.middleware(dedupe_middleware(services.store))
    flow = Flow(services, client)
    commands.register(app, flow)
    actions.register(app, flow)
    return app, flow

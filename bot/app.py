"""Builds the Bolt AsyncApp: Slack client with retries and metrics, de-duplication of Slack's retries,
the request id on log lines, listeners."""

from __future__ import annotations

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

from bot import deliveries, listeners, logs, metrics
from bot.deliveries import CLAIM, GATE, AckGate, DeliveryClaims, claimed_after_ack
from bot.listeners.home import HomeTab
from bot.publisher import Publisher
from bot.requests import Requests
from bot.settings import Settings
from bot.store.store import REQUEST_ID, Store


def slack_client(token: str | None, base_url: str) -> AsyncWebClient:
    """A Web API client that honours 429 Retry-After, rides out brief outages, and is measured."""
    return metrics.MeasuredWebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=3),
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def delivery_key(body: dict[str, Any]) -> str | None:
    """What identifies one delivery across Slack's retries: the trigger id of a command or click,
    the event id of an Events API event."""
    if body.get("event_id"):
        return f"event:{body['event_id']}"
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


def dedupe_middleware(store: Store, gate: AckGate) -> Callable[..., Awaitable[BoltResponse | None]]:
    claims = DeliveryClaims(store)

    async def dedupe(req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse | None:
        req.context[GATE] = gate
        key = delivery_key(req.body)
        retry = req.headers.get("x-slack-retry-num")
        if key and claimed_after_ack(key):  # claimed by its listener after its ack (deliveries.first_copy)
            req.context[CLAIM] = (key, retry[0] if retry else None, claims)
        elif key and not await claims.claim(key):
            deliveries.ignored(key, retry[0] if retry else None)
            return BoltResponse(status=200, body="")
        return await next()

    return dedupe


def request_id_of(body: dict[str, Any]) -> str | None:
    """The request a click is about, when its button names one (a malformed body names none)."""
    actions = body.get("actions")
    for action in actions if isinstance(actions, list) else []:
        value = action.get("value") if isinstance(action, dict) else None
        if isinstance(value, str) and REQUEST_ID.fullmatch(value):
            return value
    return None


async def bind_request_id(req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
    # The listener runs in a task started from here: it inherits the binding, this delivery alone.
    logs.bind(request_id_of(req.body))
    return await next()


def build_app(
    settings: Settings, store: Store, requests: Requests, publisher: Publisher, home_tab: HomeTab, gate: AckGate
) -> AsyncApp:
    app = AsyncApp(
        # Named: without a name Bolt takes its caller's file name from inspect.stack(), which resolves
        # the source file of every loaded module (~900 at this point): ~0.1 s of the start.
        name="amlbot",
        signing_secret=settings.slack_signing_secret,
        client=publisher.client,
        logger=logging.getLogger("slack_bolt"),
    )
    app.middleware(metrics.measure_ack)  # first: duplicates are acked too, and timed
    app.middleware(bind_request_id)
    app.middleware(dedupe_middleware(store, gate))
    listeners.register(app, requests, publisher, home_tab)
    return app

"""Slack's Socket Mode, server side, for the Web API stand-in.

What Slack does (docs.slack.dev "Using Socket Mode"; slack_sdk.socket_mode): `apps.connections.open`,
called with the app-level token (xapp-…), answers a one-use WebSocket URL; on connecting, Slack sends
`hello`, then envelopes `{"envelope_id", "type", "payload", "accepts_response_payload"}` of type
`slash_commands`, `interactive` or `events_api`; the app acks each by sending `{"envelope_id"}` back,
with a `payload` where `accepts_response_payload` allows one. A `disconnect` message asks the app to
open a new connection. Here the URL is ws:// on loopback (Slack's is wss://wss-primary.slack.com/link/).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from sandbox.standins.slack_signing import SlackSender

JsonDict = dict[str, Any]
# Slack's reasons for a `disconnect` message: a routine refresh, a warning ahead of one, the app's
# Socket Mode turned off.
DISCONNECT_REASONS = ("refresh_requested", "warning", "link_disabled")


@dataclass
class _Connection:
    socket: web.WebSocketResponse
    request: web.Request
    number: int  # 1 for the first connection the app opened, 2 for the next…


@dataclass
class SocketModeHub:
    """The app's Socket Mode connections: hands out tickets, pushes envelopes, collects acks."""

    app_id: str
    ack_timeout: float = 10.0
    tickets: set[str] = field(default_factory=set)
    acks: list[JsonDict] = field(default_factory=list)  # every ack the app sent, in order
    opened: int = 0  # connections the app has made so far
    _live: list[_Connection] = field(default_factory=list)
    _pending: dict[str, asyncio.Future[JsonDict]] = field(default_factory=dict)
    _changed: asyncio.Condition | None = None

    def link(self, root_url: str) -> str:
        """A fresh one-use URL, as `apps.connections.open` answers."""
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        return f"{root_url.replace('http://', 'ws://', 1)}/link/?ticket={ticket}&app_id={self.app_id}"

    @property
    def connected(self) -> int:
        return len(self._live)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            return web.Response(status=401, text="invalid_ticket")  # (U) a used or made-up ticket
        self.tickets.discard(ticket)
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self.opened += 1
        connection = _Connection(socket, request, self.opened)
        await socket.send_json({
            "type": "hello",
            "num_connections": len(self._live) + 1,
            "debug_info": {"host": "applink-standin", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        })
        self._live.append(connection)
        await self._notify()
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    self._take_ack(json.loads(message.data))
        finally:
            self._live.remove(connection)
            await self._notify()
        return socket

    def _take_ack(self, ack: JsonDict) -> None:
        self.acks.append(ack)
        waiting = self._pending.pop(str(ack.get("envelope_id")), None)
        if waiting is not None and not waiting.done():
            waiting.set_result(ack)

    async def _notify(self) -> None:
        condition = self._condition()
        async with condition:
            condition.notify_all()

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def wait_connected(self, opened: int = 1, timeout: float = 20.0) -> None:
        """Until the app holds a live connection, its `opened`-th or a later one."""
        condition = self._condition()
        async with condition:
            await asyncio.wait_for(
                condition.wait_for(lambda: any(c.number >= opened for c in self._live)), timeout
            )

    async def push(
        self, kind: str, payload: JsonDict, *, accepts_response_payload: bool = False,
        retry_attempt: int = 0, retry_reason: str = "",
    ) -> JsonDict:
        """Send one envelope on the newest live connection and return the app's ack."""
        await self.wait_connected(self.opened)
        envelope: JsonDict = {
            "envelope_id": str(uuid.uuid4()),
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        acked = self._pending[envelope["envelope_id"]] = asyncio.get_running_loop().create_future()
        await self._live[-1].socket.send_json(envelope)
        try:
            return await asyncio.wait_for(acked, self.ack_timeout)
        except TimeoutError:
            self._pending.pop(envelope["envelope_id"], None)
            raise AssertionError(f"the app never acked envelope {envelope['envelope_id']} ({kind})") from None

    async def ask_to_reconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's `disconnect` message on every live connection; the app should open a new one."""
        assert reason in DISCONNECT_REASONS, reason
        for connection in list(self._live):
            await connection.socket.send_json({
                "type": "disconnect", "reason": reason, "debug_info": {"host": "applink-standin"},
            })

    def drop(self) -> None:
        """Cut every live connection at the TCP level, without a close frame (a network failure)."""
        for connection in list(self._live):
            if connection.request.transport is not None:
                connection.request.transport.abort()

    async def close(self) -> None:
        for connection in list(self._live):
            await connection.socket.close()


class SocketModeSender(SlackSender):
    """Delivers what `SlackSender` would POST as a Socket Mode envelope instead: a slash command's form
    fields become a `slash_commands` payload, an interaction's `payload` field an `interactive` one, a
    JSON event an `events_api` one. Answers (200, the ack's payload as JSON, or "") once the app acks;
    signatures and timestamps play no part, as over the socket."""

    def __init__(self, hub: SocketModeHub) -> None:
        super().__init__("", "")
        self.hub = hub

    async def send(
        self, body: bytes, *, timestamp: int | None = None, signature: str | None = None,
        retry_num: int | None = None, retry_reason: str | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> tuple[int, str]:
        if content_type == "application/json":
            ack = await self.hub.push("events_api", json.loads(body), retry_attempt=retry_num or 0,
                                      retry_reason=retry_reason or "")
        else:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
            if "payload" in fields:
                payload = json.loads(fields["payload"])
                # A modal's submission (and an options request) may be answered in the ack; a click may not.
                answerable = payload.get("type") in ("view_submission", "block_suggestion")
                ack = await self.hub.push("interactive", payload, accepts_response_payload=answerable)
            else:
                ack = await self.hub.push("slash_commands", fields, accepts_response_payload=True)
        return 200, json.dumps(ack["payload"]) if "payload" in ack else ""

r"""A reverse proxy in front of Azurite that answers chosen requests with an Azure Storage error.

Azurite has no fault injection; this forwards every request byte for byte (path, query, headers and
body untouched, so Shared Key signatures still verify) and, for the next N requests matching a rule,
answers instead with the error the Blob service sends when it is busy::

    async with StorageFaultProxy(azurite_connection) as proxy:
        proxy.fail_next("POST", r"comp=batch", status=503, times=3, retry_after=1)
        ... BlobServiceClient.from_connection_string(proxy.connection_string) ...
        assert proxy.injected == 3

With `forwarded=True` the request reaches Azurite first and only its answer is replaced: a
response lost on the way back, after the service acted.

It can also keep one request waiting, to act while a job is in the middle of something::

    held = proxy.hold("GET", r"/part-000\.txt$")
    ... await held.reached.wait(); cancel the job; held.release.set() ...

and add a network's round trip to every request (`latency`, seconds), so that what loopback hides
(one request per blob against one request per batch) shows in the bench, or to some requests only
(`slow`: a service slow at one kind of request).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web
from yarl import URL

_HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade", "Content-Length",
    )
)
# Host goes through as sent: Azurite checks a copy's source URL against it (the source is named by
# the address the client used, this proxy's).
_CODES = {500: "OperationTimedOut", 503: "ServerBusy", 429: "TooManyRequests"}


@dataclass
class _Rule:
    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    retry_after: int | None
    code: str
    forwarded: bool


@dataclass
class Hold:
    """The next request matching `method` and `pattern` waits, once `reached` is set, until `release` is."""

    method: str
    pattern: re.Pattern[str]
    reached: asyncio.Event
    release: asyncio.Event


@dataclass(frozen=True)
class Exchange:
    method: str
    path_qs: str  # the request's path and query as sent
    status: int
    injected: bool  # answered by the proxy, never reached Azurite
    at: float
    response_bytes: int = 0  # of the body passed back to the client
    request_bytes: int = 0  # of the body the client sent
    agent: str = ""  # the client's User-Agent: the SDK's (the bot, the test) or Azurite's own (checking a copy's source)


def _blob_endpoint(connection_string: str) -> str:
    for part in connection_string.split(";"):
        if part.startswith("BlobEndpoint="):
            return part.split("=", 1)[1].rstrip("/")
    raise ValueError("the connection string names no BlobEndpoint")


class StorageFaultProxy:
    def __init__(self, connection_string: str, host: str = "127.0.0.1", latency: float = 0.0) -> None:
        self._upstream_connection = connection_string
        endpoint = URL(_blob_endpoint(connection_string))
        self._upstream = f"{endpoint.scheme}://{endpoint.host}:{endpoint.port}"
        self._account_path = endpoint.path  # /devstoreaccount1
        self._host = host
        self._latency = latency
        self._rules: list[_Rule] = []
        self._holds: list[Hold] = []
        self._slow: list[tuple[str, re.Pattern[str], float]] = []
        self.exchanges: list[Exchange] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._port = 0

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> Self:
        self._session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=120))
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def connection_string(self) -> str:
        """The upstream connection string with its BlobEndpoint moved to this proxy."""
        endpoint = f"http://{self._host}:{self._port}{self._account_path}"
        parts = [p for p in self._upstream_connection.split(";") if p and not p.startswith("BlobEndpoint=")]
        return ";".join([*parts, f"BlobEndpoint={endpoint}"]) + ";"

    # ---- faults --------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int = 503,
        times: int = 1,
        retry_after: int | None = None,
        code: str | None = None,
        forwarded: bool = False,
    ) -> None:
        """Answer the next `times` requests whose method matches and whose path-and-query matches
        `path_regex` (re.search) with `status`, an Azure Storage error body and `Retry-After`;
        `forwarded`: after sending each to Azurite, whose answer is dropped."""
        self._rules.append(
            _Rule(method.upper(), re.compile(path_regex), status, times, retry_after, code or _CODES.get(status, "Error"), forwarded)
        )

    def slow(self, method: str, path_regex: str, seconds: float) -> None:
        """Every request from now on whose method and path-and-query match waits `seconds` more."""
        self._slow.append((method.upper(), re.compile(path_regex), seconds))

    def hold(self, method: str, path_regex: str) -> Hold:
        """Keep the next request whose method and path-and-query match waiting until released."""
        held = Hold(method.upper(), re.compile(path_regex), asyncio.Event(), asyncio.Event())
        self._holds.append(held)
        return held

    @property
    def injected(self) -> int:
        return sum(1 for e in self.exchanges if e.injected)

    def pending(self) -> int:
        """Faults armed but not yet served."""
        return sum(rule.remaining for rule in self._rules)

    # ---- plumbing ------------------------------------------------------------------------------

    def _fault_for(self, method: str, path_qs: str) -> _Rule | None:
        for rule in self._rules:
            if rule.remaining > 0 and rule.method == method and rule.pattern.search(path_qs):
                rule.remaining -= 1
                return rule
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path_qs = request.raw_path
        body = await request.read()
        delay = self._latency + sum(s for m, pattern, s in self._slow if m == request.method and pattern.search(path_qs))
        if delay:
            await asyncio.sleep(delay)
        held = next((h for h in self._holds if h.method == request.method and h.pattern.search(path_qs)), None)
        if held is not None:
            self._holds.remove(held)
            held.reached.set()
            await held.release.wait()
        rule = self._fault_for(request.method, path_qs)
        if rule is not None and rule.forwarded:
            async with self._forward(request, path_qs, body) as upstream:
                await upstream.read()
        if rule is not None:
            self.exchanges.append(Exchange(request.method, path_qs, rule.status, True, time.monotonic()))
            headers = {"x-ms-error-code": rule.code, "x-ms-request-id": str(uuid.uuid4())}
            if rule.retry_after is not None:
                headers["Retry-After"] = str(rule.retry_after)
            xml = (
                '<?xml version="1.0" encoding="utf-8"?><Error>'
                f"<Code>{rule.code}</Code><Message>Injected by the test proxy.</Message></Error>"
            )
            return web.Response(status=rule.status, text=xml, content_type="application/xml", headers=headers)
        async with self._forward(request, path_qs, body) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    response.headers.add(key, value)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            passed = 0
            async for chunk in upstream.content.iter_chunked(1024 * 1024):
                passed += len(chunk)
                await response.write(chunk)
            await response.write_eof()
            agent = request.headers.get("User-Agent", "")
            self.exchanges.append(Exchange(request.method, path_qs, upstream.status, False, time.monotonic(), passed, len(body), agent))
            return response

    def _forward(self, request: web.Request, path_qs: str, body: bytes) -> Any:
        """The request sent on to Azurite, as it came."""
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        return self._session.request(
            request.method,
            URL(self._upstream + path_qs, encoded=True),
            headers=headers,
            data=body if body else None,
            skip_auto_headers=("Content-Type", "User-Agent", "Accept-Encoding", "Accept"),
            allow_redirects=False,
        )

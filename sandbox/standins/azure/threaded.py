"""An aiohttp server on its own thread and event loop, the base of every Azure stand-in.

Its own loop means the synchronous Azure SDKs can call it directly from a test, even from inside a
running event loop, without deadlocking it.
"""

from __future__ import annotations

import asyncio
import socket
import threading

from aiohttp import web

from sandbox.standins.azure.tls import certificates


class ThreadedServer:
    """Serve ``_handle`` on ``host:port`` (0: a free port), HTTPS with the stand-in CA when ``tls``."""

    def __init__(self, *, tls: bool, host: str = "127.0.0.1", port: int = 0, name: str = "standin") -> None:
        self.tls = tls
        self._host, self._port, self._name = host, port, name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """Base URL, no trailing slash."""
        if not self._port:
            raise RuntimeError("stand-in not started")
        return f"{'https' if self.tls else 'http'}://{self._host}:{self._port}"

    async def start(self) -> ThreadedServer:
        await asyncio.to_thread(self.start_blocking)
        return self

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_blocking)

    def start_blocking(self) -> None:
        if self.tls:
            certificates()  # generate before the thread, so failures surface here
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30) or self._startup_error is not None:
            raise RuntimeError(f"{self._name} failed to start") from self._startup_error

    def stop_blocking(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._thread = self._loop = None

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        try:
            # Bind the socket ourselves: port 0 picks a free port we can then read back.
            sock = socket.create_server((self._host, self._port))
            self._port = sock.getsockname()[1]
            loop.run_until_complete(runner.setup())
            ssl_context = certificates().server_context() if self.tls else None
            loop.run_until_complete(web.SockSite(runner, sock, ssl_context=ssl_context).start())
        except BaseException as exc:  # reported to start_blocking
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

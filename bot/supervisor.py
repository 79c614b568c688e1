"""`amlbot serve`'s job worker in a child process (AMLBOT_WORKER=process, the default), so that no
export or deletion shares the event loop or the GIL with Slack's acks.

The child is `amlbot worker --supervised` with the same environment, at a lower CPU priority
(AMLBOT_WORKER_NICE): on a machine short of cores, an export takes what the acks leave. It shares
only the database with `serve`, as any `amlbot worker` beside a replica does. Its stdin is a pipe
from `serve`: a byte on it is a nudge (a job was queued: look now rather than at the next poll), its
end means `serve` is gone (the child then stops as on SIGTERM, handing its jobs back). A nudge is
only a hint: the worker's poll finds every queued job in the database anyway. A child that dies is
started again, after a pause that doubles while it keeps dying. The child's counters live in files
`serve` sums (bot.metric_files), so a restart loses none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time

from bot import metrics

log = logging.getLogger(__name__)

FIRST_PAUSE = 1.0  # seconds before the first restart of a dead child
LONGEST_PAUSE = 30.0
STEADY = 60.0  # a child that ran this long before dying starts again after FIRST_PAUSE
STOP_MARGIN = 10.0  # seconds past the shutdown grace before a child that will not stop is killed


class WorkerProcess:
    def __init__(self, wake: asyncio.Event, grace: float, after: asyncio.Event | None = None, nice: int = 0) -> None:
        self.wake = wake  # set in this process when a job is queued
        self.grace = grace
        # The first child starts once this is set (serve: once it listens), so that its own start
        # does not take the CPU from serve's.
        self.after = after
        self.nice = nice  # added to the child's niceness: its CPU goes to serve's acks first
        self.child: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """SIGTERM to the child (it drains its jobs within the grace, see `_wait`); no restart after it."""
        self._stopping.set()

    async def run(self) -> None:
        """Until `stop`: keep one child running, and pass this process's wake-ups on to it."""
        if self.after is not None and not await _first(self.after, self._stopping):
            return
        pause = FIRST_PAUSE
        while not self._stopping.is_set():
            started = time.monotonic()
            child = self.child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "worker", "--supervised", stdin=asyncio.subprocess.PIPE
            )
            # At once, while the new interpreter has one thread: the threads it starts inherit the value.
            with contextlib.suppress(ProcessLookupError):  # it died at once: `_wait` sees to that
                os.setpriority(os.PRIO_PROCESS, child.pid, os.getpriority(os.PRIO_PROCESS, 0) + self.nice)
            log.info("worker process started", extra={"pid": child.pid, "nice": self.nice})
            nudging = asyncio.create_task(self._nudge(child))
            try:
                code = await self._wait(child)
            finally:
                nudging.cancel()
            metrics.process_gone(child.pid)
            if self._stopping.is_set():
                return
            pause = FIRST_PAUSE if time.monotonic() - started > STEADY else pause
            log.error("worker process died: starting another", extra={"pid": child.pid, "returncode": code, "pause": pause})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            pause = min(pause * 2, LONGEST_PAUSE)

    async def _wait(self, child: asyncio.subprocess.Process) -> int:
        """The child's exit code; once stopping, it gets SIGTERM and the grace, then is killed."""
        waiting = asyncio.create_task(child.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not waiting.done():
            child.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(waiting), self.grace + STOP_MARGIN)
            except TimeoutError:
                log.error("worker process did not stop: killing it", extra={"pid": child.pid})
                child.kill()
        return await waiting

    async def _nudge(self, child: asyncio.subprocess.Process) -> None:
        assert child.stdin is not None
        while True:
            await self.wake.wait()
            self.wake.clear()
            if child.stdin.transport.get_write_buffer_size() == 0:  # one pending nudge is enough
                with contextlib.suppress(ConnectionError):
                    child.stdin.write(b".")


async def _first(wanted: asyncio.Event, stopping: asyncio.Event) -> bool:
    """Wait for `wanted` or `stopping`; True when `wanted` came first."""
    waits = {asyncio.create_task(wanted.wait()), asyncio.create_task(stopping.wait())}
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
    return wanted.is_set() and not stopping.is_set()

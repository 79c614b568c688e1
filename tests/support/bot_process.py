"""`amlbot serve` (or `amlbot worker`) as a real process, for tests that kill it and start it again.

`serve` runs its jobs in a child process (`amlbot worker --supervised`, see bot/supervisor.py): the
process a test kills to interrupt a job is that one (`kill_worker`).

The process runs this checkout's code (PYTHONPATH) from the virtualenv running the tests, with only
the environment the test gives it, and logs into a file the test can show when something fails.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import aiohttp

from sandbox.standins.azurite import free_port

ROOT = Path(__file__).resolve().parents[2]
AMLBOT = Path(sys.executable).with_name("amlbot")
STARTUP_TIMEOUT = 30.0


@dataclass
class BotProcess:
    command: str
    process: asyncio.subprocess.Process
    port: int
    host: str  # where it listens (AMLBOT_HOST)
    log_path: Path
    _log: IO[bytes]

    def worker_pid(self) -> int | None:
        """The process that runs the jobs: `serve`'s worker child (None while there is none), or
        `amlbot worker` itself."""
        if self.command == "worker":
            return self.process.pid
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:
            return None
        return int(children[0]) if children else None

    async def worker_owner(self, other_than: str | None = None) -> str:
        """The name its worker claims jobs under (see bot.worker.Worker.owner), once it has a
        worker (other than the one named `other_than`: after a restart)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            pid = self.worker_pid()
            owner = f"{socket.gethostname()}:{pid}"
            if pid is not None and owner != other_than:
                return owner
            if time.monotonic() > deadline:
                raise RuntimeError(f"no worker process within {STARTUP_TIMEOUT}s:\n{self.log()}")
            await asyncio.sleep(0.05)

    def signal_worker(self, sig: signal.Signals) -> None:
        pid = self.worker_pid()
        assert pid is not None, "no worker process"
        os.kill(pid, sig)

    @property
    def events_url(self) -> str:
        return f"http://{self.host}:{self.port}/slack/events"

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as when a node dies."""
        self.process.kill()

    def terminate(self) -> None:
        """SIGTERM: the shutdown a deployment asks for."""
        self.process.send_signal(signal.SIGTERM)

    async def stop(self) -> None:
        if self.command == "serve" and (child := self.worker_pid()) is not None:
            os.kill(child, signal.SIGKILL)  # not left to drain on its own after the test
        if self.process.returncode is None:
            self.kill()
            await self.process.wait()
        self._log.close()


async def start_bot(env: dict[str, str], log_path: Path, command: str = "serve") -> BotProcess:
    """Start `amlbot <command>` on a free port; returns once /healthz answers (serve) or at once (worker)."""
    port = free_port()
    log = log_path.open("ab")
    process = await asyncio.create_subprocess_exec(
        str(AMLBOT), command,
        # TMPDIR: the metrics directory of a serve a test kills (-9) is left in the test's own tmp_path.
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "TMPDIR": str(log_path.parent), **env, "PORT": str(port)},
        cwd=log_path.parent, stdout=log, stderr=asyncio.subprocess.STDOUT,
    )
    bot = BotProcess(command, process, port, env.get("AMLBOT_HOST", "127.0.0.1"), log_path, log)
    if command == "serve":
        await _healthy(bot)
        if env.get("AMLBOT_WORKER", "process") == "process":
            await bot.worker_owner()
    return bot


async def _healthy(bot: BotProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while True:
            if bot.process.returncode is not None:
                raise RuntimeError(f"amlbot exited with {bot.process.returncode}:\n{bot.log()}")
            try:
                async with session.get(f"http://{bot.host}:{bot.port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"amlbot did not answer /healthz within {STARTUP_TIMEOUT}s:\n{bot.log()}")
            await asyncio.sleep(0.1)

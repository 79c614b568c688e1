"""What every benchmark shares: data, timing, memory, the workspace config, a no-op checkpoint."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "python")
SIGNING_SECRET = "bench-signing-secret"
TEAM, CHANNEL = "T0001", "C0BENCH001"
REQUESTER, APPROVER = "UREQ00001", "UAPP00001"
MB = 1024 * 1024
SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE = "00000000-0000-0000-0000-000000000001", "rg-bench", "mlw-bench"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python process: this repository importable, quiet logs."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AMLBOT_LOG_LEVEL": "WARNING", **extra}
    return env


# ---- data --------------------------------------------------------------------------------------

@functools.cache
def _block() -> bytes:
    """4 MiB of random bytes, made on first use: the bare app imports this module, and its start is a baseline."""
    return os.urandom(4 * MB)  # incompressible: deflate finds nothing to match within its 32 KiB window


def payload(size: int) -> bytes:
    """`size` bytes that do not compress (the export's worst case)."""
    block = _block()
    return (block * (size // len(block) + 1))[:size]


async def big_chunks(size: int, chunk: int = 4 * MB) -> Any:
    sent = 0
    while sent < size:
        piece = _block()[: min(chunk, size - sent)]
        sent += len(piece)
        yield piece


async def bounded(coros: Iterable[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(make: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await make()

    return await asyncio.gather(*(one(make) for make in coros))


async def ensure_container(service: Any, container: str) -> Any:
    from azure.core.exceptions import ResourceExistsError

    client = service.get_container_client(container)
    with contextlib.suppress(ResourceExistsError):
        await client.create_container()
    return client


async def seed_small(service: Any, container: str, prefix: str, count: int, size: int = 2048) -> int:
    """`count` run-history-sized blobs under `prefix`; returns their total bytes."""
    client = await ensure_container(service, container)
    data = payload(size)
    names = [f"{prefix}logs/azureml/part-{i:06d}.txt" for i in range(count)]
    await bounded([lambda n=n: client.upload_blob(n, data, overwrite=True) for n in names], 64)
    return count * size


async def seed_big(service: Any, container: str, name: str, size: int) -> None:
    client = await ensure_container(service, container)
    await client.get_blob_client(name).upload_blob(big_chunks(size), length=size, overwrite=True, max_concurrency=4)


# ---- timing and memory --------------------------------------------------------------------------


@dataclass
class Stopwatch:
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000 if latencies else float("nan"),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    }


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(rest.split()[0]) * 1024
    return found


class PeakRss:
    """Samples this process's RSS every 50 ms from a thread (VmHWM also counts the imports)."""

    def __init__(self) -> None:
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_status()["VmRSS"])
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        self.peak = proc_status()["VmRSS"]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, proc_status()["VmRSS"])


# ---- the workspace, as the bot sees it -----------------------------------------------------------


@contextlib.asynccontextmanager
async def control_plane(jobs: Iterable[str] = ()) -> AsyncIterator[tuple[Any, dict[str, str]]]:
    """The Azure control-plane stand-in the tests use, holding the bench's workspace (its storage
    account Azurite's) and a finished job for each of `jobs`; with the environment a process needs
    to reach it (its CA bundle)."""
    from sandbox.standins.azure.client import standin_environment
    from sandbox.standins.azure.server import AzureStandIn
    from sandbox.standins.azure.state import AZURITE_ACCOUNT

    async with AzureStandIn() as azure:
        workspace = azure.state.add_workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, storage_account_name=AZURITE_ACCOUNT)
        for job in jobs:
            workspace.add_job(job)
        env = child_env()
        for name, value in standin_environment(azure).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        env.pop("AZUREML_CURRENT_CLOUD", None)  # MLClient writes it process-wide
        yield azure, env


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """This process's environment replaced by `env` for a while (SDK clients read it when built)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def workspace_config(connection_string: str, container: str, arm_endpoint: str | None = None) -> Any:
    """The bench's workspace; with `arm_endpoint`, its control plane is the stand-in there."""
    from commands.azure.config import WorkspaceConfig

    fields: dict[str, Any] = {
        "subscription_id": SUBSCRIPTION,
        "resource_group": RESOURCE_GROUP,
        "workspace_name": WORKSPACE,
        "arm_endpoint": arm_endpoint,
        "storage_connection_string": connection_string,
        "artifact_container": container,
        "exports_container": f"exports-{container}",
    }
    if "blobstore_container" in WorkspaceConfig.model_fields:  # runs' outputs: no datastore lookup
        fields["blobstore_container"] = f"blobstore-{container}"
    return WorkspaceConfig(**fields)


def context(config: Any, door: Any, request_id: str = "R-BENCH001") -> Any:
    from commands.azure.control import WorkspaceControl
    from commands.operations.base import Context
    from sandbox.standins.azure.client import TEST_CLIENT_KWARGS, FakeCredential

    control = WorkspaceControl(config, FakeCredential(), TEST_CLIENT_KWARGS) if config.arm_endpoint else WorkspaceControl(config)
    return Context(alias="bench", config=config, door=door, control=control, request_id=request_id)


class NullCheckpoint:
    """The worker's checkpoint without its database: the figures are the operation's own."""

    def __init__(self) -> None:
        self.done: dict[str, Any] = {}
        self.progress_calls = 0

    async def record(self, results: dict[str, Any]) -> None:
        return None

    async def progress(self, done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        self.progress_calls += 1

    async def cancelled(self) -> bool:
        return False


def intent(text: str) -> Any:
    from commands import grammar

    return grammar.parse(text)

"""Starting `amlbot serve` and the bare baseline as real processes, and waiting for /healthz."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import APPROVER, PYTHON, REQUESTER, ROOT, SIGNING_SECRET, child_env, workspace_config


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path, connection: str, container: str, arm_endpoint: str | None = None) -> Path:
    workspace = workspace_config(connection, container, arm_endpoint).model_dump(exclude_none=True)
    config = {
        "workspaces": {"bench": workspace},
        "policy": {
            "requesters": {"*": {"users": [REQUESTER, APPROVER]}},
            "approvers": {"users": [APPROVER]},
        },
    }
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def bot_command(directory: Path, config: Path, port: int, slack_api_url: str) -> tuple[list[str], dict[str, str]]:
    env = child_env(
        SLACK_BOT_TOKEN="xoxb-bench",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_api_url,
        AMLBOT_DATABASE_URL=f"sqlite:///{directory / 'amlbot.db'}",
        AMLBOT_CONFIG=str(config),
        AMLBOT_AUDIT_KEY="bench-audit-key",
        PORT=str(port),
    )
    env.pop("SLACK_APP_TOKEN", None)
    return [str(Path(PYTHON).parent / "amlbot"), "serve"], env


def bare_command(port: int, slack_api_url: str) -> tuple[list[str], dict[str, str]]:
    return [PYTHON, "-m", "bench.bare_app", str(port), slack_api_url], child_env()


def start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[Any]:
    handle = log.open("ab")
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(process: subprocess.Popen[Any], port: int, timeout: float = 60.0, path: str = "/healthz") -> float:
    """Seconds from now until GET `path` answers 200 (polled every 5 ms): /healthz, alive; /readyz,
    ready for traffic (what a load balancer waits for)."""
    import http.client

    started = time.perf_counter()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the process exited with {process.returncode} before it was healthy")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                connection.close()
                return time.perf_counter() - started
            connection.close()
        except OSError:
            pass
        if time.perf_counter() - started > timeout:
            raise RuntimeError("not healthy in time")
        time.sleep(0.005)


def stop(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def cold_starts(runs: int, workdir: Path, connection: str, container: str, slack_api_url: str) -> dict[str, list[float]]:
    """Seconds from spawning each process until /healthz answers (a fresh database each time), `runs`
    times each: amlbot and the bare app in turn, the order swapped every round, so that the
    machine's load drifts alike for both."""
    times: dict[str, list[float]] = {"amlbot": [], "bare": []}
    for i in range(runs):
        for kind in ("amlbot", "bare") if i % 2 == 0 else ("bare", "amlbot"):
            times[kind].append(_cold_start(kind, workdir / f"{kind}-start-{i}", connection, container, slack_api_url))
    return times


def _cold_start(kind: str, directory: Path, connection: str, container: str, slack_api_url: str) -> float:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    if kind == "amlbot":
        command, env = bot_command(directory, write_config(directory, connection, container), port, slack_api_url)
    else:
        command, env = bare_command(port, slack_api_url)
    started = time.perf_counter()
    process = start(command, env, ROOT, directory / "process.log")
    try:
        wait_healthy(process, port)
        return time.perf_counter() - started
    finally:
        stop(process)

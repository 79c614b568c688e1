"""Cold start of `amlbot serve` until /healthz answers, beside the bare Bolt app; and the cost of
the first Azure ML call in a fresh process (against the control-plane stand-in)."""

from __future__ import annotations

import asyncio
import compileall
import json
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench import processes
from bench.common import PYTHON, ROOT, control_plane


def compile_sources() -> None:
    """Bytecode for this checkout's code, as `pip install` writes it for an installed amlbot (the
    image does): the processes run from the source tree, where with PYTHONDONTWRITEBYTECODE set each
    start would compile amlbot's ~100 modules again (the bare app's: two) and time that instead."""
    for folder in ("bot", "commands", "bench"):
        compileall.compile_dir(ROOT / folder, quiet=1)


async def cold_start(connection: str, workdir: Path, runs: int, log: Any) -> dict[str, Any]:
    from sandbox.standins.slack_api import SlackWebApiStandIn

    await asyncio.to_thread(compile_sources)
    async with SlackWebApiStandIn() as slack:
        times = await asyncio.to_thread(processes.cold_starts, runs, workdir, connection, "bench-start", slack.url)
    bot, bare = times["amlbot"], times["bare"]
    log(f"cold start: amlbot {statistics.median(bot):.2f} s, bare Bolt {statistics.median(bare):.2f} s (median of {runs})")
    return {"amlbot_s": bot, "bare_s": bare}


async def first_ml_call(runs: int, log: Any) -> dict[str, Any]:
    async with control_plane(f"bench-job-{i}" for i in range(5)) as (azure, env):
        samples = []
        for _ in range(runs):
            done = await asyncio.to_thread(
                subprocess.run, [PYTHON, "-m", "bench.mlclient_child", azure.url], env=env,
                capture_output=True, text=True, timeout=300, check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"bench.mlclient_child failed:\n{done.stderr[-3000:]}")
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = {key: statistics.median(s[key] for s in samples) for key in ("import", "first_call", "warm_call")}
    log(f"first Azure ML call: import {median['import']:.2f} s, first call {median['first_call']:.2f} s, "
        f"warm call {median['warm_call'] * 1000:.0f} ms")
    return {"runs": samples, "median": median}

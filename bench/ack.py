"""Ack latency: signed commands and clicks at a steady rate and in bursts, idle and while two big exports run.

The bot is the real `amlbot serve` process (SQLite, worker concurrency 2, jobs in its child process)
wired to Azurite and the Slack Web API stand-in (in this process). The load is `/aml status <id>`
commands and Approve clicks on a running request (refused after the ack, audited): each delivery
takes the bot's whole path (signature, listener match, ack, then the de-duplication claim, reads, an
audited refusal and a reply). The baseline is bench.bare_app, a Bolt AsyncApp on the same aiohttp
stack that only acks, running beside the bot: every load goes to both, interleaved, sent and timed
in a process of its own.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import processes
from bench.common import (
    APPROVER,
    CHANNEL,
    MB,
    PYTHON,
    REQUESTER,
    ROOT,
    SIGNING_SECRET,
    TEAM,
    child_env,
    control_plane,
    seed_big,
    summary,
)

CONTAINER = "bench-ack"
REQUEST_ID = re.compile(r"\((R-[A-Z0-9]{8})\)")
WARM_UP = 4  # deliveries before the counted load, not counted


@dataclass
class Target:
    """One app under the load: where to send, what the deliveries name, what came back."""

    events_url: str
    response_urls: Iterator[str]
    request_id: str
    card_ts: str
    samples: list[tuple[str, float, float, int]] = field(default_factory=list)  # (phase, sent at (epoch), seconds, status)
    sent: int = 0


class Load:
    """Fires signed deliveries open-loop (a slow answer never delays the next send) at one or more
    apps, interleaved so that each meets the machine in the same state (the same export phase, the
    same other work). It runs in a process of its own (`bench.load_child`): the Slack stand-in that
    takes the bot's replies stays in the bench's process, so a reply never delays the reading of an ack."""

    def __init__(self, targets: list[Target]) -> None:
        from sandbox.standins.slack_signing import SlackSender

        self.targets = targets
        self.senders = {t.events_url: SlackSender(t.events_url, SIGNING_SECRET, timeout=30) for t in targets}

    async def one(self, target: Target, phase: str) -> None:
        target.sent += 1
        url, sender = next(target.response_urls), self.senders[target.events_url]
        if target.sent % 2:
            send = sender.command(f"status {target.request_id}", REQUESTER, CHANNEL, team_id=TEAM, response_url=url)
        else:
            send = sender.click("amlbot.approve", target.request_id, APPROVER, CHANNEL, target.card_ts, team_id=TEAM, response_url=url)
        sent_at, started = time.time(), time.perf_counter()
        try:
            status, _ = await send
        except Exception:  # a timeout or reset counts, as Slack would see it
            status = 0
        target.samples.append((phase, sent_at, time.perf_counter() - started, status))

    async def steady(self, rate: float, seconds: float) -> None:
        """`rate` deliveries a second to each app, the apps' sends spread evenly between each other's."""
        tasks = []
        start = time.perf_counter()
        step = 1 / (rate * len(self.targets))
        for i in range(int(rate * seconds) * len(self.targets)):
            delay = start + i * step - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one(self.targets[i % len(self.targets)], "steady")))
        await asyncio.gather(*tasks)

    async def bursts(self, count: int, size: int, gap: float) -> None:
        """`count` bursts at each app, one app at a time, `gap` seconds apart; which app goes first
        alternates from round to round."""
        for round_ in range(count):
            for target in self.targets if round_ % 2 == 0 else reversed(self.targets):
                await asyncio.gather(*(self.one(target, "burst") for _ in range(size)))
                await asyncio.sleep(gap)

    async def drive(self, rate: float, seconds: float, bursts: int, burst_size: int) -> float:
        """The whole load: a few warm-up deliveries to each app (not counted), steady, bursts; the
        seconds the counted part took."""
        for target in self.targets:
            for _ in range(WARM_UP):
                await self.one(target, "warm")
            target.samples.clear()
        start = time.perf_counter()
        await self.steady(rate, seconds)
        await self.bursts(bursts, burst_size, 1.0)
        window = time.perf_counter() - start
        for sender in self.senders.values():
            await sender.close()
        return window


@dataclass(frozen=True)
class Driven:
    """What the load on one app gave: its samples (phase, sent at (epoch), seconds, HTTP status)."""

    samples: list[tuple[str, float, float, int]]

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for phase in ("steady", "burst"):
            latencies = [s for p, _, s, _ in self.samples if p == phase]
            out[phase] = summary(latencies)
            out[phase]["errors"] = sum(1 for p, _, _, status in self.samples if p == phase and status != 200)
        out["all"] = summary([s for _, _, s, _ in self.samples])
        # Each burst's acks in the order they were sent, ms: a stall of all of them reads apart from a queue.
        out["burst_ms"] = [round(s * 1000, 1) for p, _, s, _ in sorted(self.samples, key=lambda x: x[1]) if p == "burst"]
        return out

    def share_before(self, until: float) -> float:
        """The share of the deliveries sent before `until` (epoch seconds)."""
        return sum(1 for _, sent_at, _, _ in self.samples if sent_at < until) / max(1, len(self.samples))


async def _drive(
    slack: Any, apps: list[tuple[str, str, str]], rate: float, seconds: float, bursts: int, burst_size: int
) -> tuple[list[Driven], float]:
    """The load on `apps` (events URL, request id, card ts), interleaved, sent and timed by
    `bench.load_child`; each delivery with a response_url of its own from the Slack stand-in. What
    each app gave, and the seconds the counted load took."""
    count = WARM_UP + int(rate * seconds) + bursts * burst_size
    spec = {
        "targets": [
            {"events_url": url, "request_id": request_id, "card_ts": card_ts,
             "response_urls": [slack.response_url_for(CHANNEL, user=APPROVER) for _ in range(count)]}
            for url, request_id, card_ts in apps
        ],
        "rate": rate, "seconds": seconds, "bursts": bursts, "burst_size": burst_size,
    }
    child = await asyncio.create_subprocess_exec(
        PYTHON, "-m", "bench.load_child", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env=child_env(), cwd=ROOT,
    )
    out, _ = await child.communicate(json.dumps(spec).encode())
    if child.returncode != 0:
        raise RuntimeError(f"bench.load_child exited with {child.returncode}")
    result = json.loads(out)
    return [Driven([tuple(s) for s in samples]) for samples in result["samples"]], result["window_s"]  # type: ignore[misc]


async def _start_exports(url: str, slack: Any) -> list[tuple[str, str]]:
    """Requests and approves the export of the two seeded runs; their request ids and card ts."""
    from sandbox.standins.slack_signing import SlackSender

    ids = []
    async with SlackSender(url, SIGNING_SECRET) as sender:
        for i in (1, 2):
            await sender.command(f"export run bench_ack_{i}", REQUESTER, CHANNEL, team_id=TEAM,
                                 response_url=slack.response_url_for(CHANNEL, user=REQUESTER))
            card = await slack.wait_for(
                lambda i=i: next((m for m in slack.messages(CHANNEL) if f"bench_ack_{i}" in str(m.get("blocks"))
                                  and REQUEST_ID.search(m.get("text") or "")), None), timeout=60,
                description=f"the card of export {i}",
            )
            ids.append((REQUEST_ID.search(card["text"]).group(1), card["ts"]))  # type: ignore[union-attr]
        for request_id, ts in ids:
            await sender.click("amlbot.approve", request_id, APPROVER, CHANNEL, ts, team_id=TEAM,
                               response_url=slack.response_url_for(CHANNEL, ts, user=APPROVER))
    return ids


async def ack_latency(
    connection: str, workdir: Path, export_bytes: int, rate: float, seconds: float, bursts: int, burst_size: int, log: Any
) -> dict[str, Any]:
    from azure.storage.blob.aio import BlobServiceClient

    from sandbox.standins.azure.client import managed_identity_environment
    from sandbox.standins.slack_api import SlackWebApiStandIn

    service = BlobServiceClient.from_connection_string(connection)
    try:
        await asyncio.gather(*(
            seed_big(service, CONTAINER, f"ExperimentRun/dcid.bench_ack_{i}/outputs/model.bin", export_bytes) for i in (1, 2)
        ))
    finally:
        await service.close()
    log(f"seeded two {export_bytes // MB} MiB runs to export")

    # `export run` plans each run's job: the control plane is the tests' stand-in, the bot signing in
    # as its managed identity.
    async with control_plane(f"bench_ack_{i}" for i in (1, 2)) as (azure, _):
        slack = SlackWebApiStandIn(team_id=TEAM)
        await slack.start()
        result: dict[str, Any] = {}
        try:
            # amlbot and the bare app run side by side, and every load goes to both, interleaved
            # (bench.load_child), so that each meets the machine in the same state: first with
            # nothing else running, then while amlbot's two exports run.
            directory = workdir / "ack-amlbot"
            directory.mkdir(parents=True, exist_ok=True)
            port = processes.free_port()
            config = processes.write_config(directory, connection, CONTAINER, azure.url)
            command, env = processes.bot_command(directory, config, port, slack.url)
            env |= managed_identity_environment(azure)
            bot = processes.start(command, env, ROOT, directory / "amlbot.log")
            bare_port = processes.free_port()
            bare_command, bare_env = processes.bare_command(bare_port, slack.url)
            bare = processes.start(bare_command, bare_env, ROOT, workdir / "bare.log")
            try:
                # The load starts when the bot is ready, as a load balancer would send it (the bare app
                # has nothing to load: it is ready when alive). The time to alive is the startup row.
                await asyncio.to_thread(processes.wait_healthy, bot, port, 60.0, "/readyz")
                await asyncio.to_thread(processes.wait_healthy, bare, bare_port)
                url, bare_url = f"http://127.0.0.1:{port}/slack/events", f"http://127.0.0.1:{bare_port}/slack/events"
                bare_app = (bare_url, "R-AAAAAAAA", "1700000000.000100")
                (idle, bare_idle), _ = await _drive(slack, [(url, "R-AAAAAAAA", "1700000000.000100"), bare_app], rate, seconds, bursts, burst_size)
                result["amlbot_idle"], result["bare"] = idle.report(), bare_idle.report()
                log(f"idle: amlbot p99 {result['amlbot_idle']['all']['p99_ms']:.1f} ms, bare Bolt p99 {result['bare']['all']['p99_ms']:.1f} ms")
                ids = await _start_exports(url, slack)

                def running() -> bool:
                    texts = [(slack.message(CHANNEL, ts) or {}).get("text", "") for _, ts in ids]
                    return all("running" in t for t in texts)

                await slack.wait_for(running, timeout=60, description="both exports running")
                log(f"two exports running: {', '.join(i for i, _ in ids)}")
                (load, beside), window = await _drive(slack, [(url, *ids[0]), bare_app], rate, seconds, bursts, burst_size)
                still_running = running()
                # When the first export finished: its link's post in the card's thread (Slack ts = epoch).
                finished = [float(m["ts"]) for _, ts in ids for m in slack.thread(CHANNEL, ts) if "Export ready" in str(m.get("blocks"))]
                both_until = min(finished, default=float("inf"))
                result["amlbot"] = load.report()
                result["amlbot"]["exports_running_at_end"] = still_running
                result["amlbot"]["share_sent_while_both_exports_ran"] = load.share_before(both_until)
                result["amlbot"]["window_s"] = window
                result["bare_beside_exports"] = beside.report()
                result["bare_beside_exports"]["share_sent_while_both_exports_ran"] = beside.share_before(both_until)
                log(f"2 exports: amlbot p99 {result['amlbot']['all']['p99_ms']:.1f} ms, bare Bolt p99 "
                    f"{result['bare_beside_exports']['all']['p99_ms']:.1f} ms; "
                    f"{load.share_before(both_until):.0%} of the deliveries sent while both exports ran")
            finally:
                processes.stop(bare)
                processes.stop(bot, grace=5)
        finally:
            await slack.stop()
    result["load"] = {"rate_per_s": rate, "steady_s": seconds, "bursts": bursts, "burst_size": burst_size}
    return result

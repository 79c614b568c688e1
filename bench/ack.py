"""Ack latency: signed commands and clicks at a steady rate and in bursts, while two big exports run.

The bot is the real `amlbot serve` process (SQLite, worker concurrency 2) wired to Azurite and the
Slack Web API stand-in (in this process). The load is `/aml status <id>` commands and Approve clicks
on a running request (refused after the ack, audited): each delivery takes the bot's whole ack path
(signature, the de-duplication write, listener match, ack). The baseline is bench.bare_app, a Bolt
AsyncApp on the same aiohttp stack that only acks, under the same load.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from bench import processes
from bench.common import APPROVER, CHANNEL, MB, REQUESTER, ROOT, SIGNING_SECRET, TEAM, control_plane, seed_big, summary

CONTAINER = "bench-ack"
REQUEST_ID = re.compile(r"\((R-[A-Z0-9]{8})\)")


class Load:
    """Fires signed deliveries open-loop (a slow answer never delays the next send)."""

    def __init__(self, events_url: str, slack: Any, request_id: str, card_ts: str) -> None:
        from sandbox.standins.slack_signing import SlackSender

        self.sender = SlackSender(events_url, SIGNING_SECRET, timeout=30)
        self.slack = slack
        self.request_id = request_id
        self.card_ts = card_ts
        self.samples: list[tuple[str, float, float, int]] = []  # (phase, sent at (epoch), seconds, status)
        self._count = 0

    async def one(self, phase: str) -> None:
        self._count += 1
        url = self.slack.response_url_for(CHANNEL, user=APPROVER)
        if self._count % 2:
            send = self.sender.command(f"status {self.request_id}", REQUESTER, CHANNEL, team_id=TEAM, response_url=url)
        else:
            send = self.sender.click("amlbot.approve", self.request_id, APPROVER, CHANNEL, self.card_ts, team_id=TEAM, response_url=url)
        sent_at, started = time.time(), time.perf_counter()
        try:
            status, _ = await send
        except Exception:  # a timeout or reset counts, as Slack would see it
            status = 0
        self.samples.append((phase, sent_at, time.perf_counter() - started, status))

    async def steady(self, rate: float, seconds: float) -> None:
        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.one("steady")))
        await asyncio.gather(*tasks)

    async def bursts(self, count: int, size: int, gap: float) -> None:
        for _ in range(count):
            await asyncio.gather(*(self.one("burst") for _ in range(size)))
            await asyncio.sleep(gap)

    async def close(self) -> None:
        await self.sender.close()

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for phase in ("steady", "burst"):
            latencies = [s for p, _, s, _ in self.samples if p == phase]
            out[phase] = summary(latencies)
            out[phase]["errors"] = sum(1 for p, _, _, status in self.samples if p == phase and status != 200)
        out["all"] = summary([s for _, _, s, _ in self.samples])
        return out


async def _warm(load: Load) -> None:
    for _ in range(4):
        await load.one("warm")
    load.samples.clear()


async def _drive(load: Load, rate: float, seconds: float, bursts: int, burst_size: int) -> float:
    """The whole load on one app: a few warm-up deliveries (not counted), steady, bursts; the
    seconds the counted part took."""
    await _warm(load)
    start = time.perf_counter()
    await load.steady(rate, seconds)
    await load.bursts(bursts, burst_size, 1.0)
    window = time.perf_counter() - start
    await load.close()
    return window


def _share_before(load: Load, until: float) -> float:
    """The share of `load`'s deliveries sent before `until` (epoch seconds)."""
    return sum(1 for _, sent_at, _, _ in load.samples if sent_at < until) / max(1, len(load.samples))


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
            # ---- amlbot, with two exports running ----
            directory = workdir / "ack-amlbot"
            directory.mkdir(parents=True, exist_ok=True)
            port = processes.free_port()
            config = processes.write_config(directory, connection, CONTAINER, azure.url)
            command, env = processes.bot_command(directory, config, port, slack.url)
            env |= managed_identity_environment(azure)
            bot = processes.start(command, env, ROOT, directory / "amlbot.log")
            # The bare app, idle until amlbot's exports run: then the same load goes to it, so the
            # machine's share (Azurite, the worker child, two cores) shows apart from the bot's own.
            beside_port = processes.free_port()
            beside_command, beside_env = processes.bare_command(beside_port, slack.url)
            beside = processes.start(beside_command, beside_env, ROOT, workdir / "bare-beside.log")
            try:
                # The load starts when the bot is ready, as a load balancer would send it (the bare app
                # has nothing to load: it is ready when alive). The time to alive is the startup row.
                await asyncio.to_thread(processes.wait_healthy, bot, port, 60.0, "/readyz")
                url = f"http://127.0.0.1:{port}/slack/events"
                # The same load first with nothing running: what the bot's own ack path costs.
                load = Load(url, slack, "R-AAAAAAAA", "1700000000.000100")
                await _drive(load, rate, seconds, bursts, burst_size)
                result["amlbot_idle"] = load.report()
                log(f"amlbot, idle: p50 {result['amlbot_idle']['all']['p50_ms']:.1f} ms, p99 {result['amlbot_idle']['all']['p99_ms']:.1f} ms")
                ids = []
                from sandbox.standins.slack_signing import SlackSender

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

                def running() -> bool:
                    texts = [(slack.message(CHANNEL, ts) or {}).get("text", "") for _, ts in ids]
                    return all("running" in t for t in texts)

                await slack.wait_for(running, timeout=60, description="both exports running")
                log(f"two exports running: {', '.join(i for i, _ in ids)}")
                load = Load(url, slack, ids[0][0], ids[0][1])
                window = await _drive(load, rate, seconds, bursts, burst_size)
                still_running = running()
                await asyncio.to_thread(processes.wait_healthy, beside, beside_port)
                beside_load = Load(f"http://127.0.0.1:{beside_port}/slack/events", slack, "R-AAAAAAAA", "1700000000.000100")
                await _drive(beside_load, rate, seconds, bursts, burst_size)
                # When the first export finished: its link's post in the card's thread (Slack ts = epoch).
                finished = [float(m["ts"]) for _, ts in ids for m in slack.thread(CHANNEL, ts) if "Export ready" in str(m.get("blocks"))]
                both_until = min(finished, default=float("inf"))
                result["amlbot"] = load.report()
                result["amlbot"]["exports_running_at_end"] = still_running
                result["amlbot"]["share_sent_while_both_exports_ran"] = _share_before(load, both_until)
                result["amlbot"]["window_s"] = window
                result["bare_beside_exports"] = beside_load.report()
                result["bare_beside_exports"]["share_sent_while_both_exports_ran"] = _share_before(beside_load, both_until)
                log(f"amlbot: p50 {result['amlbot']['all']['p50_ms']:.1f} ms, p99 {result['amlbot']['all']['p99_ms']:.1f} ms; "
                    f"{_share_before(load, both_until):.0%} of the deliveries sent while both exports ran")
            finally:
                processes.stop(beside)
                processes.stop(bot, grace=5)

            # ---- the bare Bolt app, same load ----
            port = processes.free_port()
            command, env = processes.bare_command(port, slack.url)
            bare = processes.start(command, env, ROOT, workdir / "bare.log")
            try:
                await asyncio.to_thread(processes.wait_healthy, bare, port)
                load = Load(f"http://127.0.0.1:{port}/slack/events", slack, "R-AAAAAAAA", "1700000000.000100")
                await _drive(load, rate, seconds, bursts, burst_size)
                result["bare"] = load.report()
                log(f"bare Bolt: p50 {result['bare']['all']['p50_ms']:.1f} ms, p99 {result['bare']['all']['p99_ms']:.1f} ms")
            finally:
                processes.stop(bare)
        finally:
            await slack.stop()
    result["load"] = {"rate_per_s": rate, "steady_s": seconds, "bursts": bursts, "burst_size": burst_size}
    return result

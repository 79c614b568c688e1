"""Jobs that survive: real `amlbot` processes killed (-9), stopped (SIGTERM) and started again, and
replicas sharing one PostgreSQL database.

Each process test starts the bot as a subprocess against the Slack Web API stand-in (served from
this test's event loop), Azurite and a database, drives it with signed requests, and checks what
the issue promises: the job finishes, its link or receipt is posted exactly once, and storage holds
exactly what the plan says. Leases are short (AMLBOT_LEASE_SECONDS) so takeovers are quick.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
import signal
import zipfile
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest
import yaml
from azure.storage.blob.aio import BlobServiceClient
from sqlalchemy import text

from bot import cards
from bot.lifecycle import State
from bot.store.store import RequestRecord, Store
from bot.worker import MAX_ATTEMPTS
from commands import receipts
from commands.azure.blobs import BATCH_SIZE
from commands.operations.run_data import STEP
from commands.signing import Keyring, SigningKey
from sandbox.standins.azure.client import managed_identity_environment
from sandbox.standins.slack_api import SlackWebApiStandIn
from sandbox.standins.slack_signing import SlackSender
from tests.e2e.conftest import logged
from tests.e2e.harness import (
    ADMIN,
    APPROVER_1,
    APPROVER_2,
    REQUESTER,
    SIGNING_SECRET,
    Harness,
    base_config,
    start_workspace_standin,
)
from tests.e2e.test_metrics import Scrape
from tests.support.bot_process import BotProcess, start_bot
from tests.support.databases import postgres_database, postgres_skip_reason
from tests.support.storage_proxy import StorageFaultProxy

AUDIT_KEY = "test-audit-key"
LEASE = 3  # seconds: how soon a killed worker's job is taken over
GRACE = 15  # seconds a SIGTERM gives running jobs
RUN = "durable_train_1700000000_abcd1234"
PREFIX = f"ExperimentRun/dcid.{RUN}/"
OUTSIDER = "ExperimentRun/dcid.someone_else/outputs/keep.txt"  # another run's blob: never touched
LATE = f"{PREFIX}outputs/appeared-after-the-plan.txt"  # under the prefix, but not in the plan
PROGRESS = re.compile(r"(\d+) of \d+ items?")


@dataclass
class ReplicaHarness(Harness):
    """The e2e harness aimed at a bot in another process: requests go to that replica, and the
    state of every replica is read from the database they share."""

    database: Store | None = None

    @property
    def store(self) -> Store:
        assert self.database is not None
        return self.database


@dataclass
class Deployment:
    """Bot processes on one database, with Slack, Azurite and the database in view of the test."""

    home: Path
    env: dict[str, str]
    slack: SlackWebApiStandIn
    store: Store
    blobs: BlobServiceClient
    container: str
    processes: list[BotProcess] = field(default_factory=list)
    harnesses: list[ReplicaHarness] = field(default_factory=list)

    async def start(self, command: str = "serve") -> BotProcess:
        process = await start_bot(self.env, self.home / f"amlbot-{len(self.processes)}-{command}.log", command)
        self.processes.append(process)
        return process

    def harness(self, process: BotProcess) -> ReplicaHarness:
        """Signed requests to this replica."""
        harness = ReplicaHarness(
            bot=None, slack=self.slack, sender=SlackSender(process.events_url, SIGNING_SECRET),  # type: ignore[arg-type]
            blobs=self.blobs, container=self.container, runner=None, database=self.store,  # type: ignore[arg-type]
        )
        self.harnesses.append(harness)
        return harness

    def lease_owner(self, request_id: str) -> str | None:
        return (self.store.job(request_id) or {}).get("lease_owner")


class MakeDeployment(Protocol):
    def __call__(self, database_url: str, storage: str | None = None) -> Awaitable[Deployment]: ...


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database of its own (replicas need one; SQLite is for one process).
    Ask for it before `make_deployment`, so that the bots are gone before it is dropped."""
    with postgres_database() as url:
        if url is None:
            pytest.skip(postgres_skip_reason() or "PostgreSQL unavailable")
        yield url


@pytest.fixture
async def make_deployment(tmp_path: Path, azurite_connection: str) -> AsyncIterator[MakeDeployment]:
    made: list[Deployment] = []
    slack = SlackWebApiStandIn()
    await slack.start()
    # The workspace's control plane: the bots ask it which storage account the workspace is bound to,
    # signed in as an App Service managed identity.
    azure = await start_workspace_standin()

    async def make(database_url: str, storage: str | None = None) -> Deployment:
        """`storage`: the connection string the bots use (a fault proxy's); the test's own is Azurite's."""
        container = f"azureml-{os.urandom(5).hex()}"
        raw = base_config(storage or azurite_connection, container)
        raw["workspaces"]["dev"]["blobstore_container"] = f"blobstore-{container}"  # runs planned from storage alone
        raw["workspaces"]["dev"]["arm_endpoint"] = azure.url
        config = tmp_path / "config.yml"
        config.write_text(yaml.safe_dump(raw))
        env = {
            "SLACK_BOT_TOKEN": "xoxb-test-token",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.url,
            "AMLBOT_DATABASE_URL": database_url,
            "AMLBOT_CONFIG": str(config),
            "AMLBOT_AUDIT_KEY": AUDIT_KEY,
            "AMLBOT_LEASE_SECONDS": str(LEASE),
            "AMLBOT_SHUTDOWN_GRACE": str(GRACE),
            "AMLBOT_AZURE_RETRY_BACKOFF": "0.05",
            **managed_identity_environment(azure),
        }
        store = Store.open(database_url, Keyring(SigningKey.parse(AUDIT_KEY)))
        blobs = BlobServiceClient.from_connection_string(azurite_connection)
        made.append(Deployment(tmp_path, env, slack, store, blobs, container))
        return made[-1]

    yield make
    for deployment in made:
        for process in deployment.processes:
            await process.stop()
            print(f"---- {process.log_path.name} (last lines) ----\n" + "\n".join(process.log().splitlines()[-40:]))
        for harness in deployment.harnesses:
            await harness.sender.close()
        await deployment.blobs.close()
        deployment.store.close()
    await slack.stop()
    await azure.stop()
    assert azure.errors == []


def run_blobs(count: int, size: int = 64) -> dict[str, bytes]:
    return {f"{PREFIX}outputs/part-{i:05}.bin": os.urandom(size) for i in range(count)}


def posts(h: Harness, request_id: str, containing: str) -> list[dict[str, Any]]:
    return [m for m in h.thread(request_id) if containing in (m.get("text") or "") + json.dumps(m.get("blocks"))]


def receipt_files(h: Harness, request_id: str) -> list[Any]:
    card_ts = h.request(request_id).card_ts
    return [f for f in h.slack.files if f.thread_ts == card_ts and f.filename.endswith("-receipt.json")]


def progress_texts(h: Harness, request_id: str) -> list[str]:
    """Every text the job's progress message has shown, in order (the post, then each edit)."""
    ts = (h.store.job(request_id) or {}).get("progress_ts")
    calls = h.slack.calls_to("chat.postMessage") + h.slack.calls_to("chat.update")
    sent = [c for c in calls if c.ok and ts in (c.response.get("ts"), c.args.get("ts"))]
    return [c.args["text"] for c in sorted(sent, key=lambda c: c.time)]


async def wait_receipt(h: Harness, request_id: str) -> dict[str, Any]:
    [receipt] = await h.slack.wait_for(lambda: receipt_files(h, request_id), timeout=30, description="a receipt")
    assert receipts.verify(receipt.content.decode(), Keyring(SigningKey.parse(AUDIT_KEY)))[0]
    return json.loads(receipt.content)


async def results_posted_once(h: Harness, *request_ids: str, bots: Sequence[BotProcess] = ()) -> None:
    """Each result is marked posted, and is in its thread once, also when nothing can post any more:
    the workers have stopped, each after draining what it was posting (`bots` in other processes
    get SIGTERM; without them, the harness's own worker stops)."""
    for request_id in request_ids:
        await h.slack.wait_for(lambda request_id=request_id: (h.store.job(request_id) or {}).get("result_posted"), timeout=30)
    if bots:
        running = [bot for bot in bots if bot.process.returncode is None]
        for bot in running:
            bot.terminate()
        assert [await asyncio.wait_for(bot.process.wait(), timeout=GRACE + 10) for bot in running] == [0] * len(running)
    else:
        h.bot.worker.stop()
        assert h.bot.worker_task is not None
        await h.bot.worker_task
    for request_id in request_ids:
        assert len(receipt_files(h, request_id)) <= 1
        assert len(posts(h, request_id, "deletion receipt for")) <= 1
        assert len(posts(h, request_id, "Export ready")) <= 1


# ---- SIGTERM, then kill -9, in the middle of a deletion -----------------------------------------


async def seed_in_batches(h: Harness, blobs: dict[str, bytes], batch: int = 64) -> None:
    # Thousands at once only queue up in Azurite: a bounded number in flight is quicker.
    names = list(blobs)
    for start in range(0, len(names), batch):
        await h.seed({name: blobs[name] for name in names[start : start + batch]})


async def test_a_deletion_survives_sigterm_then_kill_9_and_posts_one_receipt(
    proxy: StorageFaultProxy, make_deployment: MakeDeployment, tmp_path: Path
) -> None:
    # The bots reach Azurite through the proxy (asked for first, so it outlives them).
    d = await make_deployment(f"sqlite:///{tmp_path / 'amlbot.db'}", proxy.connection_string)
    planned = run_blobs(STEP + 200)  # two steps
    first = await d.start()
    first_worker = await first.worker_owner()  # serve's child process, which runs the jobs
    h = d.harness(first)
    await seed_in_batches(h, planned | {OUTSIDER: b"not in the plan"})
    request = await h.submit(f"delete run {RUN}")
    await h.seed({LATE: b"appeared after the plan"})
    first_step = [proxy.hold("POST", r"comp=batch") for _ in range(STEP // BATCH_SIZE)]  # sent at once
    await h.click(cards.ActionId.APPROVE, request.id, APPROVER_1)

    # SIGTERM while the first step's batches are in flight: serve passes it on to its worker, which
    # ends the step and hands the job back; both exit, serve with 0. The batches are let go once the
    # worker says it is shutting down.
    await asyncio.wait_for(asyncio.gather(*(held.reached.wait() for held in first_step)), timeout=30)
    assert len(await h.blob_names(PREFIX)) == len(planned) + 1  # nothing deleted yet
    first.terminate()
    await h.slack.wait_for(lambda: "worker shutting down" in first.log(), timeout=GRACE, interval=0.05)
    for held in first_step:
        held.release.set()
    code = await asyncio.wait_for(first.process.wait(), timeout=GRACE + 10)
    assert code == 0
    job = d.store.job(request.id) or {}
    assert job["lease_owner"] is None and job["progress_ts"] and h.events(request.id)[-1] == "job.interrupted"
    assert len(d.store.item_outcomes(request.id)) == STEP  # its step recorded; the second not begun

    # The next process's worker resumes it at once (nothing to wait out); kill -9 that worker while
    # its batch is in flight. The batch never reaches storage (the proxy answers the dead process
    # with a 503).
    last_step = proxy.hold("POST", r"comp=batch")
    second = await d.start()
    second_worker = await second.worker_owner()
    await asyncio.wait_for(last_step.reached.wait(), timeout=30)
    second.signal_worker(signal.SIGKILL)
    # serve outlives its worker, and starts another (which takes the job once the lease lapses).
    third_worker = await second.worker_owner(other_than=second_worker)
    proxy.fail_next("POST", r"comp=batch")
    last_step.release.set()
    assert h.request(request.id).state is State.RUNNING
    assert d.lease_owner(request.id) == second_worker  # nobody handed it back: it lapses
    assert second.process.returncode is None and "worker process died: starting another" in second.log()

    done = await h.wait_state(request.id, State.SUCCEEDED, timeout=LEASE + 30)
    document = await wait_receipt(h, request.id)
    await results_posted_once(h, request.id, bots=d.processes)

    assert await h.blob_names() == {OUTSIDER, LATE}  # the plan, all of it, and nothing else
    assert document["totals"] == {"deleted": len(planned)}
    assert document["appeared_and_left_alone"] == [f"{d.container}/{LATE}"]
    jobs = [(e.event, e.actor) for e in d.store.audit_entries(request.id) if e.event.startswith("job.")]
    assert jobs == [
        ("job.started", first_worker), ("job.interrupted", first_worker),
        ("job.resumed", second_worker), ("job.resumed", third_worker), ("job.finished", third_worker),
    ]
    assert (d.store.job(request.id) or {})["attempts"] == 2  # the kill counts; the shutdown does not
    # One progress message, edited in place by all three processes, moving forward to the end.
    assert len(posts(h, request.id, f"Finished: {len(planned)} of {len(planned)} items")) == 1
    texts = progress_texts(h, request.id)
    shown = [int(m.group(1)) for t in texts if (m := PROGRESS.search(t))]
    # Figures at a step's end only (the first step's shown if the channel's pace allowed it).
    assert shown == sorted(shown) and set(shown) <= {STEP, len(planned)} and shown[-1] == len(planned)
    resumed = [t for t in texts if "Resuming" in t]
    assert len(resumed) == 2 and all(f"({STEP}/{len(planned)} items done before)" in t for t in resumed)
    notices = [t.split()[0] for t in texts if not t.startswith(":gear:")]
    # paused, resumed twice, and how it ended
    assert notices == [":double_vertical_bar:", ":arrows_counterclockwise:", ":arrows_counterclockwise:", ":white_check_mark:"]
    await h.slack.wait_for(lambda: "Done" in json.dumps(h.card(done.id)["blocks"]))


# ---- two replicas on PostgreSQL -----------------------------------------------------------------


def link_of(message: dict[str, Any]) -> str:
    section = next(b for b in message["blocks"] if b["type"] == "section")
    return section["text"]["text"].split("<", 1)[1].split("|", 1)[0]


async def download(link: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(link) as response:
        assert response.status == 200
        return await response.read()


async def test_kill_9_mid_export_the_other_replica_posts_one_link(pg_database: str, make_deployment: MakeDeployment) -> None:
    d = await make_deployment(pg_database)
    planned = {f"{PREFIX}outputs/shard-{i}.bin": os.urandom(8 * 1024 * 1024) for i in range(4)}
    a, b = await asyncio.gather(d.start(), d.start())
    on_a, on_b = d.harness(a), d.harness(b)
    await on_a.seed(planned | {OUTSIDER: b"not in the plan"})
    request = await on_a.submit(f"export run {RUN}")
    await on_b.click(cards.ActionId.APPROVE, request.id, APPROVER_1)

    await on_a.slack.wait_for(lambda: ((d.store.job(request.id) or {}).get("progress") or {}).get("done", 0) >= 1, timeout=30)
    workers = {await bot.worker_owner(): bot for bot in (a, b)}
    doomed = d.lease_owner(request.id)
    assert doomed is not None
    workers[doomed].signal_worker(signal.SIGKILL)  # the process running the job, mid-archive: the upload is never committed

    await on_a.wait_state(request.id, State.SUCCEEDED, timeout=60)
    await results_posted_once(on_a, request.id, bots=d.processes)
    [message] = posts(on_a, request.id, "Export ready")
    archive = await download(link_of(message))
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        manifest = json.loads(zipped.read("manifest.json"))
        assert {entry["source"]: entry["sha256"] for entry in manifest["files"]} == {
            f"{d.container}/{name}": hashlib.sha256(data).hexdigest() for name, data in planned.items()
        }
    assert hashlib.sha256(archive).hexdigest() in json.dumps(message["blocks"])
    exports = d.blobs.get_container_client(f"exports-{d.container}")
    assert [blob.name async for blob in exports.list_blobs()] == [f"exports/{request.id}/{request.id}.zip"]
    assert await on_a.blob_names() == set(planned) | {OUTSIDER}  # an export deletes nothing
    actors = [(e.event, e.actor) for e in d.store.audit_entries(request.id) if e.event.startswith("job.")]
    # Taken over by the other replica's worker, or by the one its serve started in place of the dead one.
    survivor = actors[1][1]
    assert actors == [("job.started", doomed), ("job.resumed", survivor), ("job.finished", survivor)]
    assert survivor != doomed


async def test_two_replicas_share_a_burst_and_run_each_job_exactly_once(
    pg_database: str, make_deployment: MakeDeployment
) -> None:
    d = await make_deployment(pg_database)
    a, b = await asyncio.gather(d.start(), d.start())
    workers = {await a.worker_owner(), await b.worker_owner()}
    replicas = [d.harness(a), d.harness(b)]
    runs = [f"burst_{i}_1700000000_abcd1234" for i in range(8)]
    await replicas[0].seed({f"ExperimentRun/dcid.{run}/logs/{n}.txt": b"x" * 100 for run in runs for n in range(40)})
    requests = [await replicas[i % 2].submit(f"delete run {run}") for i, run in enumerate(runs)]
    # Approved all at once, each on the replica that did not take the request.
    await asyncio.gather(*(replicas[(i + 1) % 2].click(cards.ActionId.APPROVE, r.id, APPROVER_1) for i, r in enumerate(requests)))

    for request in requests:
        await replicas[0].wait_state(request.id, State.SUCCEEDED, timeout=60)
    await results_posted_once(replicas[0], *(r.id for r in requests), bots=d.processes)
    assert all(receipt_files(replicas[0], r.id) for r in requests)
    assert await replicas[0].blob_names("ExperimentRun/") == set()
    starters = set()
    for request in requests:
        events = [e for e in d.store.audit_entries(request.id) if e.event.startswith("job.")]
        assert [e.event for e in events] == ["job.started", "job.finished"]  # ran once, never resumed
        starters.add(events[0].actor)
    assert starters == workers  # both replicas' workers took jobs


async def test_serve_acks_and_posts_cards_while_its_worker_process_is_stopped(
    pg_database: str, make_deployment: MakeDeployment
) -> None:
    """Jobs run in serve's child process: with that process frozen (SIGSTOP), serve still takes a
    command, plans it, posts the card and takes the approval; the job waits for the worker."""
    d = await make_deployment(pg_database)  # PostgreSQL: a frozen process holds no lock over the whole database
    bot = await d.start()
    h = d.harness(bot)
    planned = run_blobs(3)
    await h.seed(planned)
    # Frozen once started: a child stopped in its start-up could hold the schema's locks.
    await h.slack.wait_for(lambda: "worker started" in bot.log(), timeout=60)
    bot.signal_worker(signal.SIGSTOP)
    try:
        request = await h.submit(f"delete run {RUN}")  # acked, planned, its card posted
        status, _ = await h.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
        assert status == 200
        await h.wait_state(request.id, State.QUEUED)
        assert d.lease_owner(request.id) is None and len(await h.blob_names(PREFIX)) == len(planned)
    finally:
        bot.signal_worker(signal.SIGCONT)
    await h.wait_state(request.id, State.SUCCEEDED, timeout=30)
    assert (await wait_receipt(h, request.id))["totals"] == {"deleted": len(planned)}
    await results_posted_once(h, request.id, bots=[bot])


# ---- serve's /metrics with the jobs in its child process ---------------------------------------


async def scrape(bot: BotProcess) -> Scrape:
    async with aiohttp.ClientSession() as session, session.get(f"http://{bot.host}:{bot.port}/metrics") as response:
        assert response.status == 200
        scraped = Scrape(await response.text())
    series = [(s.name, tuple(sorted(s.labels.items()))) for s in scraped.samples]
    assert len(series) == len(set(series)), "a series shown twice"
    return scraped


def worker_pid(owner: str) -> int:
    return int(owner.rsplit(":", 1)[1])


def metrics_directory(pid: int) -> str | None:
    """The directory a process was started with (/proc shows the environment at its start)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next((v.decode().split("=", 1)[1] for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")), None)


def directory_exists(path: str) -> bool:
    return Path(path).is_dir()


async def test_serve_metrics_count_the_jobs_of_its_worker_child_and_keep_them_across_a_restart(
    make_deployment: MakeDeployment, tmp_path: Path
) -> None:
    d = await make_deployment(f"sqlite:///{tmp_path / 'amlbot.db'}")
    bot = await d.start()
    h = d.harness(bot)
    first_worker = await bot.worker_owner()
    shared = metrics_directory(worker_pid(first_worker))  # serve named it before starting the child
    assert shared is not None and directory_exists(shared)

    await h.seed(run_blobs(3))
    deletion = await h.submit(f"delete run {RUN}")
    await h.click(cards.ActionId.APPROVE, deletion.id, APPROVER_1)
    await wait_receipt(h, deletion.id)  # posted after the job's metrics are counted
    counted = await scrape(bot)
    assert counted("amlbot_job_duration_seconds_count", action="delete run", state="succeeded") == 1
    assert counted("amlbot_job_items_total", action="delete run", outcome="deleted") == 3
    assert counted("amlbot_azure_call_seconds_count", service="storage") >= 2  # the child's listing and batch
    assert counted("amlbot_slack_deliveries_total", kind="command") == 1  # serve's own, beside them
    assert counted("amlbot_requests", action="delete run", state="succeeded") == 1  # the database's

    bot.signal_worker(signal.SIGKILL)
    second_worker = await bot.worker_owner(other_than=first_worker)
    assert metrics_directory(worker_pid(second_worker)) == shared
    restarted = await scrape(bot)
    assert restarted("amlbot_job_duration_seconds_count", action="delete run", state="succeeded") == 1
    assert restarted("amlbot_job_items_total", action="delete run", outcome="deleted") == 3

    await h.seed({f"ExperimentRun/dcid.export_{RUN}/a.bin": os.urandom(5000)})  # incompressible
    export = await h.submit(f"export run export_{RUN}")
    await h.click(cards.ActionId.APPROVE, export.id, APPROVER_1)
    await h.slack.wait_for(lambda: posts(h, export.id, "Export ready"), timeout=30)
    both = await scrape(bot)
    assert [e.actor for e in d.store.audit_entries(export.id) if e.event == "job.started"] == [second_worker]
    assert both("amlbot_job_duration_seconds_count", action="export run", state="succeeded") == 1
    assert both("amlbot_exported_bytes_total", action="export run") > 5000
    assert both("amlbot_job_items_total", action="delete run", outcome="deleted") == 3  # the first child's
    assert both("amlbot_slack_deliveries_total", kind="command") == 2

    bot.terminate()
    assert await asyncio.wait_for(bot.process.wait(), timeout=GRACE + 10) == 0
    assert not directory_exists(shared)  # removed with serve


# ---- serve's worker process runs at a lower CPU priority ----------------------------------------


def niceness(pid: int) -> set[int]:
    """The nice values of a process's threads (field 19 of /proc/<pid>/task/<tid>/stat)."""
    return {int((task / "stat").read_text().rpartition(")")[2].split()[16]) for task in Path(f"/proc/{pid}/task").iterdir()}


async def test_serve_runs_its_worker_process_at_the_configured_lower_priority_and_jobs_complete(
    tmp_path: Path, make_deployment: MakeDeployment
) -> None:
    d = await make_deployment(f"sqlite:///{tmp_path / 'amlbot.db'}")
    d.env["AMLBOT_WORKER_NICE"] = "7"
    bot = await d.start()
    h = d.harness(bot)
    planned = run_blobs(3)
    await h.seed(planned)
    request = await h.submit(f"delete run {RUN}")
    await h.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await h.wait_state(request.id, State.SUCCEEDED, timeout=30)
    assert (await wait_receipt(h, request.id))["totals"] == {"deleted": len(planned)}

    worker = bot.worker_pid()
    assert worker is not None
    started = [e for e in d.store.audit_entries(request.id) if e.event == "job.started"]
    assert [e.actor for e in started] == [await bot.worker_owner()]  # the child ran the job
    ours = os.getpriority(os.PRIO_PROCESS, 0)  # serve inherits this process's niceness
    assert niceness(bot.process.pid) == {ours}
    assert niceness(worker) == {min(ours + 7, 19)}  # every thread, those started after the change too
    await results_posted_once(h, request.id, bots=[bot])


# ---- in one process: Slack outages and jobs that keep dying ------------------------------------


async def queued_while_frozen(harness: Harness, files: int = 3) -> RequestRecord:
    """A deletion approved while amlbot is frozen: queued, not yet claimed."""
    await harness.seed({f"{PREFIX}logs/{i}.txt": b"line\n" for i in range(files)})
    harness.store.set_frozen(True, ADMIN)
    request = await harness.submit(f"delete run {RUN}")
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_2)
    return await harness.wait_state(request.id, State.QUEUED)


def unfreeze(harness: Harness) -> None:
    harness.store.set_frozen(False, ADMIN)
    harness.bot.services.wake_worker.set()


async def test_a_slack_outage_delays_the_receipt_never_the_job(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    harness.bot.worker.lease = timedelta(seconds=1)  # a failed post is tried again a lease later
    request = await queued_while_frozen(harness)
    await harness.slack.stop()
    unfreeze(harness)
    # Every Slack call now fails after the client's retries; the job does not wait for them.
    await harness.wait_state(request.id, State.SUCCEEDED, timeout=3)
    assert await harness.blob_names(PREFIX) == set()
    await harness.slack.wait_for(lambda: logged(caplog, "bot.worker", "result waits for Slack"), timeout=30)
    assert not (harness.store.job(request.id) or {})["result_posted"]  # posting was tried, and failed

    await harness.slack.start()
    harness.slack.rate_limit("chat.postMessage", retry_after=1)  # Slack comes back busy: Retry-After is honoured
    document = await wait_receipt(harness, request.id)
    await results_posted_once(harness, request.id)
    assert document["totals"] == {"deleted": 3}
    assert len(posts(harness, request.id, "deletion receipt for")) == 1
    assert any(c.status == 429 for c in harness.slack.calls_to("chat.postMessage"))
    await harness.slack.wait_for(lambda: "Done" in json.dumps(harness.card(request.id)["blocks"]))


async def test_a_job_whose_worker_keeps_dying_is_given_up_with_a_partial_receipt(harness: Harness) -> None:
    request = await queued_while_frozen(harness)
    # Five workers took it and died, the first after deleting one blob.
    harness.store.transition(request.id, State.RUNNING, actor="dead:1", event="job.started")
    await harness.blobs.get_container_client(harness.container).delete_blob(f"{PREFIX}logs/0.txt")
    harness.store.record_items(request.id, [(f"blob:{harness.container}/{PREFIX}logs/0.txt", "deleted", {})])
    with harness.store.engine.begin() as conn:
        conn.execute(
            text("UPDATE jobs SET attempts = :n, lease_owner = 'dead:5', lease_until = :past WHERE request_id = :id"),
            {"n": MAX_ATTEMPTS, "past": "2000-01-01 00:00:00+00:00", "id": request.id},
        )
    unfreeze(harness)

    done = await harness.wait_state(request.id, State.FAILED)
    document = await wait_receipt(harness, request.id)
    assert f"given up after {MAX_ATTEMPTS} attempts" in document["error"]
    assert document["totals"] == {"deleted": 1, "failed": 2}
    assert len(await harness.blob_names(PREFIX)) == 2  # the last worker touched nothing
    [failure] = posts(harness, done.id, f"{done.id} failed")
    assert f"given up after {MAX_ATTEMPTS} attempts" in failure["text"] and f"<@{REQUESTER}>" in failure["text"]


async def test_a_post_slack_refuses_for_good_is_audited_not_retried(harness: Harness) -> None:
    request = await queued_while_frozen(harness)
    harness.slack.fail("files.getUploadURLExternal", "not_in_channel")  # the receipt's file, only
    unfreeze(harness)

    await harness.slack.wait_for(lambda: (harness.store.job(request.id) or {}).get("result_posted"))
    [refused] = [e for e in harness.store.audit_entries(request.id) if e.event == "result.undeliverable"]
    assert "not_in_channel" in refused.detail
    assert len(posts(harness, request.id, "deletion receipt for")) == 1 and receipt_files(harness, request.id) == []
    for _ in range(2):  # sweeps for results owed to Slack: none tries again
        await harness.bot.worker.tick()
    assert request.id not in harness.store.unposted_results()
    uploads = harness.slack.calls_to("files.getUploadURLExternal")
    assert len([c for c in uploads if c.args["filename"].endswith("-receipt.json")]) == 1

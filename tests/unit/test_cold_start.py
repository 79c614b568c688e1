"""What `amlbot serve` does before it answers /healthz: only what an honest answer needs (settings,
config, audit key, store and migrations, the Slack app); the rest loads on first use or after."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from bot.supervisor import WorkerProcess

ROOT = Path(__file__).resolve().parents[2]

# `amlbot serve` up to the moment it listens, then the modules loaded so far. The background preload
# (which loads the operations and the storage SDKs on purpose, after the answer) is left out, and
# Bolt may not walk the stack to name the app (it resolves every loaded module's file: ~0.1 s).
SERVE_UNTIL_LISTENING = """
import inspect, json, sys
import bot.server

def no_stack(*args, **kwargs):
    raise AssertionError("inspect.stack() called during the start")

async def no_preload():
    return None

async def report(*args, **kwargs):
    print(json.dumps(sorted(sys.modules)))

inspect.stack = no_stack
bot.server.preload = no_preload
bot.server.until_signalled = report
from bot.cli import main
sys.exit(main(["serve"]))
"""

# Each loads on first use: the storage and ML SDKs with the first operation, azure-core with the first
# Azure client or error, prometheus_client with the first delivery or scrape (or the preload right
# after the answer), the ORM and PostgreSQL's dialect never here (Core and SQLite only), Socket Mode
# only with an app token.
NEVER_AT_START = (
    "azure.ai.ml",
    "azure.core",
    "azure.identity",
    "azure.storage.blob",
    "azure.storage.fileshare",
    "commands.operations.registry",
    "prometheus_client",
    "slack_bolt.adapter.socket_mode",
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.orm",
    "stream_zip",
)


def modules_at_start(tmp_path: Path) -> set[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",  # never called before the first request
        "AMLBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'amlbot.db'}",
        "AMLBOT_CONFIG": str(ROOT / "config.example.yml"),
        "AMLBOT_AUDIT_KEY": "test-audit-key",
        "AMLBOT_LOG_LEVEL": "WARNING",
        "PORT": "0",
    }
    done = subprocess.run([sys.executable, "-c", SERVE_UNTIL_LISTENING], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_serve_listens_without_loading_what_only_requests_and_jobs_need(tmp_path: Path) -> None:
    first = modules_at_start(tmp_path)
    assert "sqlalchemy" in first and "bot.store.migrations.0001_initial" in first  # a new database: migrated
    assert not first & set(NEVER_AT_START), sorted(first & set(NEVER_AT_START))
    again = modules_at_start(tmp_path)
    # A restart on a current schema reads its version and loads no migration.
    assert not {name for name in again if name.startswith("bot.store.migrations.0")}
    assert not again & set(NEVER_AT_START)


async def test_the_worker_child_is_not_started_before_serve_listens() -> None:
    listening = asyncio.Event()
    supervisor = WorkerProcess(asyncio.Event(), grace=1.0, after=listening)
    running = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0.2)
    assert supervisor.child is None and not running.done()
    supervisor.stop()  # stopped before it listened (a start that failed): no child at all
    await asyncio.wait_for(running, 5)
    assert supervisor.child is None

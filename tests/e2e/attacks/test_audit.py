"""Receipts that cannot lie: the audit chain, the signing keys, forged requests, where the bot listens.

Each test plays the attacker (a database writer, a forger of receipts, a flood of unsigned posts)
against the real bot and checks what the store, the CLI and the probes say afterwards.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.e2e.harness import SIGNING_SECRET, base_config
from tests.support.bot_process import start_bot


# ---- AMLBOT_HOST ----------------------------------------------------------------------------------


async def test_the_bot_listens_on_the_one_interface_amlbot_host_names(tmp_path: Path, azurite_connection: str) -> None:
    config = tmp_path / "config.yml"
    raw = base_config(azurite_connection, "azureml-host")
    raw["workspaces"]["dev"]["blobstore_container"] = "blobstore-host"
    config.write_text(yaml.safe_dump(raw))
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": "http://127.0.0.1:9/api/", "AMLBOT_CONFIG": str(config),
        "AMLBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'amlbot.db'}",
        "AMLBOT_HOST": "127.0.0.2",  # Linux routes all of 127/8 to the loopback: a second address on one host
    }
    bot = await start_bot(env, tmp_path / "serve.log")  # returns once http://127.0.0.2:PORT/healthz answers
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.get(f"http://127.0.0.1:{bot.port}/healthz")
    finally:
        await bot.stop()

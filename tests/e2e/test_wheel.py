"""`pip install 'amlbot[sandbox]'`, then `amlbot sandbox`, outside a checkout: the wheel built from
this tree carries the sandbox and its stand-ins, and the sandbox serves from it alone.

The wheel goes into a fresh virtualenv. Its dependencies are the ones already installed for the
tests, reached through a plain path entry (installing them would need the network); that entry does
not run the development venv's .pth files, so the editable install of this checkout stays out.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox import demo
from sandbox.standins.azurite import azurite_executable, free_port

ROOT = Path(__file__).resolve().parents[2]
# Not read by a build, and big or machine-made: the copy the wheel is built from leaves them out.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "test-artifacts"
)
START_TIMEOUT = 90.0


@dataclass(frozen=True)
class Installed:
    venv: Path
    elsewhere: Path  # a working directory outside any checkout

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def amlbot(self) -> Path:
        return self.venv / "bin" / "amlbot"

    def env(self, **extra: str) -> dict[str, str]:
        """A user's environment: no Slack, amlbot or Azure settings of the test run."""
        kept = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AMLBOT_", "AZURE", "PYTHON"))}
        return {**kept, "PYTHONUNBUFFERED": "1", **extra}


def run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel of this tree, built without downloading anything, in a virtualenv of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    # A copy, so the build's own build/ and egg-info never land in the checkout; links stay links,
    # as in a clone (sandbox/manifest.yml is one).
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
        "--wheel-dir", tmp / "dist", source)
    [wheel] = (tmp / "dist").glob("amlbot-*.whl")
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    target = Path(run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                      env={}).strip())
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (target / "amlbot_test_dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n")
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet", "--no-deps",
        "--no-index", f"{wheel}[sandbox]")
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return Installed(venv, elsewhere)


def test_the_installed_code_is_the_wheels_and_the_tests_are_not_in_it(installed: Installed) -> None:
    # find_spec locates without running the modules (importing azure.ai.ml alone takes seconds).
    probe = """
import importlib.metadata, importlib.resources, importlib.util, json
modules = ["bot.cli", "commands.grammar", "sandbox.app", "sandbox.standins.azure.server", "sandbox.standins.slack_api"]
print(json.dumps({
    "files": [getattr(importlib.util.find_spec(name), "origin", None) for name in modules],
    "tests": importlib.util.find_spec("tests") is not None,
    "extras": importlib.metadata.metadata("amlbot").get_all("Provides-Extra"),
    "manifest": (importlib.resources.files("sandbox") / "manifest.yml").is_file(),
}))
"""
    found = json.loads(run(installed.python, "-c", probe, cwd=installed.elsewhere, env=installed.env()))
    assert all(f and Path(f).is_relative_to(installed.venv) for f in found["files"]), found["files"]
    assert found["tests"] is False
    assert "sandbox" in found["extras"]
    assert found["manifest"] is True  # the link in the tree became the file in the wheel


def test_without_azurite_the_sandbox_says_how_to_get_it(installed: Installed, tmp_path: Path) -> None:
    nothing = tmp_path / "bin"
    nothing.mkdir()  # a PATH with no azurite-blob on it
    done = subprocess.run([str(installed.amlbot), "sandbox"], cwd=installed.elsewhere, capture_output=True, text=True,
                          env=installed.env(PATH=str(nothing), PORT=str(free_port())), timeout=60)
    assert done.returncode == 2, done.stderr
    assert "npm install -g azurite" in done.stderr and "AMLBOT_AZURITE" in done.stderr
    assert "Traceback" not in done.stderr


async def test_amlbot_sandbox_serves_from_the_wheel(installed: Installed) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(installed.amlbot), "sandbox", cwd=installed.elsewhere,
        env=installed.env(PORT=str(port), AMLBOT_AZURITE=str(azurite_executable())),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    ready = asyncio.Event()

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            output.append(line.decode(errors="replace"))
            if f"localhost:{port}" in output[-1]:
                ready.set()

    reader = asyncio.create_task(read())
    try:
        await asyncio.wait_for(_started(ready, reader), START_TIMEOUT)
        assert ready.is_set(), "the sandbox stopped before it served:\n" + "".join(output)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            async with http.get("/") as page:
                assert page.status == 200 and "<html" in (await page.text()).lower()
            async with http.post("/console/command", json={"user": demo.REQUESTER.id, "channel": demo.CHANNEL,
                                                           "text": "/aml export run churn-train-01"}) as sent:
                assert (await sent.json()) == {"ok": True, "status": 200}
            card = await asyncio.wait_for(_seen(http, demo.REQUESTER.id, _export_card), START_TIMEOUT)
        assert "churn-train-01" in json.dumps(card["blocks"])
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C, as a person stops it
        try:
            code = await asyncio.wait_for(process.wait(), 30)
        finally:
            if process.returncode is None:
                process.kill()
            await reader
    log = "".join(output)
    assert code == 0, log
    assert "Traceback" not in log, log


async def _started(ready: asyncio.Event, reader: asyncio.Task[None]) -> None:
    """Returns once the sandbox says where to open it, or its output ends."""
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({waiting, reader}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()


def _export_card(state: dict[str, Any]) -> dict[str, Any] | None:
    """The bot's card in the channel for the export (not a private reply)."""
    return next((m for m in state["messages"] if m["user"] == state["bot"] and not m.get("ephemeral")
                 and m["channel"] == demo.CHANNEL and m["text"].startswith("export run")), None)


async def _seen(http: aiohttp.ClientSession, user: str, found: Callable[[dict[str, Any]], Any]) -> Any:
    """What ``found`` picks from ``user``'s view of the console, once it is there: the console's
    event stream says each time its state changes."""
    async with http.get("/console/events") as events:
        async for line in events.content:
            if not line.startswith(b"data:"):
                continue
            async with http.get("/console/state", params={"user": user}) as response:
                state = await response.json()
            if (hit := found(state)) is not None:
                return hit
    raise AssertionError("the console closed its event stream")

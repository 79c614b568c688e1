"""The sandbox, as a person uses it: `python -m sandbox` (what `make run` starts without Slack tokens)
driven in headless Chromium through the console page.

It proves the whole path with nothing faked inside the bot: typed `/aml …` commands and button
clicks become Slack-signed requests to the real bot, the bot's Block Kit comes back through the Web
API stand-in and is rendered live, private replies reach only the person they are for, the export
link downloads a zip from Azurite, and the deletion's receipt file opens and verifies.
Screenshots of each step go to test-artifacts/sandbox/.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from commands import receipts
from commands.signing import Keyring, PublicKey
from sandbox import demo
from sandbox.app import PUBLIC_KEY
from sandbox.standins.azurite import AzuriteUnavailable, azurite_executable, free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "sandbox"
CHROMIUM = Path("/usr/bin/chromium")
# What Chromium needs on these machines (no sandboxing as root, no GPU, no network but loopback).
# Playwright gives each launch a new empty user-data-dir of its own.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 60.0

try:
    from playwright import async_api
except ImportError:  # pragma: no cover - `make test` installs it with the test extras
    async_api = None

try:
    azurite_executable()
    _NO_AZURITE = ""
except AzuriteUnavailable as missing:
    _NO_AZURITE = f"{missing}; `make test` runs `npm ci`"
needs_azurite = pytest.mark.skipif(bool(_NO_AZURITE), reason=_NO_AZURITE)
if async_api is None:
    _NO_BROWSER = "Playwright for Python is missing: `make test` installs the test extras"
elif not CHROMIUM.exists():
    _NO_BROWSER = (
        "no /usr/bin/chromium: `make test` installs Debian's chromium package when run as root "
        "(or run `apt-get install chromium`); the sandbox browser test needs it"
    )
else:
    _NO_BROWSER = ""
needs_browser = pytest.mark.skipif(bool(_NO_BROWSER), reason=_NO_BROWSER)
pytestmark = needs_azurite


def expect(target: Any) -> Any:
    assert async_api is not None
    return async_api.expect(target)


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    """`python -m sandbox` on a free port, as `make run` starts it; its output goes to sandbox.log."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    port = free_port()
    log_path = ARTIFACTS / "sandbox.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AMLBOT_", "AZURE"))}
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while f"localhost:{port}" not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the sandbox did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
            pytest.fail(f"the sandbox did not stop on Ctrl-C:\n{log_path.read_text()}")
    assert code == 0, log_path.read_text()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    assert async_api is not None
    async with async_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


class Console:
    """The page, and what a person does on it."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.shots = 0

    async def shot(self, name: str, page: Any | None = None) -> None:
        self.shots += 1
        await (page or self.page).screenshot(path=str(ARTIFACTS / f"{self.shots:02d}-{name}.png"))

    async def run(self, command: str) -> None:
        box = self.page.get_by_test_id("message-input")
        await box.fill(command)
        await box.press("Enter")

    async def act_as(self, person: demo.Person) -> None:
        await self.page.get_by_test_id("user-switcher").select_option(person.id)
        await expect(self.page.locator("body")).to_have_attribute("data-user", person.id)

    def card(self, action: str) -> Any:
        """The request card of `action` in the channel."""
        return self.page.get_by_test_id("channel-messages").get_by_test_id("message").filter(
            has=self.page.locator(".b-header", has_text=action)
        )

    def private(self, containing: str) -> Any:
        return self.page.get_by_test_id("channel-messages").get_by_test_id("ephemeral").filter(has_text=containing)

    async def approve(self, card: Any, says: str, shot: str | None = None) -> None:
        """Approve, through the confirmation that says what approving does."""
        await card.get_by_role("button", name="Approve").click()
        dialog = self.page.get_by_test_id("confirm-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text(says)
        if shot:
            await self.shot(shot)
        await dialog.get_by_role("button", name="Approve").click()
        await expect(dialog).to_be_hidden()

    async def open_thread(self, card: Any) -> Any:
        await card.get_by_test_id("replies").click()
        thread = self.page.get_by_test_id("thread-messages")
        await expect(thread).to_be_visible()
        return thread


def request_id(header: str) -> str:
    found = re.search(r"R-[A-Za-z0-9]{8}", header)
    assert found, header
    return found.group(0)


@needs_browser
async def test_export_then_a_two_approver_deletion_in_a_real_browser(sandbox_url: str, browser: Any) -> None:
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    context.set_default_timeout(20_000)
    downloads: asyncio.Queue[Any] = asyncio.Queue()
    context.on("page", lambda opened: opened.on("download", downloads.put_nowait))
    page = await context.new_page()
    page.on("download", downloads.put_nowait)
    console = Console(page)
    await page.goto(sandbox_url)
    await expect(page.get_by_test_id("user-switcher")).to_have_value(demo.REQUESTER.id)
    await expect(page.get_by_test_id("channel-name")).to_have_text("# ml-ops")
    await console.shot("console")

    # ---- an export: requested, approved by someone else, run, downloaded -------------------------
    await console.run("/aml export run churn-train-01")
    export_card = console.card("export run")
    await expect(export_card).to_contain_text("Waiting for approval")
    export_id = request_id(await export_card.inner_text())
    await expect(export_card.locator(".b-header")).to_contain_text("Export run churn-train-01 — ")  # the headline
    await expect(export_card).to_contain_text("1 run")  # the detail, grouped
    await expect(export_card).to_contain_text("@Riley Requester")  # mentions render as names
    waiting = console.private(f"Request {export_id} is waiting for approval")
    await expect(waiting).to_be_visible()
    await console.shot("export-requested")

    await console.act_as(demo.APPROVER_1)
    await expect(waiting).to_have_count(0)  # a private reply: only its requester sees it
    await console.approve(export_card, "into a download link", shot="export-confirm-approval")
    await expect(export_card).to_contain_text("Done", timeout=45_000)
    await expect(export_card).to_contain_text("approved by @Avery Approver")
    await expect(export_card.get_by_role("button")).to_have_count(0)  # nothing left to click
    thread = await console.open_thread(export_card)
    await expect(thread).to_contain_text(re.compile(r"Finished: \d+ of \d+ items"))  # the progress line, at its end
    await expect(thread).to_contain_text("Export ready")
    await console.shot("export-done-with-progress-and-link")

    await thread.get_by_role("link", name="Download the archive").click()
    download = await asyncio.wait_for(downloads.get(), 30)
    archive = ARTIFACTS / "export.zip"
    await download.save_as(str(archive))
    assert zipfile.is_zipfile(archive)
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        manifest = json.loads(zipped.read("manifest.json"))
    assert any("dcid.churn-train-01/outputs/model/model.pkl" in name for name in names), names
    assert {entry["path"] for entry in manifest["files"]} <= set(names)

    # ---- a deletion that takes two approvers other than its requester -----------------------------
    await console.act_as(demo.REQUESTER)
    await page.get_by_role("button", name="Close thread").click()
    await console.run("/aml delete experiment fraud")
    delete_card = console.card("delete experiment")
    await expect(delete_card).to_contain_text("0 of 2", timeout=30_000)  # a preview of every run's files
    delete_id = request_id(await delete_card.inner_text())
    await expect(delete_card).to_contain_text("fraud-train-01")
    await console.shot("delete-requested")

    consequence = "This cannot be undone."
    await console.approve(delete_card, consequence)
    await expect(console.private("You cannot approve your own request")).to_be_visible()
    await expect(delete_card).to_contain_text("0 of 2")
    await console.shot("delete-self-approval-refused")

    await console.act_as(demo.APPROVER_1)
    await console.approve(delete_card, consequence)
    await expect(console.private(f"Your approval of {delete_id} is recorded: 1 of 2")).to_be_visible()
    await expect(delete_card).to_contain_text("1 of 2")
    await expect(delete_card).to_contain_text("Waiting for approval")
    await console.shot("delete-first-approval")

    await console.act_as(demo.APPROVER_2)
    await console.approve(delete_card, consequence)
    await expect(delete_card).to_contain_text("Done", timeout=45_000)
    await expect(delete_card).to_contain_text("2 of 2")
    thread = await console.open_thread(delete_card)
    await expect(thread).to_contain_text("Deletion receipt")
    receipt_file = thread.get_by_test_id("file").filter(has_text=f"{delete_id}-receipt.json")
    await expect(receipt_file).to_be_visible()
    await console.shot("delete-done-with-receipt")

    async with context.expect_page() as opened:
        await receipt_file.locator(".file-title").click()
    receipt_page = await opened.value
    await receipt_page.wait_for_load_state()
    text = await receipt_page.locator("body").inner_text()
    await console.shot("receipt-opened", receipt_page)
    document = json.loads(text)
    assert document["request_id"] == delete_id
    assert document["state"] == "succeeded"
    assert document["requester"] == demo.REQUESTER.id
    assert sorted(document["approvers"]) == sorted([demo.APPROVER_1.id, demo.APPROVER_2.id])
    assert {item["status"] for item in document["items"]} == {"deleted"}
    assert any("dcid.fraud-train-01/" in item["ref"] for item in document["items"])
    # What the banner and the README say: the public key alone verifies it.
    assert receipts.verify(text, Keyring(None, (PublicKey.parse(PUBLIC_KEY),)))[0]

    # The receipt also reads in place, and the page shows the approvals channel got the requests.
    await receipt_file.get_by_role("link", name="Preview").click()
    await expect(receipt_file.locator(".file-preview")).to_contain_text('"schema": "amlbot.receipt/v1"')
    await page.locator("#channel-list li", has_text="ml-approvals").click()
    await expect(page.get_by_test_id("channel-messages")).to_contain_text(f"{delete_id} needs 2 approval(s)")
    await console.shot("approvals-channel")
    await context.close()


async def test_the_console_speaks_slack_to_the_bot() -> None:
    """Without a browser: what the page sends becomes signed Slack requests the real bot acts on, and
    each person's view holds the channel plus only their own private replies."""
    from bot import cards
    from sandbox.app import running_sandbox

    async with running_sandbox(port=0) as sandbox, aiohttp.ClientSession(sandbox.url) as http:
        console = sandbox.console

        async def post(path: str, **body: str) -> dict[str, Any]:
            async with http.post(path, json=body) as response:
                assert response.status == 200, await response.text()
                return dict(await response.json())

        async def view(person: demo.Person) -> list[dict[str, Any]]:
            async with http.get("/console/state", params={"user": person.id}) as response:
                return list((await response.json())["messages"])

        answer = await post("/console/command", user=demo.REQUESTER.id, channel=demo.CHANNEL, text="/aml export user @alice")
        assert answer == {"ok": True, "status": 200}

        def card() -> dict[str, Any] | None:
            return next((m for m in console.messages(demo.CHANNEL) if m["text"].startswith("export user")), None)

        posted = await console.wait_for(card, timeout=30)
        # Typed `@alice` went out as Slack sends a picked mention; the bot found her runs through her email.
        [record] = sandbox.bot.services.store.list_requests(requester=demo.REQUESTER.id)
        assert record.text == f"export user <@{demo.ALICE.id}|alice>"
        assert "churn-train-01" in json.dumps(posted["blocks"])
        reply = f"Request {record.id} is waiting for approval."
        await console.wait_for(lambda: any(m["text"] == reply for m in console.ephemerals(user=demo.REQUESTER.id)))
        assert reply in [m["text"] for m in await view(demo.REQUESTER) if m.get("ephemeral")]
        assert not [m for m in await view(demo.APPROVER_1) if m.get("ephemeral")]  # private: the requester's only

        await post("/console/action", user=demo.APPROVER_1.id, channel=demo.CHANNEL, ts=posted["ts"], action_id=cards.ActionId.APPROVE)
        # An export about a person: its link goes to the requester's DM, the thread says where.
        dm = console.dm_channel(demo.REQUESTER.id)
        await console.wait_for(lambda: "Export ready" in json.dumps(console.messages(dm)), timeout=30)
        await console.wait_for(lambda: "sent privately to" in json.dumps(console.thread(demo.CHANNEL, posted["ts"])))
        assert "Export ready" not in json.dumps(console.messages(demo.CHANNEL))
        assert "Export ready" in json.dumps(await view(demo.REQUESTER))
        assert "Export ready" not in json.dumps(await view(demo.APPROVER_1))  # someone else's DM stays theirs
        # Reject asks why, in a form; what is typed there reaches the requester in the card's thread.
        await post("/console/command", user=demo.REQUESTER.id, channel=demo.CHANNEL, text="/aml delete run forecast-train-01")
        deletion = await console.wait_for(
            lambda: next((m for m in console.messages(demo.CHANNEL) if "forecast-train-01" in json.dumps(m.get("blocks"))), None), timeout=30
        )
        await post("/console/action", user=demo.APPROVER_1.id, channel=demo.CHANNEL, ts=deletion["ts"], action_id=cards.ActionId.REJECT)
        # The bot opens the form after its ack: wait for it, then the page shows it to Avery alone.
        await console.wait_for(lambda: [m for m in console.modals if m["user"] == demo.APPROVER_1.id])
        async with http.get("/console/state", params={"user": demo.APPROVER_1.id}) as response:
            form = (await response.json())["form"]
        assert form and form["title"]["text"].startswith("Reject R-")
        key = cards.ActionId.REJECT_REASON
        async with http.post("/console/form", json={"user": demo.APPROVER_1.id, "view_id": form["id"], "submit": True,
                                                    "values": {key: {key: "we still need it"}}}) as response:
            assert (await response.json()) == {"ok": True, "status": 200}
        await console.wait_for(lambda: any("we still need it" in m["text"] for m in console.thread(demo.CHANNEL, deletion["ts"])))

        events = [entry.event for entry in sandbox.bot.services.store.audit_entries()]
        assert "signature.rejected" not in events  # every request the console sent was signed as Slack signs


@pytest.mark.parametrize(
    ("should_escape", "sent"),
    [(True, "export user <@U0ALICE01|alice> &lt;x&gt; @nobody"), (False, "export user @alice &lt;x&gt; @nobody")],
)
def test_the_console_sends_mentions_as_slack_does_for_the_manifest(should_escape: bool, sent: str) -> None:
    from sandbox.console import ConsoleStandIn, command_escapes
    from sandbox.parts import MANIFEST

    console = ConsoleStandIn(should_escape=should_escape)
    console.add_user("U0ALICE01", "alice")
    assert console.typed("export user @alice <x> @nobody", command=True) == sent
    # Messages typed in the channel always carry mentions; the setting is the slash command's.
    assert console.typed("hi @alice").startswith("hi <@U0ALICE01|alice>")
    assert command_escapes(MANIFEST) is True  # what the sandbox plays: the manifest's own setting



@needs_browser
async def test_each_card_kind_as_an_approver_sees_it(sandbox_url: str, browser: Any) -> None:
    """A screenshot of each kind of card, in test-artifacts/sandbox/cards/ (the README shows three,
    copied to docs/), each reached the way a person would."""
    shots = ARTIFACTS / "cards"
    shots.mkdir(parents=True, exist_ok=True)
    context = await browser.new_context(viewport={"width": 1280, "height": 1800}, device_scale_factor=1)  # the tallest card fits
    context.set_default_timeout(30_000)
    page = await context.new_page()
    console = Console(page)
    await page.goto(sandbox_url)
    await expect(page.get_by_test_id("user-switcher")).to_have_value(demo.REQUESTER.id)

    async def snap(locator: Any, name: str) -> None:
        # The page re-renders on every change Slack would show: a card may be replaced mid-shot.
        for attempt in range(3):
            try:
                await locator.screenshot(path=str(shots / f"{name}.png"))
                return
            except async_api.Error:
                if attempt == 2:
                    raise

    await console.run("/aml export run churn-train-01")
    export = console.card("Export run churn-train-01")
    await expect(export).to_contain_text("Waiting for approval")
    await snap(export, "export")

    await console.run("/aml delete run churn-train-02")
    deletion = console.card("Delete run churn-train-02")
    await expect(deletion).to_contain_text("Waiting for approval")
    await expect(deletion.get_by_role("button", name="Approve deletion")).to_be_visible()
    await snap(deletion, "delete-run")

    await console.run("/aml delete workspace demo --with-dependents --purge")
    purge = console.card("Purge workspace demo")
    await expect(purge).to_contain_text("PERMANENT")
    await expect(purge.get_by_role("button", name="Approve purge")).to_be_visible()
    await snap(purge, "workspace-purge")

    await console.run("/aml delete user @alice")
    erasure = console.card("Erase everything about")
    await expect(erasure).to_contain_text("Waiting for approval")
    for approver in (demo.APPROVER_1, demo.APPROVER_2):
        await console.act_as(approver)
        await console.approve(erasure, "This cannot be undone.")
    await expect(erasure).to_contain_text("cooling off")
    await expect(erasure.get_by_role("button", name="Run now")).to_be_visible()
    await snap(erasure, "erasure-cooling-off")

    await console.act_as(demo.APPROVER_1)
    await console.approve(deletion, "This cannot be undone.")
    # Model churn:2 was registered from this run's outputs: those files are kept, the rest deleted.
    await expect(deletion).to_contain_text("Partly done", timeout=45_000)
    thread = await console.open_thread(deletion)
    receipt = thread.get_by_test_id("message").filter(has_text="Deletion receipt")
    await expect(receipt).to_contain_text("Deleted")
    await expect(receipt).to_contain_text("churn:2")
    await snap(receipt, "receipt")
    await page.get_by_role("button", name="Close thread").click()

    await page.get_by_test_id("home-link").click()
    home = page.get_by_test_id("home-tab")
    await expect(home).to_contain_text("Purge workspace demo")
    await expect(home).to_contain_text("Open its card")
    await snap(home, "home-tab")
    await context.close()

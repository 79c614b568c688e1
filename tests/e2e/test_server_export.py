"""Server-side exports end to end: the bot asks Azurite to copy the planned blobs, reads none of
their bytes, and hands out a read-and-list link to the export's container alone.

The bot reaches Azurite only through the storage proxy, which counts every request and the bytes of
every answer: what passed through the bot is what the proxy saw."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from azure.storage.blob import ContentSettings

from bot import cards
from bot.lifecycle import State
from commands.operations import cleanup_exports
from commands.operations.server_export import export_container
from tests.e2e.harness import APPROVER_1, ONCALL, REQUESTER, Harness, start_harness, stop_harness
from tests.support.storage_proxy import StorageFaultProxy

RUN = "big_train_1700000000_abcd1234"
PREFIX = f"ExperimentRun/dcid.{RUN}/"
THRESHOLD = 64 * 1024  # bytes: the run's files exceed it, so the export runs server-side
BIG = bytes(range(256)) * 8192  # 2 MiB


@pytest.fixture
async def copying(tmp_path: Path, proxy: StorageFaultProxy, fast_storage_retries: None) -> AsyncIterator[Harness]:
    running = await start_harness(tmp_path, proxy.connection_string, config={"server_export_over": THRESHOLD})
    yield running
    await stop_harness(running)


def _unslack(text: str) -> str:
    return text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")


async def _get(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.read()


async def _seed(harness: Harness) -> dict[str, bytes]:
    files = {f"{PREFIX}outputs/model.bin": BIG, f"{PREFIX}outputs/changes.txt": b"as planned\n" * 10,
             f"{PREFIX}logs/goes-away.txt": b"soon gone\n"}
    container = harness.blobs.get_container_client(harness.container)
    await container.create_container()
    for name, data in files.items():  # with the Content-MD5 an upload through the SDK may set
        md5 = hashlib.md5(data).digest()
        await container.upload_blob(name, data, content_settings=ContentSettings(content_md5=md5))
    await harness.seed({"ExperimentRun/dcid.someone_else/secret.txt": b"not in this export"})
    return files


async def test_a_big_export_is_copied_by_the_service_and_only_as_planned(copying: Harness, proxy: StorageFaultProxy) -> None:
    harness = copying
    await _seed(harness)
    request = await harness.submit(f"export run {RUN}")
    assert request.plan is not None and request.plan["notes"]["export"] == "server-side"
    card = str(harness.card(request.id)["blocks"])
    assert "Server-side export" in card and "amlbot reads none of their bytes" in card

    # Between the plan and the run: one file is rewritten, one is deleted.
    await harness.seed({f"{PREFIX}outputs/changes.txt": b"rewritten after approval\n"})
    await harness.blobs.get_blob_client(harness.container, f"{PREFIX}logs/goes-away.txt").delete_blob()
    seen = len(proxy.exchanges)
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    done = await harness.wait_state(request.id, State.PARTIALLY_SUCCEEDED)
    during = proxy.exchanges[seen:]

    # No byte of a planned blob passed through the bot: it sent no GET to the workspace's container,
    # and what it was answered is a few KiB. (Azurite checks each copy's source itself, with a HEAD,
    # and a GET of its metadata when that fails: through the proxy too, but not from the bot.)
    source = f"/{harness.container}/"
    bot = [e for e in during if e.agent.startswith("azsdk-python-storage-blob")]
    assert bot and len(bot) == len([e for e in during if "axios" not in e.agent])
    assert not [e for e in bot if e.method == "GET" and source in e.path_qs], "the bot read a source blob"
    assert sum(e.response_bytes for e in during) < 64 * 1024 < len(BIG)
    assert [e for e in bot if e.method == "PUT" and "/exports-" in e.path_qs]  # the copies and the manifest

    extras = done.result["extras"]
    assert (extras["copied"], extras["changed"], extras["missing"], extras["size"]) == (1, 1, 1, len(BIG))
    message = await harness.wait_thread(request.id, "your export is ready")
    posted = next(m for m in harness.thread(request.id) if m.get("text") == message)
    blocks = _unslack(str(posted["blocks"]))
    assert "server-side: 1 file (2.0 MiB) copied" in blocks and "1 changed since the plan, 1 missing" in blocks
    assert f"azcopy copy '{extras['link']}' '{request.id}' --recursive" in blocks

    link = extras["link"]
    where, _, sas = link.partition("?")
    assert "sp=rl" in sas and "sr=c" in sas and "se=" in sas  # read and list, the container alone, expiring
    assert where.endswith("/" + export_container(f"exports-{harness.container}", request.id))
    status, listing = await _get(f"{link}&restype=container&comp=list")
    assert status == 200
    copied_name = f"{harness.container}/{PREFIX}outputs/model.bin"
    assert set(re.findall(r"<Name>([^<]+)</Name>", listing.decode())) == {copied_name, "manifest.json"}
    assert (await _get(f"{where}/{copied_name}?{sas}")) == (200, BIG)

    status, body = await _get(extras["manifest"])
    manifest = json.loads(body)
    planned = {item["ref"]: item["etag"] for item in request.plan["items"]}
    [entry] = manifest["files"]
    assert entry == {"source": f"{harness.container}/{PREFIX}outputs/model.bin", "etag": planned[f"{PREFIX}outputs/model.bin"],
                     "size": len(BIG), "path": copied_name, "content_md5": base64.b64encode(hashlib.md5(BIG).digest()).decode()}
    assert {(e["source"].split("/", 1)[1], e["status"]) for e in manifest["not_exported"]} == {
        (f"{PREFIX}outputs/changes.txt", "changed"), (f"{PREFIX}logs/goes-away.txt", "already_absent")}
    assert manifest["plan_hash"] == done.plan_hash and "read none of the copied bytes" in manifest["unverified"]

    # The link reaches nothing outside the export: not the workspace's containers, nor a write.
    account = where.rsplit("/", 1)[0]
    assert (await _get(f"{account}/{harness.container}?{sas}&restype=container&comp=list"))[0] == 403
    assert (await _get(f"{account}/{harness.container}/ExperimentRun/dcid.someone_else/secret.txt?{sas}"))[0] == 403
    assert (await _get(f"{account}?{sas}&comp=list"))[0] == 403
    async with aiohttp.ClientSession() as session, session.put(
        f"{where}/planted.txt?{sas}", data=b"x", headers={"x-ms-blob-type": "BlockBlob"}
    ) as response:
        assert response.status == 403

    # Revoked as a zip export's archive is: the container goes, and the link with it.
    await harness.command(f"revoke {request.id}", user=REQUESTER)
    await harness.wait_reply(REQUESTER, "no longer works")
    assert (await _get(f"{link}&restype=container&comp=list"))[0] == 404
    assert await harness.blob_names(PREFIX) == {f"{PREFIX}outputs/model.bin", f"{PREFIX}outputs/changes.txt"}  # nothing else went


class _TwoHoursLater(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
        return datetime.now(tz) + timedelta(hours=2)


async def test_cleanup_exports_deletes_old_export_containers_and_nothing_else(copying: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    harness = copying
    await _seed(harness)
    request = await harness.submit(f"export run {RUN}")
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.SUCCEEDED)
    exported = export_container(f"exports-{harness.container}", request.id)
    lookalike = f"exports-{harness.container}-r-not-ours"
    await harness.seed({"x.txt": b"x"}, lookalike)
    monkeypatch.setattr(cleanup_exports, "datetime", _TwoHoursLater)

    cleanup = await harness.submit("cleanup exports --older-than 1h", user=ONCALL)
    assert cleanup.plan is not None and {item["container"] for item in cleanup.plan["items"]} == {exported}
    assert cleanup.plan["notes"]["export_containers"] == [exported]
    await harness.click(cards.ActionId.APPROVE, cleanup.id, ONCALL)
    await harness.wait_state(cleanup.id, State.SUCCEEDED)
    receipt = await harness.receipt(cleanup.id)
    assert {item["status"] for item in receipt["items"]} == {"deleted"} and len(receipt["items"]) == 4
    names = {c.name async for c in harness.blobs.list_containers(name_starts_with=f"exports-{harness.container}")}
    assert exported not in names and lookalike in names


async def test_a_cancel_during_the_copies_leaves_no_export_and_no_link(copying: Harness, proxy: StorageFaultProxy) -> None:
    harness = copying
    await _seed(harness)
    request = await harness.submit(f"export run {RUN}")
    held = proxy.hold("PUT", r"/exports-[^?]*/model\.bin$")  # the copy of the big file, asked of the service
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await held.reached.wait()
    await harness.command(f"cancel {request.id}")
    await harness.wait_reply(REQUESTER, "stops after")
    held.release.set()
    done = await harness.wait_state(request.id, State.FAILED)
    assert done.result["stopped_early"] and "link" not in done.result["extras"]
    await harness.wait_thread(request.id, "was stopped on request")
    container = harness.blobs.get_container_client(export_container(f"exports-{harness.container}", request.id))
    assert not await container.exists()
    assert len(await harness.blob_names(PREFIX)) == 3  # an export deletes nothing of the workspace's

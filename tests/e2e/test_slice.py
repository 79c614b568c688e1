"""The thin slice end to end: signed command -> card -> signed click -> job -> Azurite -> thread."""

from __future__ import annotations

import json
import time

import pytest

from bot import cards
from bot.lifecycle import State
from tests.e2e.harness import APPROVER_1, REQUESTER, Harness

RUN = "churn_train_1700000000_abcd1234"


@pytest.mark.both_modes
async def test_delete_run_end_to_end(harness: Harness) -> None:
    prefix = f"ExperimentRun/dcid.{RUN}/"
    await harness.seed(
        {
            f"{prefix}user_logs/std_log.txt": b"epoch 1 loss 0.3\n",
            f"{prefix}outputs/model.joblib": b"x" * 2048,
            f"{prefix}logs/azureml/executionlogs.txt": b"started\n",
            "ExperimentRun/dcid.other_run/user_logs/std_log.txt": b"keep me\n",
        }
    )
    request = await harness.submit(f"delete run {RUN}")
    card = harness.card(request.id)
    assert request.state is State.PENDING and request.requester == REQUESTER
    text = str(card["blocks"])
    assert f"Delete run {RUN} — 3 files" in text and "*1 run* · 3 files" in text
    # Blob names are not on the card: the full plan is the file in its thread.
    assert "outputs/model.joblib" not in text
    plan_file = next(f for f in harness.slack.files if f.filename == f"{request.id}-plan.json")
    assert plan_file.thread_ts == request.card_ts and b"outputs/model.joblib" in plan_file.content
    assert [e["action_id"] for e in card["blocks"][-1]["elements"]] == [cards.ActionId.APPROVE, cards.ActionId.REJECT, cards.ActionId.CANCEL]

    status, _ = await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    assert status == 200
    done = await harness.wait_state(request.id, State.SUCCEEDED)
    assert done.approvers == (APPROVER_1,)

    assert await harness.blob_names(prefix) == set()
    assert await harness.blob_names("ExperimentRun/dcid.other_run/") == {"ExperimentRun/dcid.other_run/user_logs/std_log.txt"}

    thread = await harness.slack.wait_for(
        lambda: any("receipt" in (m.get("text") or "").lower() for m in harness.thread(request.id)) and harness.thread(request.id)
    )
    assert any("*Deleted*: 3 files of 1 run" in str(m.get("blocks")) for m in thread)
    receipt = await harness.receipt(request.id)
    assert {item["status"] for item in receipt["items"]} == {"deleted"}
    final_card = harness.card(request.id)
    assert not any(b["type"] == "actions" for b in final_card["blocks"])
    assert "Done" in str(final_card["blocks"])
    assert harness.store.verify_audit().ok


async def test_forged_and_stale_requests_get_401_and_change_nothing(harness: Harness) -> None:
    await harness.seed({f"ExperimentRun/dcid.{RUN}/a.txt": b"a"})
    forged, _ = await harness.command(f"delete run {RUN}", signature="v0=" + "0" * 64)
    stale, _ = await harness.command(f"delete run {RUN}", timestamp=int(time.time()) - 301)
    assert (forged, stale) == (401, 401)
    assert harness.store.list_requests() == []
    assert harness.slack.calls_to("chat.postMessage") == []
    assert harness.store.audit_entries() == []  # forgeries cost no database write each
    await harness.bot.rejections.flush()  # they are audited in aggregate, each minute
    [entry] = harness.store.audit_entries()
    assert entry.event == "signature.rejected" and json.loads(entry.detail)["reasons"] == {"bad signature": 1, "stale": 1}


async def test_export_run_link_downloads_the_run_with_a_true_manifest(harness: Harness) -> None:
    import hashlib
    import io
    import json
    import zipfile

    import aiohttp

    prefix = f"ExperimentRun/dcid.{RUN}/"
    files = {
        f"{prefix}user_logs/std_log.txt": b"hello from the run\n" * 50,
        f"{prefix}outputs/model.joblib": bytes(range(256)) * 40,
        f"{prefix}azureml-logs/process_info.json": b'{"pid": 1}',
    }
    await harness.seed(files | {"ExperimentRun/dcid.someone_else/x.txt": b"not mine"})
    request = await harness.submit(f"export run {RUN}")
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.SUCCEEDED)

    def link_message() -> dict | None:
        return next((m for m in harness.thread(request.id) if "Export ready" in str(m.get("blocks"))), None)

    message = await harness.slack.wait_for(link_message)
    link = next(
        el["text"].split("<", 1)[1].split("|", 1)[0]
        for block in message["blocks"] if block["type"] == "section"
        for el in [block["text"]]
    )
    assert "sp=r" in link and "se=" in link  # read-only, expiring
    async with aiohttp.ClientSession() as session, session.get(link) as response:
        assert response.status == 200
        archive = await response.read()
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        names = set(zipped.namelist())
        manifest = json.loads(zipped.read("manifest.json"))
        contents = {name: zipped.read(name) for name in names if name != "manifest.json"}
    container = harness.container
    assert names == {f"{container}/{name}" for name in files} | {"manifest.json"}
    for entry in manifest["files"]:
        source = entry["source"].split("/", 1)[1]
        assert entry["size"] == len(files[source])
        assert entry["sha256"] == hashlib.sha256(files[source]).hexdigest()
        assert contents[entry["path"]] == files[source]
    assert manifest["plan_hash"] == harness.request(request.id).plan_hash
    assert hashlib.sha256(archive).hexdigest() in str(message["blocks"])
    # An export deletes nothing.
    assert len(await harness.blob_names(prefix)) == 3

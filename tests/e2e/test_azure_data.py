"""Experiments, models and users end to end: signed commands and clicks, the real Azure SDK clients
against the control-plane stand-in, files in Azurite, receipts and export links in the thread."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import aiohttp
import pytest

from bot import cards
from bot.lifecycle import State
from sandbox.standins.azure.server import AzureStandIn
from sandbox.standins.azure.state import Identity, Workspace
from tests.e2e.harness import APPROVER_1, REQUESTER, RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, Harness

ALICE = Identity(name="Alice Example", object_id="a11ce000-0000-4000-8000-000000000001", upn="alice@contoso.com")
# Alice as the control plane shows most people (by display name), with no UPN in run history.
ALICE_BY_NAME = Identity(name=ALICE.name, object_id=ALICE.object_id, upn=ALICE.upn, shows="name", upn_in_history=False)
BOB = Identity(name="Bob Builder", object_id="b0b00000-0000-4000-8000-000000000002", upn="bob@contoso.com")


def _workspace(azure: AzureStandIn) -> Workspace:
    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    assert workspace is not None
    return workspace


def _run_files(run: str) -> dict[str, bytes]:
    prefix = f"ExperimentRun/dcid.{run}/"
    return {
        f"{prefix}user_logs/std_log.txt": f"{run} says hello\n".encode() * 20,
        f"{prefix}outputs/model.joblib": hashlib.sha256(run.encode()).digest() * 64,
    }


def _job_names(azure: AzureStandIn) -> set[str]:
    with azure.state.lock:
        return {job["name"] for job in _workspace(azure).jobs.values()}


async def _approve(harness: Harness, text: str, *final: State) -> tuple[Any, dict[str, Any]]:
    request = await harness.submit(text)
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, *final)
    return request, harness.card(request.id)


def _by_ref(receipt: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {item["ref"].rsplit("/", 1)[-1] if item["kind"] != "blob" else item["ref"]: (item["status"], item["reason"]) for item in receipt["items"]}


def _link_message(harness: Harness, request_id: str) -> dict[str, Any] | None:
    posted = harness.thread(request_id) + harness.direct_messages(harness.request(request_id).requester)
    return next((m for m in posted if "Export ready" in str(m.get("blocks")) and request_id in m["text"] + str(m["blocks"])), None)


async def _archive(harness: Harness, request_id: str) -> bytes:
    """The archive behind the export's link: read-only and expiring."""
    message = await harness.slack.wait_for(lambda: _link_message(harness, request_id))
    link = str(message["blocks"][0]["text"]["text"]).split("<", 1)[1].split("|", 1)[0]
    assert "sp=r" in link and "se=" in link
    async with aiohttp.ClientSession() as session, session.get(link) as response:
        assert response.status == 200
        return await response.read()


async def _download(harness: Harness, request_id: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The export posted in the thread, or sent to its requester alone (an export about a person):
    its manifest and members, each checked against the manifest."""
    message = await harness.slack.wait_for(lambda: _link_message(harness, request_id))
    archive = await _archive(harness, request_id)
    assert hashlib.sha256(archive).hexdigest() in str(message["blocks"])
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        manifest = json.loads(zipped.read("manifest.json"))
        members = {name: zipped.read(name) for name in zipped.namelist() if name != "manifest.json"}
    assert manifest["plan_hash"] == harness.request(request_id).plan_hash
    assert {entry["path"] for entry in manifest["files"]} == set(members)
    for entry in manifest["files"]:
        assert entry["sha256"] == hashlib.sha256(members[entry["path"]]).hexdigest()
        assert entry["size"] == len(members[entry["path"]])
    return manifest, members


async def _seed_experiments(harness: Harness, azure: AzureStandIn) -> dict[str, bytes]:
    workspace = _workspace(azure)
    workspace.add_job("churn-train-1", experiment_name="churn", created_by=ALICE)
    workspace.add_job("churn-pipe-1", experiment_name="churn", created_by=ALICE, job_type="Pipeline")
    workspace.add_job("churn-step-1", experiment_name="churn", created_by=ALICE, parent_job_name="churn-pipe-1")
    workspace.add_job("churn-live-1", experiment_name="churn", created_by=ALICE, status="Running")
    workspace.add_job("fraud-train-1", experiment_name="fraud", created_by=BOB)
    files: dict[str, bytes] = {}
    for run in ("churn-train-1", "churn-pipe-1", "churn-step-1", "churn-live-1", "fraud-train-1"):
        files |= _run_files(run)
    await harness.seed(files)
    return files


async def test_delete_experiment_takes_finished_runs_and_keeps_the_running_one(
    azure_harness: Harness, azure: AzureStandIn
) -> None:
    await _seed_experiments(azure_harness, azure)

    request, card = await _approve(azure_harness, "delete experiment churn", State.PARTIALLY_SUCCEEDED)

    assert "churn-live-1 (still running" in str(card["blocks"])
    for gone in ("churn-train-1", "churn-pipe-1", "churn-step-1"):  # the pipeline step's files too
        assert await azure_harness.blob_names(f"ExperimentRun/dcid.{gone}/") == set()
    for kept in ("churn-live-1", "fraud-train-1"):
        assert len(await azure_harness.blob_names(f"ExperimentRun/dcid.{kept}/")) == 2
    assert _job_names(azure) == {"churn-live-1", "fraud-train-1"}
    receipt = _by_ref(await azure_harness.receipt(request.id))
    assert receipt["churn-train-1"] == ("deleted", "") and receipt["churn-pipe-1"] == ("deleted", "")
    assert receipt["churn-live-1"][0] == "retained" and "still running" in receipt["churn-live-1"][1]
    assert sum(status == "deleted" for status, _ in receipt.values()) == 2 + 6  # two records, six blobs


async def test_export_experiment_links_its_runs_files_and_records(azure_harness: Harness, azure: AzureStandIn) -> None:
    files = await _seed_experiments(azure_harness, azure)
    # Bigger than two of the door's 4 MiB ranges, read several at once: they must come back in order
    # (each line is numbered). Compressible, yet big: it is stored, as deflate would cost more than it saves.
    weights = "ExperimentRun/dcid.churn-train-1/outputs/weights.pt"
    files[weights] = b"".join(b"%09d\n" % line for line in range(950_000))
    await azure_harness.seed({weights: files[weights]})

    request, _ = await _approve(azure_harness, "export experiment churn", State.SUCCEEDED)

    manifest, members = await _download(azure_harness, request.id)
    container = azure_harness.container
    archive = await _archive(azure_harness, request.id)
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        stored = zipped.getinfo(f"{container}/{weights}")
        logs = zipped.getinfo(f"{container}/ExperimentRun/dcid.churn-train-1/user_logs/std_log.txt")
    assert stored.compress_size >= stored.file_size  # stored, not deflated
    assert logs.compress_size < logs.file_size  # text is deflated
    churn = {name: data for name, data in files.items() if "/dcid.churn-" in name}
    assert {f"{container}/{name}": data for name, data in churn.items()} == {k: v for k, v in members.items() if k.startswith(container)}
    record = json.loads(members["churn-train-1/run.json"])
    assert record["properties"]["experimentName"] == "churn"
    assert record["systemData"]["createdBy"] == ALICE.upn
    assert {e["path"] for e in manifest["files"] if e["path"].endswith("run.json")} == {
        f"{run}/run.json" for run in ("churn-train-1", "churn-pipe-1", "churn-live-1")
    }
    assert _job_names(azure) >= {"churn-train-1", "churn-pipe-1"}  # an export deletes nothing


async def _seed_models(harness: Harness, azure: AzureStandIn) -> tuple[str, dict[str, bytes]]:
    """churn:1 from a run's outputs (artifact store), churn:2 uploaded (workspaceblobstore), churn:3
    registered again from churn:2's files; returns the blob store's container and its files."""
    workspace = _workspace(azure)
    workspace.add_model_version("churn", "1", job_name="churn-train-1", created_by=ALICE)
    version = workspace.add_model_version("churn", "2", created_by=ALICE)
    workspace.add_model_version("churn", "3", model_uri=version["properties"]["modelUri"], created_by=BOB)
    workspace.add_model_version("fraud", "1", created_by=BOB)
    upload = version["properties"]["modelUri"].split("/paths/", 1)[1]
    uploaded = {f"{upload}/model.pkl": b"pickled" * 300, f"{upload}/MLmodel": b"flavors: {}\n"}
    await harness.seed({"ExperimentRun/dcid.churn-train-1/outputs/model/model.pkl": b"run model" * 100})
    blobstore = harness.blobs.get_container_client(workspace.blob_container)
    if not await blobstore.exists():
        await blobstore.create_container()
    for name, data in uploaded.items():
        await blobstore.upload_blob(name, data, overwrite=True)
    return workspace.blob_container, uploaded


def _versions(azure: AzureStandIn, model: str) -> dict[str, bool]:
    """Version -> archived, as the service holds them."""
    with azure.state.lock:
        entry = _workspace(azure).models[model]
        return {v: bool(body["properties"]["isArchived"]) for v, body in entry.versions.items()}


async def test_delete_model_deletes_versions_and_files_and_reports_a_refused_delete_as_archived(
    azure_harness: Harness, azure: AzureStandIn
) -> None:
    blob_container, uploaded = await _seed_models(azure_harness, azure)
    # The service turns the REST delete of one version down: amlbot archives it and says so.
    azure.fail_next("DELETE", r"/models/churn/versions/1$", status=405, code="MethodNotAllowed",
                    message="The resource does not support http method 'DELETE'.")

    request, card = await _approve(azure_harness, "delete model churn", State.PARTIALLY_SUCCEEDED)

    assert "only archives model versions" in str(card["blocks"])
    assert await azure_harness.blob_names("ExperimentRun/dcid.churn-train-1/outputs/model/") == set()
    remaining = azure_harness.blobs.get_container_client(blob_container).list_blobs()
    assert [b.name async for b in remaining] == []
    assert _versions(azure, "churn") == {"1": True}
    assert _versions(azure, "fraud") == {"1": False}
    receipt = _by_ref(await azure_harness.receipt(request.id))
    assert receipt["1"] == ("retained", "archived: the service only archives")
    assert receipt["2"] == receipt["3"] == ("deleted", "")
    assert all(receipt[name] == ("deleted", "") for name in uploaded)


async def test_delete_one_model_version_keeps_files_another_version_uses(azure_harness: Harness, azure: AzureStandIn) -> None:
    blob_container, uploaded = await _seed_models(azure_harness, azure)

    request = await azure_harness.submit("delete model churn:2")

    assert set(request.plan["notes"]["retained"].values()) == {"also used by model churn:3"}
    assert "2 file(s) are also used by `model churn:3`: they are kept" in str(azure_harness.card(request.id)["blocks"])
    status, _ = await azure_harness.click(cards.ActionId.APPROVE, request.id, REQUESTER)  # never one's own deletion
    assert status == 200 and azure_harness.request(request.id).state is State.PENDING
    await azure_harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await azure_harness.wait_state(request.id, State.PARTIALLY_SUCCEEDED)
    assert _versions(azure, "churn") == {"1": False, "3": False}
    remaining = azure_harness.blobs.get_container_client(blob_container).list_blobs()
    assert {b.name async for b in remaining} == set(uploaded)


async def test_export_model_version_has_its_files_and_metadata(azure_harness: Harness, azure: AzureStandIn) -> None:
    blob_container, uploaded = await _seed_models(azure_harness, azure)

    request, _ = await _approve(azure_harness, "export model churn:2", State.SUCCEEDED)

    _, members = await _download(azure_harness, request.id)
    assert {k: v for k, v in members.items() if k != "churn/2/model.json"} == {f"{blob_container}/{n}": d for n, d in uploaded.items()}
    metadata = json.loads(members["churn/2/model.json"])
    assert metadata["name"] == "2" and metadata["properties"]["modelUri"].endswith("/churn")
    assert _versions(azure, "churn") == {"1": False, "2": False, "3": False}


async def _seed_people(harness: Harness, azure: AzureStandIn) -> None:
    workspace = _workspace(azure)
    workspace.add_job("alice-1", experiment_name="churn", created_by=ALICE)
    workspace.add_job("alice-app-1", experiment_name="nightly", created_by=ALICE_BY_NAME)
    workspace.add_job("alice-live", experiment_name="churn", created_by=ALICE, status="Queued")
    workspace.add_job("bob-1", experiment_name="churn", created_by=BOB)
    workspace.add_model_version("alice-model", "1", created_by=ALICE)
    workspace.add_model_version("bob-model", "1", created_by=BOB)
    files: dict[str, bytes] = {}
    for run in ("alice-1", "alice-app-1", "alice-live", "bob-1"):
        files |= _run_files(run)
    await harness.seed(files)


async def test_delete_user_by_email_lists_what_it_keeps(azure_harness: Harness, azure: AzureStandIn) -> None:
    await _seed_people(azure_harness, azure)

    request, card = await _approve(azure_harness, "delete user Alice@Contoso.com", State.PARTIALLY_SUCCEEDED)

    assert "alice-model:1 (a model version they registered" in str(card["blocks"])
    for gone in ("alice-1", "alice-app-1"):  # the second shows only a display name on the control plane
        assert await azure_harness.blob_names(f"ExperimentRun/dcid.{gone}/") == set()
    for kept in ("alice-live", "bob-1"):
        assert len(await azure_harness.blob_names(f"ExperimentRun/dcid.{kept}/")) == 2
    assert _job_names(azure) == {"alice-live", "bob-1"}
    assert _versions(azure, "alice-model") == {"1": False}
    receipt = _by_ref(await azure_harness.receipt(request.id))
    assert receipt["alice-1"] == receipt["alice-app-1"] == ("deleted", "")
    assert receipt["alice-live"][0] == receipt["1"][0] == "retained"
    assert "bob-1" not in receipt


async def test_export_user_by_object_id_has_their_runs_and_model_records(azure_harness: Harness, azure: AzureStandIn) -> None:
    await _seed_people(azure_harness, azure)

    request, _ = await _approve(azure_harness, f"export user {ALICE.object_id}", State.SUCCEEDED)

    _, members = await _download(azure_harness, request.id)
    records = {name for name in members if name.endswith(".json")}
    # Her UPN, learned from run history, finds the model version she registered.
    runs = ("alice-1", "alice-app-1", "alice-live")
    assert records == {*(f"{run}/run.json" for run in runs), *(f"{run}/run-history.json" for run in runs), "alice-model/1/model.json"}
    assert not any("bob" in name for name in members)
    assert members[f"{azure_harness.container}/ExperimentRun/dcid.alice-1/user_logs/std_log.txt"] == _run_files("alice-1")[
        "ExperimentRun/dcid.alice-1/user_logs/std_log.txt"
    ]


async def test_user_named_by_slack_mention_needs_an_email(azure_harness: Harness, azure: AzureStandIn) -> None:
    await _seed_people(azure_harness, azure)

    await azure_harness.command("delete user <@U0ALICE01>")

    await azure_harness.wait_reply(containing="Name them by email or Entra object id")
    assert azure_harness.store.list_requests() == []


@pytest.mark.parametrize(
    "named",
    [
        "<@U0ALICE01|alice>",  # should_escape: true (manifest.yml): Slack sends the mention
        "@alice",  # should_escape: false, or typed without the autocomplete: the plain name
        "@Alice.C",  # the display name, in any case
    ],
)
async def test_a_person_named_either_way_slack_sends_is_found(azure_harness: Harness, azure: AzureStandIn, named: str) -> None:
    await _seed_people(azure_harness, azure)
    slack = azure_harness.slack
    slack.add_user("U0ALICE01", "alice", real_name="Alice Example", display_name="alice.c", email="alice@contoso.com")
    for n in range(4):
        slack.add_user(f"U0PEOPLE{n}", f"person{n}")
    slack.users_page_max = 2  # the lookup has to follow users.list's cursor

    request = await azure_harness.submit(f"export user {named}")

    assert request.intent == {"text": "export user <@U0ALICE01> --workspace dev"}
    runs = {item["ref"].split("/")[1] for item in request.plan["items"] if item["kind"] == "blob"}
    assert runs == {"dcid.alice-1", "dcid.alice-app-1", "dcid.alice-live"}


async def test_a_plain_name_that_means_nobody_or_several_people_is_refused(azure_harness: Harness, azure: AzureStandIn) -> None:
    await _seed_people(azure_harness, azure)
    slack = azure_harness.slack
    slack.add_user("U0ALICE01", "alice", real_name="Alice Example", display_name="ali")
    slack.add_user("U0ALICE02", "alice2", real_name="Alice Other", display_name="ali")
    slack.add_user("U0GONE001", "carol", deleted=True)

    await azure_harness.command("export user @bob")
    assert "Nobody in this Slack workspace is called `@bob`" in await azure_harness.wait_reply(containing="@bob")
    await azure_harness.command("export user @carol")  # deactivated
    assert "Nobody" in await azure_harness.wait_reply(containing="@carol")
    await azure_harness.command("export user @ali")
    reply = await azure_harness.wait_reply(containing="@ali`")
    assert "could be any of 2 people" in reply and "Alice Example (@alice)" in reply and "Alice Other (@alice2)" in reply
    assert azure_harness.store.list_requests() == []


async def test_user_named_by_slack_mention_is_found_through_their_slack_email(azure_harness: Harness, azure: AzureStandIn) -> None:
    await _seed_people(azure_harness, azure)
    azure_harness.slack.add_user("U0ALICE01", "alice", email="Alice@Contoso.com")

    request = await azure_harness.submit("export user <@U0ALICE01|alice>")

    runs = {item["ref"].split("/")[1] for item in request.plan["items"] if item["kind"] == "blob"}
    assert runs == {"dcid.alice-1", "dcid.alice-app-1", "dcid.alice-live"}
    assert azure_harness.slack.calls_to("users.info")[-1].args["user"] == "U0ALICE01"

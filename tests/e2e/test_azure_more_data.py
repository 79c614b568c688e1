"""Data assets, notebooks, schedules, environments and components end to end: signed commands and
clicks, the real Azure SDK clients against the control-plane stand-in, blobs in Azurite, Studio
notebooks in the Azure Files stand-in, receipts and export links in the thread."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import cards
from bot.lifecycle import State
from sandbox.standins.azure.files import AzureFilesStandIn
from sandbox.standins.azure.server import AzureStandIn
from sandbox.standins.azure.state import NOTEBOOKS_SHARE, Workspace
from sandbox.standins.graph import GraphStandIn
from tests.e2e.harness import APPROVER_1, Harness, start_harness, stop_harness
from tests.e2e.test_azure_data import ALICE, BOB, _approve, _download, _run_files, _workspace

ALICE_NOTEBOOKS = {
    "Users/alice/churn analysis.ipynb": b'{"cells": []}' * 50,
    "Users/alice/scratch/notes.md": b"# where the churn data came from\n",
}
BOB_NOTEBOOKS = {"Users/bob/eda.ipynb": b'{"cells": [1]}'}


@pytest.fixture
async def files() -> AsyncIterator[AzureFilesStandIn]:
    async with AzureFilesStandIn() as standin:
        yield standin
        assert standin.errors == []


@pytest.fixture
async def bot(
    tmp_path: Path, azurite_connection: str, azure: AzureStandIn, files: AzureFilesStandIn, graph: GraphStandIn
) -> AsyncIterator[Harness]:
    """The bot with one connection string for Azurite's blobs and the stand-in's file shares."""
    running = await start_harness(tmp_path, azurite_connection + files.connection_setting, azure, graph)
    yield running
    await stop_harness(running)


async def _upload(harness: Harness, container: str, files: dict[str, bytes]) -> None:
    client = harness.blobs.get_container_client(container)
    if not await client.exists():
        await client.create_container()
    for name, data in files.items():
        await client.upload_blob(name, data, overwrite=True)


async def _blobs(harness: Harness, container: str, prefix: str) -> set[str]:
    return {b.name async for b in harness.blobs.get_container_client(container).list_blobs(name_starts_with=prefix)}


def _folder(uri: str) -> str:
    """The blob path a datastore URI or an upload URL names, without a trailing slash."""
    return (uri.split("/paths/", 1)[1] if "/paths/" in uri else uri.split(".net/", 1)[1].split("/", 1)[1]).rstrip("/")


def _by_name(receipt: dict) -> dict[str, tuple[str, str]]:
    """Receipt outcomes by record name (`alice-data:1`, `alice-1`) or by file path."""
    outcomes = {}
    for item in receipt["items"]:
        parts = item["ref"].split("/")
        name = item["ref"] if item["container"] else f"{parts[-3]}:{parts[-1]}" if parts[-2] == "versions" else parts[-1]
        outcomes[name] = (item["status"], item["reason"])
    return outcomes


async def _seed_alice(harness: Harness, workspace: Workspace, files: AzureFilesStandIn) -> dict[str, str]:
    """Alice's runs, model, data, environment, component, schedule and notebooks, and Bob's things;
    Bob's run reads one of Alice's data assets. Returns where her data assets' files are."""
    mine = workspace.add_data_version("alice-data", "1", created_by=ALICE)
    shared = workspace.add_data_version("alice-shared", "1", created_by=ALICE)
    env = workspace.add_environment_version("alice-env", "1", created_by=ALICE)
    code = workspace.add_code_version("a1c0de", "1", created_by=ALICE)
    workspace.add_component_version("alice-prep", "1", code=code["id"], created_by=ALICE)
    workspace.add_model_version("alice-model", "1", created_by=ALICE)
    workspace.add_schedule("alice-nightly", experiment_name="churn", created_by=ALICE)
    workspace.add_schedule("bob-weekly", cron="0 5 * * 1", created_by=BOB)
    uses = {"jobInputType": "uri_folder", "mode": "ReadOnlyMount"}
    workspace.add_job("alice-1", created_by=ALICE, inputs={"train": uses | {"uri": "azureml:alice-data:1"}})
    workspace.add_job("bob-1", created_by=BOB, inputs={"train": uses | {"uri": "azureml:alice-shared:1"}})
    where = {
        "data": _folder(mine["properties"]["dataUri"]),
        "shared": _folder(shared["properties"]["dataUri"]),
        "env": _folder(env["properties"]["build"]["contextUri"]),
        "code": _folder(code["properties"]["codeUri"]),
    }
    await harness.seed(_run_files("alice-1") | _run_files("bob-1"))
    await _upload(harness, workspace.blob_container, {
        f"{where['data']}/part-0.csv": b"id,churned\n1,0\n", f"{where['data']}/part-1.csv": b"id,churned\n2,1\n",
        f"{where['shared']}/all.csv": b"id\n1\n2\n",
        f"{where['env']}/Dockerfile": b"FROM python:3.11\n", f"{where['code']}/run.py": b"print('prep')\n",
    })
    for path, data in (ALICE_NOTEBOOKS | BOB_NOTEBOOKS).items():
        files.add_file(NOTEBOOKS_SHARE, path, data)
    return where


async def test_erasure_plan_lists_all_they_made_and_the_receipt_gives_each_an_outcome(
    bot: Harness, azure: AzureStandIn, files: AzureFilesStandIn
) -> None:
    workspace = _workspace(azure)
    where = await _seed_alice(bot, workspace, files)

    request = await bot.submit("delete user alice@contoso.com")

    kinds = {item["kind"] for item in request.plan["items"]}
    assert kinds == {"job", "model_version", "data_version", "environment_version", "component_version", "schedule", "blob", "file", "directory"}
    card = str(bot.card(request.id)["blocks"])
    assert "`alice-nightly` (cron `0 3 * * *`, experiment `churn`, enabled)" in card and "bob-weekly" not in card
    assert "1 file(s) are also used by `run bob-1`: they are kept" in card
    assert "alice-model:1 (a model version they registered" in card
    await bot.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await bot.wait_state(request.id, State.PARTIALLY_SUCCEEDED)

    receipt = await bot.receipt(request.id)
    assert len(receipt["items"]) == len(request.plan["items"])
    assert not [i for i in receipt["items"] if i["reason"].startswith("not attempted")]
    outcome = _by_name(receipt)
    assert outcome["alice-1"] == outcome["alice-nightly"] == ("deleted", "")
    # Data versions go through the REST DELETE; environments and components can only be archived.
    assert outcome["alice-data:1"] == outcome["alice-shared:1"] == ("deleted", "")
    for version in ("alice-env:1", "alice-prep:1"):
        assert outcome[version][0] == "archived"
    assert outcome["alice-model:1"][0] == "retained"
    assert outcome[f"{where['shared']}/all.csv"] == ("retained", "also used by run bob-1")
    assert {outcome[p][0] for p in ALICE_NOTEBOOKS} == {"deleted"}
    assert outcome["Users/alice"] == outcome["Users/alice/scratch"] == ("deleted", "")
    # What is gone, and what stays.
    assert files.files(NOTEBOOKS_SHARE) == BOB_NOTEBOOKS and files.directories(NOTEBOOKS_SHARE) == {"Users", "Users/bob"}
    for folder in ("data", "env", "code"):
        assert await _blobs(bot, workspace.blob_container, where[folder]) == set()
    assert await _blobs(bot, workspace.blob_container, where["shared"]) == {f"{where['shared']}/all.csv"}
    assert await bot.blob_names("ExperimentRun/dcid.alice-1/") == set() and await bot.blob_names("ExperimentRun/dcid.bob-1/")
    with azure.state.lock:
        assert set(workspace.schedules) == {"bob-weekly"}
        assert workspace.data["alice-data"].versions == {}
        assert workspace.components["alice-prep"].versions["1"]["properties"]["isArchived"] is True
    # The schedule went first, so it could start no run while the rest was deleted.
    alice = [c for c in azure.calls if c.method in ("PUT", "DELETE") and "/workspaces/" in c.path and "alice" in c.path]
    assert [(c.method, c.path.rsplit("/", 1)[-1]) for c in alice[:2]] == [("PUT", "alice-nightly"), ("DELETE", "alice-nightly")]


async def test_export_user_has_their_data_environments_components_schedules_and_notebooks(
    bot: Harness, azure: AzureStandIn, files: AzureFilesStandIn
) -> None:
    workspace = _workspace(azure)
    where = await _seed_alice(bot, workspace, files)

    request, _ = await _approve(bot, f"export user {ALICE.object_id}", State.SUCCEEDED)

    _, members = await _download(bot, request.id)
    for record in ("alice-data/1/data.json", "alice-env/1/environment.json", "alice-prep/1/component.json",
                   "alice-nightly/schedule.json", "alice-model/1/model.json", "alice-1/run.json"):
        assert json.loads(members[record])["id"].startswith("/subscriptions/")
    assert {path: members[f"{NOTEBOOKS_SHARE}/{path}"] for path in ALICE_NOTEBOOKS} == ALICE_NOTEBOOKS
    blobstore = workspace.blob_container
    assert members[f"{blobstore}/{where['data']}/part-1.csv"] == b"id,churned\n2,1\n"
    assert f"{blobstore}/{where['env']}/Dockerfile" in members and f"{blobstore}/{where['code']}/run.py" in members
    assert not any("bob" in name for name in members)
    assert files.files(NOTEBOOKS_SHARE) == ALICE_NOTEBOOKS | BOB_NOTEBOOKS  # an export deletes nothing


def _data_a_run_reads(workspace: Workspace, name: str) -> tuple[str, dict[str, bytes]]:
    """A data version of three files, the first of which Bob's run reads; its folder and files."""
    version = workspace.add_data_version(name, "1", created_by=ALICE)
    folder = _folder(version["properties"]["dataUri"])
    workspace.add_job(f"train-{name}", created_by=BOB, inputs={"raw": {
        "jobInputType": "uri_file", "mode": "Download",
        "uri": f"azureml://datastores/workspaceblobstore/paths/{folder}/part-0.csv",
    }})
    return folder, {f"{folder}/part-{i}.csv": f"id\n{i}\n".encode() for i in range(3)}


async def test_delete_data_deletes_the_version_and_keeps_files_a_run_reads_unless_include_shared(bot: Harness, azure: AzureStandIn) -> None:
    workspace = _workspace(azure)
    folder, parts = _data_a_run_reads(workspace, "churn-data")
    await _upload(bot, workspace.blob_container, parts)

    request, card = await _approve(bot, "delete data churn-data:1", State.PARTIALLY_SUCCEEDED)

    assert "1 file(s) are also used by `run train-churn-data`: they are kept. `--include-shared` deletes them too." in str(card["blocks"])
    outcome = _by_name(await bot.receipt(request.id))
    assert outcome["churn-data:1"] == ("deleted", "")
    (delete,) = [c for c in azure.calls if c.method == "DELETE" and "/data/" in c.path]
    assert delete.path.endswith("/data/churn-data/versions/1") and delete.query["api-version"] == "2024-04-01"
    with azure.state.lock:
        assert workspace.data["churn-data"].versions == {}
    assert outcome[f"{folder}/part-0.csv"] == ("retained", "also used by run train-churn-data")
    assert await _blobs(bot, workspace.blob_container, folder) == {f"{folder}/part-0.csv"}

    folder, parts = _data_a_run_reads(workspace, "churn-more")
    await _upload(bot, workspace.blob_container, parts)
    again, card = await _approve(bot, "delete data churn-more:1 --include-shared", State.SUCCEEDED)

    assert "also used by `run train-churn-more`: deleted anyway (`--include-shared`)" in str(card["blocks"])
    assert await _blobs(bot, workspace.blob_container, folder) == set()
    assert _by_name(await bot.receipt(again.id))[f"{folder}/part-0.csv"][0] == "deleted"


async def test_export_data_has_its_files_and_metadata(bot: Harness, azure: AzureStandIn) -> None:
    workspace = _workspace(azure)
    version = workspace.add_data_version("churn-data", "2", data_type="uri_file", created_by=ALICE)
    path = _folder(version["properties"]["dataUri"])
    await _upload(bot, workspace.blob_container, {path: b"id,churned\n1,0\n", f"{path}.bak": b"not this one"})

    request, _ = await _approve(bot, "export data churn-data:2", State.SUCCEEDED)

    _, members = await _download(bot, request.id)
    assert members[f"{workspace.blob_container}/{path}"] == b"id,churned\n1,0\n"
    assert json.loads(members["churn-data/2/data.json"])["properties"]["dataType"] == "uri_file"
    assert len(members) == 2
    await bot.command("export data nope")
    await bot.wait_reply(containing="No data asset `nope` in workspace `dev`")


async def test_notebooks_export_then_delete_leaves_late_arrivals_alone(bot: Harness, azure: AzureStandIn, files: AzureFilesStandIn) -> None:
    for path, data in (ALICE_NOTEBOOKS | BOB_NOTEBOOKS).items():
        files.add_file(NOTEBOOKS_SHARE, path, data)

    exported, _ = await _approve(bot, "export notebooks alice@contoso.com", State.SUCCEEDED)
    _, members = await _download(bot, exported.id)
    assert members == {f"{NOTEBOOKS_SHARE}/{path}": data for path, data in ALICE_NOTEBOOKS.items()}

    request = await bot.submit("delete notebooks alice@contoso.com")
    assert "`Users/alice/` is the folder of every account whose UPN starts `alice@`" in str(bot.card(request.id)["blocks"])
    files.add_file(NOTEBOOKS_SHARE, "Users/alice/scratch/late.txt", b"written after the plan")
    await bot.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await bot.wait_state(request.id, State.PARTIALLY_SUCCEEDED)

    receipt = await bot.receipt(request.id)
    outcome = _by_name(receipt)
    assert {outcome[path] for path in ALICE_NOTEBOOKS} == {("deleted", "")}
    assert outcome["Users/alice/scratch"][0] == outcome["Users/alice"][0] == "retained"
    assert receipt["appeared_and_left_alone"] == [f"{NOTEBOOKS_SHARE}/Users/alice/scratch/late.txt"]
    assert files.files(NOTEBOOKS_SHARE) == BOB_NOTEBOOKS | {"Users/alice/scratch/late.txt": b"written after the plan"}


async def test_delete_schedule_disables_it_then_deletes_it(bot: Harness, azure: AzureStandIn) -> None:
    workspace = _workspace(azure)
    workspace.add_schedule("nightly-retrain", experiment_name="churn", created_by=ALICE)

    request, card = await _approve(bot, "delete schedule nightly-retrain", State.SUCCEEDED)

    assert "it is disabled first, as the service requires, then deleted" in str(card["blocks"])
    calls = [c.method for c in azure.calls if c.path.endswith("/schedules/nightly-retrain") and c.method != "GET"]
    assert calls == ["PUT", "DELETE"]
    assert workspace.schedules == {}
    assert [i["status"] for i in (await bot.receipt(request.id))["items"]] == ["deleted"]
    await bot.command("delete schedule nightly-retrain")
    await bot.wait_reply(containing="No schedule `nightly-retrain` in workspace `dev`")


async def test_notebooks_of_a_guest_and_of_someone_whose_mail_is_not_their_upn(
    bot: Harness, files: AzureFilesStandIn, graph: GraphStandIn
) -> None:
    graph.add_guest("Jane Guest", "jane@fabrikam.com")
    graph.add_user("Dana Kowalski", "d.kowalski@contoso.onmicrosoft.com", mail="dana.kowalski@contoso.com")
    for path in ("Users/jane/guest.ipynb", "Users/d.kowalski/dana.ipynb", "Users/dana.kowalski/someone-else.ipynb"):
        files.add_file(NOTEBOOKS_SHARE, path, b"{}")

    def planned(request: Any) -> set[str]:
        return {item["ref"] for item in request.plan["items"] if item["kind"] == "file"}

    # A guest's token has no `upn` claim: Studio names their folder from the `email` claim.
    assert planned(await bot.submit("export notebooks jane@fabrikam.com")) == {"Users/jane/guest.ipynb"}
    # Studio names the folder from the UPN, which Graph gives for the mail she was named by.
    assert planned(await bot.submit("export notebooks dana.kowalski@contoso.com")) == {"Users/d.kowalski/dana.ipynb"}

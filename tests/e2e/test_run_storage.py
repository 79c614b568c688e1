"""A run's whole tree and all of its storage, end to end: signed commands and clicks, the real Azure
SDK clients against the control-plane stand-in (run history paged with continuation tokens), blobs
in Azurite."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bot.doors import Doors
from bot.lifecycle import State
from bot.settings import parse_config
from sandbox.standins.azure.client import TEST_CLIENT_KWARGS, FakeCredential
from sandbox.standins.azure.server import AzureStandIn
from sandbox.standins.azure.state import Workspace
from tests.e2e.harness import Harness
from tests.e2e.test_azure_data import ALICE, BOB, _approve, _by_ref, _download, _job_names, _run_files, _workspace
from tests.e2e.test_azure_more_data import _upload
from tests.e2e.test_doctor import _bind_elsewhere

# The tree of experiment `tree`, parent -> children: a sweep's trials, an AutoML job's children, and a
# pipeline with a sub-pipeline whose steps are a third level. Two children a page: every level pages.
TREE = {
    "sweep-1": [f"sweep-1_{n}" for n in range(5)],
    "automl-1": ["automl-1_setup", "automl-1_0", "automl-1_1"],
    "pipe-1": ["prep", "sub-pipe", "report"],
    "sub-pipe": ["inner-a", "inner-b", "inner-c"],
}
TOP = {"sweep-1": "Sweep", "automl-1": "AutoML", "pipe-1": "Pipeline"}
EVERY_RUN = [*TOP, *(child for children in TREE.values() for child in children)]


def _seed_tree(workspace: Workspace) -> None:
    for name, job_type in TOP.items():
        workspace.add_job(name, experiment_name="tree", job_type=job_type, created_by=ALICE)
    for parent, children in TREE.items():  # parents first: a child's root comes from its parent
        for child in children:
            workspace.add_job(child, experiment_name="tree", created_by=ALICE, parent_job_name=parent)
    workspace.add_job("other-1", experiment_name="other", created_by=BOB)


async def _tree_files(harness: Harness, azure: AzureStandIn) -> dict[str, bytes]:
    _seed_tree(_workspace(azure))
    azure.page_size = 2
    files: dict[str, bytes] = {}
    for run in (*EVERY_RUN, "other-1"):
        files |= _run_files(run)
    await harness.seed(files)
    return files


def _children_pages(azure: AzureStandIn) -> list[tuple[str, bool]]:
    """Each run-history children request: the run asked about, and whether it sent a token."""
    return [
        (call.path.split("/runs/")[1].split("/")[0], "$continuationtoken" in call.query)
        for call in azure.calls
        if call.path.endswith("/children")
    ]


async def test_delete_experiment_takes_every_run_of_sweeps_automl_and_nested_pipelines(
    azure_harness: Harness, azure: AzureStandIn
) -> None:
    await _tree_files(azure_harness, azure)

    request, _ = await _approve(azure_harness, "delete experiment tree", State.SUCCEEDED)

    planned = {item["ref"].split("/")[1] for item in request.plan["items"] if item["kind"] == "blob"}
    assert planned == {f"dcid.{run}" for run in EVERY_RUN}
    for run in EVERY_RUN:
        assert await azure_harness.blob_names(f"ExperimentRun/dcid.{run}/") == set(), run
    assert len(await azure_harness.blob_names("ExperimentRun/dcid.other-1/")) == 2
    assert _job_names(azure) == {"other-1"}
    # Five trials at two a page: the second and third pages were asked for with the token.
    assert _children_pages(azure).count(("sweep-1", True)) == 2
    assert ("sub-pipe", True) in _children_pages(azure)
    receipt = _by_ref(await azure_harness.receipt(request.id))
    assert receipt["ExperimentRun/dcid.inner-c/outputs/model.joblib"] == ("deleted", "")


async def test_export_experiment_has_every_run_of_the_tree_and_its_run_history_records(
    azure_harness: Harness, azure: AzureStandIn
) -> None:
    files = await _tree_files(azure_harness, azure)

    request, _ = await _approve(azure_harness, "export experiment tree", State.SUCCEEDED)

    _, members = await _download(azure_harness, request.id)
    container = azure_harness.container
    wanted = {f"{container}/{name}" for name in files if "dcid.other-1/" not in name}
    assert {name for name in members if name.startswith(container + "/")} == wanted
    # The run-history record of each run, with who created it as run history knows them.
    for run in EVERY_RUN:
        record = json.loads(members[f"{run}/run-history.json"])
        assert record["runId"] == run
        assert record["createdBy"]["userObjectId"] == ALICE.object_id and record["createdBy"]["upn"] == ALICE.upn
    assert json.loads(members["inner-a/run-history.json"])["rootRunId"] == "pipe-1"


async def test_outputs_on_a_non_default_datastore_and_on_the_default_one_the_workspace_names_are_planned(
    azure_harness: Harness, azure: AzureStandIn
) -> None:
    workspace = _workspace(azure)
    account = workspace.datastores["workspaceblobstore"]["properties"]["accountName"]
    workspace.add_datastore("lake", account_name=account, container_name=f"lake-{azure_harness.container}")
    # The workspace's default datastore is not `workspaceblobstore`: runs' default outputs go there.
    workspace.add_datastore("curated", account_name=account, container_name=f"curated-{azure_harness.container}")
    workspace.make_default_datastore("curated")
    scores = {"jobOutputType": "uri_folder", "mode": "ReadWriteMount", "uri": "azureml://datastores/lake/paths/scores/${{name}}/"}
    workspace.add_job("scorer-1", experiment_name="scoring", created_by=ALICE, outputs={"scores": scores})
    await azure_harness.seed(_run_files("scorer-1"))
    await _upload(azure_harness, f"lake-{azure_harness.container}", {"scores/scorer-1/part-0.parquet": b"p0" * 64, "scores/other/keep.parquet": b"k"})
    await _upload(azure_harness, f"curated-{azure_harness.container}", {"azureml/scorer-1/metrics/m.json": b"{}"})
    await _upload(azure_harness, workspace.blob_container, {"azureml/scorer-1/stale.txt": b"not the default datastore"})

    request, _ = await _approve(azure_harness, "delete experiment scoring", State.SUCCEEDED)

    planned = {(item["container"], item["ref"]) for item in request.plan["items"] if item["kind"] == "blob"}
    assert (f"lake-{azure_harness.container}", "scores/scorer-1/part-0.parquet") in planned
    assert (f"curated-{azure_harness.container}", "azureml/scorer-1/metrics/m.json") in planned
    assert await azure_harness.blob_names("scores/", f"lake-{azure_harness.container}") == {"scores/other/keep.parquet"}
    assert await azure_harness.blob_names("", f"curated-{azure_harness.container}") == set()
    assert await azure_harness.blob_names("", workspace.blob_container) == {"azureml/scorer-1/stale.txt"}
    assert any("isDefault" in call.query for call in azure.calls if call.path.endswith("/datastores"))


async def test_a_shared_local_upload_and_run_outputs_a_model_uses_survive_a_user_erasure_and_are_listed(
    azure_harness: Harness, azure: AzureStandIn
) -> None:
    workspace = _workspace(azure)
    # One upload folder (content-addressed) holds Alice's data asset and Bob's model; Bob also
    # registered a model from the outputs of Alice's run.
    data = workspace.add_data_version("alice-data", "1", created_by=ALICE)
    upload = data["properties"]["dataUri"].split("/paths/", 1)[1].rstrip("/")
    workspace.add_model_version("bob-model", "1", model_uri=data["properties"]["dataUri"], created_by=BOB)
    workspace.add_job("alice-train", experiment_name="churn", created_by=ALICE)
    workspace.add_model_version("bob-model", "2", job_name="alice-train", created_by=BOB)
    registered = "ExperimentRun/dcid.alice-train/outputs/model/MLmodel"
    await azure_harness.seed(_run_files("alice-train") | {registered: b"flavors: {}\n"})
    await _upload(azure_harness, workspace.blob_container, {f"{upload}/part-0.csv": b"id\n1\n"})

    request, card = await _approve(azure_harness, "delete user alice@contoso.com", State.PARTIALLY_SUCCEEDED)

    blocks = str(card["blocks"])
    assert "2 file(s) are also used by `model bob-model:1`, `model bob-model:2`: they are kept" in blocks
    assert await azure_harness.blob_names(upload, workspace.blob_container) == {f"{upload}/part-0.csv"}
    assert await azure_harness.blob_names("ExperimentRun/dcid.alice-train/") == {registered}
    receipt = _by_ref(await azure_harness.receipt(request.id))
    assert receipt[f"{upload}/part-0.csv"] == ("retained", "also used by model bob-model:1")
    assert receipt[registered] == ("retained", "also used by model bob-model:2")
    assert receipt["ExperimentRun/dcid.alice-train/outputs/model.joblib"] == ("deleted", "")
    assert receipt["alice-train"] == ("deleted", "")


async def test_experiment_and_model_deletions_keep_files_that_other_records_use(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace = _workspace(azure)
    workspace.add_job("churn-train-9", experiment_name="churn", created_by=ALICE)
    workspace.add_model_version("churn", "1", job_name="churn-train-9", created_by=ALICE)
    model = workspace.add_model_version("fraud", "1", created_by=BOB)
    upload = model["properties"]["modelUri"].split("/paths/", 1)[1]
    workspace.add_data_version("fraud-features", "1", path=model["properties"]["modelUri"], created_by=BOB)
    await azure_harness.seed(_run_files("churn-train-9") | {"ExperimentRun/dcid.churn-train-9/outputs/model/MLmodel": b"{}"})
    await _upload(azure_harness, workspace.blob_container, {f"{upload}/model.pkl": b"pickled"})

    _, card = await _approve(azure_harness, "delete experiment churn", State.PARTIALLY_SUCCEEDED)
    model_request, model_card = await _approve(azure_harness, "delete model fraud", State.PARTIALLY_SUCCEEDED)

    assert "also used by `model churn:1`: they are kept" in str(card["blocks"])
    assert await azure_harness.blob_names("ExperimentRun/dcid.churn-train-9/") == {"ExperimentRun/dcid.churn-train-9/outputs/model/MLmodel"}
    assert "also used by `data fraud-features:1`: they are kept" in str(model_card["blocks"])
    assert await azure_harness.blob_names(upload, workspace.blob_container) == {f"{upload}/model.pkl"}
    assert _by_ref(await azure_harness.receipt(model_request.id))["1"] == ("deleted", "")


async def test_a_config_naming_another_storage_account_is_refused_before_anything_is_planned(
    azure_harness: Harness, azure: AzureStandIn
) -> None:
    await azure_harness.seed(_run_files("churn-1"))
    _bind_elsewhere(azure)

    await azure_harness.command("delete run churn-1")

    reply = await azure_harness.wait_reply(containing="keeps its data in storage account `mlwdevelsewhere`")
    assert "amlbot touches only the workspace's own account" in reply
    assert azure_harness.store.list_requests() == []
    assert len(await azure_harness.blob_names("ExperimentRun/dcid.churn-1/")) == 2


async def test_the_example_config_reaches_the_storage_account_the_workspace_names(azure: AzureStandIn) -> None:
    raw = yaml.safe_load((Path(__file__).parents[2] / "config.example.yml").read_text())
    prod = raw["workspaces"]["prod"]
    assert "storage_account_url" not in prod and "storage_connection_string" not in prod  # as written
    workspace = azure.state.add_workspace(prod["subscription_id"], prod["resource_group"], prod["workspace_name"])
    account = workspace.storage_account_id
    assert account is not None
    raw["workspaces"]["prod"] = {**prod, "arm_endpoint": azure.url}
    doors = Doors(parse_config(raw).workspaces, credential=FakeCredential(), client_kwargs=TEST_CLIENT_KWARGS, graph_endpoint=None)
    try:
        door = await doors.bind("prod")
    finally:
        await doors.close()

    name = account.rsplit("/", 1)[1]
    assert door.account_name == name
    assert door.url == f"https://{name}.blob.core.windows.net/"


# ---- one run: `delete run` / `export run` plan its tree as experiment operations plan theirs ----

PIPELINE_RUNS = ["pipe-1", *TREE["pipe-1"], *TREE["sub-pipe"]]


async def test_delete_run_of_a_pipeline_takes_its_steps_at_every_depth_across_pages(azure_harness: Harness, azure: AzureStandIn) -> None:
    await _tree_files(azure_harness, azure)

    request, _ = await _approve(azure_harness, "delete run pipe-1", State.SUCCEEDED)

    planned = {item["ref"].split("/")[1] for item in request.plan["items"] if item["kind"] == "blob"}
    assert planned == {f"dcid.{run}" for run in PIPELINE_RUNS}
    for run in PIPELINE_RUNS:
        assert await azure_harness.blob_names(f"ExperimentRun/dcid.{run}/") == set(), run
    for run in ("sweep-1", "sweep-1_0", "automl-1", "other-1"):
        assert len(await azure_harness.blob_names(f"ExperimentRun/dcid.{run}/")) == 2, run
    assert ("sub-pipe", True) in _children_pages(azure)  # three steps at two a page
    assert "pipe-1" not in _job_names(azure)
    receipt = _by_ref(await azure_harness.receipt(request.id))
    assert receipt["ExperimentRun/dcid.inner-c/outputs/model.joblib"] == ("deleted", "")


async def test_export_run_of_a_sweep_has_its_trials_and_their_run_history_records(azure_harness: Harness, azure: AzureStandIn) -> None:
    files = await _tree_files(azure_harness, azure)

    request, _ = await _approve(azure_harness, "export run sweep-1", State.SUCCEEDED)

    _, members = await _download(azure_harness, request.id)
    container = azure_harness.container
    sweep = ["sweep-1", *TREE["sweep-1"]]
    wanted = {f"{container}/{name}" for name in files if name.split("/")[1] in {f"dcid.{run}" for run in sweep}}
    assert {name for name in members if name.startswith(container + "/")} == wanted
    for run in sweep:
        record = json.loads(members[f"{run}/run-history.json"])
        assert record["runId"] == run and record["createdBy"]["userObjectId"] == ALICE.object_id
    assert json.loads(members["sweep-1/run.json"])["name"] == "sweep-1"


async def test_delete_run_keeps_an_output_a_registered_model_uses_and_says_who(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace = _workspace(azure)
    workspace.add_job("alice-train", experiment_name="churn", created_by=ALICE)
    workspace.add_model_version("bob-model", "2", job_name="alice-train", created_by=BOB)
    registered = "ExperimentRun/dcid.alice-train/outputs/model/MLmodel"
    await azure_harness.seed(_run_files("alice-train") | {registered: b"flavors: {}\n"})

    request, card = await _approve(azure_harness, "delete run alice-train", State.PARTIALLY_SUCCEEDED)

    assert "1 file(s) are also used by `model bob-model:2`: they are kept" in str(card["blocks"])
    assert await azure_harness.blob_names("ExperimentRun/dcid.alice-train/") == {registered}
    receipt = _by_ref(await azure_harness.receipt(request.id))
    assert receipt[registered] == ("retained", "also used by model bob-model:2")
    assert receipt["ExperimentRun/dcid.alice-train/outputs/model.joblib"] == ("deleted", "")


async def test_a_run_with_no_job_on_the_control_plane_still_has_its_own_files_deleted(azure_harness: Harness, azure: AzureStandIn) -> None:
    await azure_harness.seed(_run_files("v1-run") | _run_files("v1-run-2"))

    request, card = await _approve(azure_harness, "delete run v1-run", State.SUCCEEDED)

    assert "has no job on the control plane" in str(card["blocks"])
    assert await azure_harness.blob_names("ExperimentRun/dcid.v1-run/") == set()
    assert len(await azure_harness.blob_names("ExperimentRun/dcid.v1-run-2/")) == 2
    assert {item["kind"] for item in request.plan["items"]} == {"blob"}


async def test_delete_run_takes_its_explicit_outputs_on_a_non_default_datastore(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace = _workspace(azure)
    account = workspace.datastores["workspaceblobstore"]["properties"]["accountName"]
    lake = f"lake-{azure_harness.container}"
    workspace.add_datastore("lake", account_name=account, container_name=lake)
    scores = {"jobOutputType": "uri_folder", "mode": "ReadWriteMount", "uri": "azureml://datastores/lake/paths/scores/${{name}}/"}
    workspace.add_job("scorer-1", experiment_name="scoring", created_by=ALICE, outputs={"scores": scores})
    await azure_harness.seed(_run_files("scorer-1"))
    await _upload(azure_harness, lake, {"scores/scorer-1/part-0.parquet": b"p0" * 64, "scores/other/keep.parquet": b"k"})

    request, _ = await _approve(azure_harness, "delete run scorer-1", State.SUCCEEDED)

    assert (lake, "scores/scorer-1/part-0.parquet") in {(item["container"], item["ref"]) for item in request.plan["items"]}
    assert await azure_harness.blob_names("scores/", lake) == {"scores/other/keep.parquet"}
    assert await azure_harness.blob_names("ExperimentRun/dcid.scorer-1/") == set()

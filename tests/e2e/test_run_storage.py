"""A run's whole tree and all of its storage, end to end: signed commands and clicks, the real Azure
SDK clients against the control-plane stand-in (run history paged with continuation tokens), blobs
in Azurite."""

from __future__ import annotations

import json

from bot.lifecycle import State
from tests.e2e.harness import Harness
from tests.e2e.test_azure_data import ALICE, BOB, _approve, _by_ref, _download, _job_names, _run_files, _workspace
from tests.standins.azure.server import AzureStandIn
from tests.standins.azure.state import Workspace

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

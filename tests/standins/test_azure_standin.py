"""The Azure stand-in answers the REAL azure-ai-ml and azure-mgmt-resource clients faithfully."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import requests
from azure.ai.ml import MLClient
from azure.ai.ml.constants import ListViewType
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient

from commands.azure.config import WorkspaceConfig
from commands.azure.control import WorkspaceControl
from sandbox.standins.azure import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    AzureStandIn,
    FakeCredential,
    Identity,
    Workspace,
    ml_client,
    resource_client,
)
from sandbox.standins.azure.client import TEST_CLIENT_KWARGS
from tests.contract.standin import checked_standin

SUB = "5f0c4e7a-2b1d-4c3e-9a8f-0d1e2f3a4b5c"
RG = "rg-aml"
WS = "ws-aml"
ML_PATH = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
ALICE = Identity(name="Alice Example", object_id="a11ce000-0000-4000-8000-000000000001", upn="alice@contoso.com")


@pytest_asyncio.fixture
async def azure(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AzureStandIn]:
    async with checked_standin(monkeypatch, page_size=2) as standin:
        yield standin


@pytest.fixture
def workspace(azure: AzureStandIn) -> Workspace:
    return azure.state.add_workspace(SUB, RG, WS, storage_account_name=AZURITE_ACCOUNT)


@pytest.fixture
def ml(azure: AzureStandIn, workspace: Workspace) -> MLClient:
    return ml_client(azure, SUB, RG, WS)


@pytest.fixture
def arm(azure: AzureStandIn) -> ResourceManagementClient:
    return resource_client(azure, SUB)


def _calls(azure: AzureStandIn, method: str, path_suffix: str) -> list[dict[str, str]]:
    return [c.query for c in azure.calls if c.method == method and c.path.endswith(path_suffix)]


def _arm_properties(arm: ResourceManagementClient, arm_id: str | None, api_version: str) -> dict[str, Any]:
    assert arm_id is not None
    properties = arm.resources.get_by_id(arm_id, api_version=api_version).properties
    assert isinstance(properties, dict)
    return properties


# ------------------------------------------------------------------------------------ workspace
def test_get_workspace(azure: AzureStandIn, workspace: Workspace, ml: MLClient) -> None:
    got = ml.workspaces.get(WS)

    assert got.name == WS
    assert got._workspace_id == workspace.workspace_id
    assert got.storage_account == workspace.storage_account_id
    assert got.storage_account.endswith(f"/Microsoft.Storage/storageAccounts/{AZURITE_ACCOUNT}")
    assert got.discovery_url == f"{azure.url}/discovery"
    (exchange,) = azure.exchanges
    assert exchange.path == ML_PATH and exchange.status == 200
    assert exchange.request_id and exchange.correlation_id


def test_request_ids_reach_the_client(azure: AzureStandIn, workspace: Workspace, arm: ResourceManagementClient) -> None:
    seen: list[dict[str, str]] = []

    group = arm.resource_groups.get(RG, raw_response_hook=lambda r: seen.append(dict(r.http_response.headers)))

    assert group.location == "eastus"
    assert seen[0]["x-ms-request-id"] == azure.exchanges[-1].request_id
    assert seen[0]["x-ms-correlation-request-id"] == azure.exchanges[-1].correlation_id


def test_unauthenticated_and_unknown_requests_get_arm_errors(azure: AzureStandIn, workspace: Workspace) -> None:
    url = f"{azure.url}{ML_PATH}?api-version=2024-04-01"

    anonymous = requests.get(url, verify=azure.ca_bundle, timeout=5)
    bearer = {"Authorization": "Bearer x"}
    missing = requests.get(url.replace(WS, "nope"), headers=bearer, verify=azure.ca_bundle, timeout=5)

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "AuthenticationFailed"
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound"
    assert all(r.headers["x-ms-request-id"] and r.headers["x-ms-correlation-request-id"] for r in (anonymous, missing))


def test_delete_while_deleting_conflicts(azure: AzureStandIn, workspace: Workspace) -> None:
    workspace.add_compute("cpu")
    url = f"{azure.url}{ML_PATH}/computes/cpu?api-version=2024-04-01&underlyingResourceAction=Delete"
    bearer = {"Authorization": "Bearer x"}

    first = requests.delete(url, headers=bearer, verify=azure.ca_bundle, timeout=5)
    second = requests.delete(url, headers=bearer, verify=azure.ca_bundle, timeout=5)

    assert first.status_code == 202
    # As recorded against the real service: only Azure-AsyncOperation, on computeOperationsStatus.
    assert first.headers["Azure-AsyncOperation"].startswith(f"{azure.url}/subscriptions/{SUB}/providers/")
    assert "/computeOperationsStatus/" in first.headers["Azure-AsyncOperation"]
    assert "Location" not in first.headers and "Retry-After" not in first.headers
    assert (second.status_code, second.json()["error"]["code"]) == (409, "Conflict")
    assert workspace.computes["cpu"]["properties"]["provisioningState"] == "Deleting"


# ----------------------------------------------------------------------------------------- jobs
def test_list_jobs_follows_next_links(azure: AzureStandIn, workspace: Workspace, ml: MLClient) -> None:
    for day in range(1, 6):
        workspace.add_job(f"job{day}", created_at=f"2024-05-0{day}T10:00:00Z", created_by=ALICE)
    workspace.add_job("old", is_archived=True)

    names = [job.name for job in ml.jobs.list()]

    assert names == ["job5", "job4", "job3", "job2", "job1"]  # newest first, archived hidden
    pages = _calls(azure, "GET", f"{ML_PATH}/jobs")
    assert len(pages) == 3
    assert "$skip" not in pages[0] and all("$skip" in page for page in pages[1:])
    assert all(page["listViewType"] == "ActiveOnly" for page in pages)


def test_get_job_reads_creator_and_outputs(workspace: Workspace, ml: MLClient) -> None:
    workspace.add_job("train-1", experiment_name="churn", created_by=ALICE, created_at="2024-05-01T10:00:00Z")

    job = ml.jobs.get("train-1")

    assert job.experiment_name == "churn"
    assert job.status == "Completed"
    assert job.creation_context.created_by == "alice@contoso.com"
    assert job.creation_context.created_by_type == "User"
    assert job.creation_context.created_at.isoformat().startswith("2024-05-01T10:00:00")
    assert job.outputs["default"].path == "azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.train-1"


def test_pipeline_steps_come_from_run_history_through_discovery(
    azure: AzureStandIn, workspace: Workspace, ml: MLClient
) -> None:
    workspace.add_job("pipe", job_type="Pipeline", created_by=ALICE)
    workspace.add_job("step-a", parent_job_name="pipe", created_by=ALICE)
    workspace.add_job("step-b", parent_job_name="pipe", created_by=ALICE)

    steps = list(ml.jobs.list(parent_job_name="pipe"))
    step = ml.jobs.get("step-a")

    assert sorted(s.name for s in steps) == ["step-a", "step-b"]
    # Run-history records carry the eight-field user object, not a display name.
    assert steps[0].creation_context.created_by["userObjectId"] == ALICE.object_id
    assert steps[0].creation_context.created_by["upn"] == ALICE.upn
    assert step.name == "step-a"
    assert ("GET", "/discovery") in [(c.method, c.path) for c in azure.calls]
    assert _calls(azure, "GET", "/runs/pipe/children") and _calls(azure, "GET", "/runs/step-a")


def test_run_history_pages_children_with_a_continuation_token_the_sdk_pager_does_not_follow(
    azure: AzureStandIn, workspace: Workspace, ml: MLClient
) -> None:
    workspace.add_job("sweep", job_type="Sweep", created_by=ALICE)
    for trial in range(5):
        workspace.add_job(f"sweep_{trial}", parent_job_name="sweep", created_by=ALICE)

    first_page = list(ml.jobs.list(parent_job_name="sweep"))
    control = WorkspaceControl(
        WorkspaceConfig(subscription_id=SUB, resource_group=RG, workspace_name=WS, arm_endpoint=azure.url),
        FakeCredential(), TEST_CLIENT_KWARGS,
    )
    every = control.run_children("sweep")

    assert ml.jobs.get("sweep").type == "sweep"  # the control plane's sweep job parses
    assert [job.name for job in first_page] == ["sweep_0", "sweep_1"]  # page size 2, then the SDK stops
    assert [run["runId"] for run in every] == [f"sweep_{n}" for n in range(5)]
    assert {run["dataContainerId"] for run in every} == {f"dcid.sweep_{n}" for n in range(5)}
    tokens = [query.get("$continuationtoken") for query in _calls(azure, "GET", "/runs/sweep/children")]
    assert tokens[:2] == [None, None] and len(tokens) == 4 and all(tokens[2:])  # the SDK's one page, then ours


def test_cancel_job_with_location_polling(azure: AzureStandIn, workspace: Workspace, ml: MLClient) -> None:
    workspace.add_job("long", status="Running")
    azure.lro.mode, azure.lro.in_progress_polls = "location", 1

    ml.jobs.begin_cancel("long").result()

    assert ml.jobs.get("long").status == "Canceled"
    statuses = [e.status for e in azure.exchanges if "mfeOperationResults" in e.path]
    assert statuses == [202, 200]


def test_delete_job_removes_it_and_its_runs(azure: AzureStandIn, workspace: Workspace, ml: MLClient) -> None:
    workspace.add_job("pipe", job_type="Pipeline")
    workspace.add_job("step", parent_job_name="pipe")

    ml.jobs.begin_delete("pipe").result()

    with pytest.raises(ResourceNotFoundError):
        ml.jobs.get("pipe")
    assert workspace.runs == {}
    assert azure.state.deleted == [f"{ML_PATH}/jobs/pipe"]


# --------------------------------------------------------------------------------------- models
def test_models_list_archive_and_delete(
    azure: AzureStandIn, workspace: Workspace, ml: MLClient, arm: ResourceManagementClient
) -> None:
    workspace.add_job("train-1")
    workspace.add_model_version("churn", "1", job_name="train-1")
    workspace.add_model_version("churn", "2")
    workspace.add_model_version("fraud", "1")

    assert [(m.name, m.latest_version) for m in ml.models.list()] == [("churn", "2"), ("fraud", "1")]
    versions = {m.version: m for m in ml.models.list(name="churn")}
    assert versions["1"].job_name == "train-1"
    assert versions["1"].path.endswith("/workspaceartifactstore/paths/ExperimentRun/dcid.train-1/outputs/model")
    assert "/datastores/workspaceblobstore/paths/LocalUpload/" in versions["2"].path

    ml.models.archive("churn", version="1")

    assert (put := _calls(azure, "PUT", "/models/churn/versions/1")) and len(put) == 1
    assert workspace.models["churn"].versions["1"]["properties"]["isArchived"] is True
    assert [m.version for m in ml.models.list(name="churn")] == ["2"]
    assert [m.version for m in ml.models.list(name="churn", list_view_type=ListViewType.ARCHIVED_ONLY)] == ["1"]

    # The SDK has no version delete; the REST DELETE is reachable by id through ARM.
    version_id = workspace.models["churn"].versions["1"]["id"]
    arm.resources.begin_delete_by_id(version_id, api_version="2024-04-01").result()

    with pytest.raises(ResourceNotFoundError):
        ml.models.get("churn", version="1")
    assert azure.state.deleted == [version_id]


# ------------------------------------------------------------------ data, environments, components
def test_data_assets_list_archive_and_keep_their_uri(workspace: Workspace, ml: MLClient) -> None:
    workspace.add_data_version("churn-data", "1", created_by=ALICE)
    workspace.add_data_version("churn-data", "2", data_type="uri_file")
    workspace.add_data_version("fraud-data", "1")

    assert [(d.name, d.latest_version) for d in ml.data.list()] == [("churn-data", "2"), ("fraud-data", "1")]
    one = ml.data.get("churn-data", version="1")
    assert one.type == "uri_folder" and one.creation_context.created_by == ALICE.upn
    assert "/datastores/workspaceblobstore/paths/LocalUpload/" in one.path and one.path.endswith("/churn-data/")

    ml.data.archive("churn-data", version="1")

    assert [d.version for d in ml.data.list(name="churn-data")] == ["2"]
    archived = ml.data.list(name="churn-data", list_view_type=ListViewType.ARCHIVED_ONLY)
    assert [(d.version, d.path) for d in archived] == [("1", one.path)]  # archiving moves no data


def test_environments_components_and_their_uploads(workspace: Workspace, ml: MLClient, arm: ResourceManagementClient) -> None:
    workspace.add_environment_version("train-env", "1", created_by=ALICE)
    workspace.add_environment_version("base", "1", image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04")
    code = workspace.add_code_version("3f1e9a", "1", created_by=ALICE)
    workspace.add_component_version("prep", "1", code=code["id"], created_by=ALICE)

    built = ml.environments.get("train-env", version="1")
    assert built.build.path.startswith(f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{workspace.blob_container}/LocalUpload/")
    assert ml.environments.get("base", version="1").build is None
    component = ml.components.get("prep", version="1")
    assert component.code == code["id"] and component.creation_context.created_by == ALICE.upn
    code_uri = _arm_properties(arm, code["id"], "2024-04-01")["codeUri"]
    assert code_uri.startswith(f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/") and code_uri.endswith("/src")

    ml.environments.archive("train-env", version="1")
    ml.components.archive("prep", version="1")

    assert [e.name for e in ml.environments.list()] == ["base", "train-env"]  # containers stay active
    assert [e.version for e in ml.environments.list(name="train-env")] == []
    assert workspace.components["prep"].versions["1"]["properties"]["isArchived"] is True
    assert workspace.environments["train-env"].versions["1"]["properties"]["build"]["contextUri"] == built.build.path


def test_job_inputs_keep_their_uris(workspace: Workspace, ml: MLClient) -> None:
    inputs = {
        "train": {"jobInputType": "uri_folder", "uri": "azureml:churn-data:1", "mode": "ReadOnlyMount"},
        "raw": {"jobInputType": "uri_file", "uri": "azureml://datastores/workspaceblobstore/paths/raw/x.csv", "mode": "Download"},
    }
    workspace.add_job("train-1", inputs=inputs)

    job = ml.jobs.get("train-1")

    assert {name: value.path for name, value in job.inputs.items()} == {name: i["uri"] for name, i in inputs.items()}


# ------------------------------------------------------------------------------------ schedules
def test_schedule_must_be_disabled_before_it_is_deleted(azure: AzureStandIn, workspace: Workspace, ml: MLClient) -> None:
    workspace.add_schedule("nightly", experiment_name="churn", created_by=ALICE)
    workspace.add_schedule("paused", enabled=False)

    assert [s.name for s in ml.schedules.list()] == ["nightly"]  # enabled only, by default
    schedule = ml.schedules.get("nightly")
    assert schedule.trigger.expression == "0 3 * * *" and schedule.create_job.experiment_name == "churn"
    assert schedule.creation_context.created_by == ALICE.upn
    with pytest.raises(HttpResponseError) as refused:
        ml.schedules.begin_delete("nightly").result()
    assert refused.value.status_code == 400

    ml.schedules.begin_disable("nightly").result()  # GET, then PUT with isEnabled false, polled
    ml.schedules.begin_delete("nightly").result()

    assert [s.name for s in ml.schedules.list(list_view_type="All")] == ["paused"]
    assert azure.state.deleted == [workspace.child_id("schedules", "nightly")]
    assert [c.method for c in azure.calls if c.path.endswith("/schedules/nightly")] == ["GET", "DELETE", "GET", "PUT", "GET", "DELETE"]


# ------------------------------------------------------------------------------------- computes
def test_compute_list_and_polled_delete(
    azure: AzureStandIn, workspace: Workspace, ml: MLClient, arm: ResourceManagementClient
) -> None:
    compute = workspace.add_compute("cpu", max_nodes=8, current_nodes=2, allocation_state="Resizing")
    workspace.add_compute("gpu", vm_size="STANDARD_NC6S_V3")

    listed = {c.name: c for c in ml.compute.list()}
    assert listed.keys() == {"cpu", "gpu"}
    assert (listed["cpu"].size, listed["cpu"].max_instances) == ("STANDARD_DS3_V2", 8)
    # The SDK entity drops allocationState/currentNodeCount; ARM's generic GET by id keeps them.
    raw = _arm_properties(arm, compute["id"], "2024-04-01")["properties"]
    assert (raw["allocationState"], raw["currentNodeCount"]) == ("Resizing", 2)

    azure.lro.in_progress_polls = 2
    ml.compute.begin_delete("cpu").result()

    (delete,) = [e for e in azure.exchanges if e.method == "DELETE"]
    assert delete.status == 202 and delete.query["underlyingResourceAction"] == "Delete"
    assert len([c for c in azure.calls if "computeOperationsStatus" in c.path]) == 3  # InProgress, InProgress, Succeeded
    with pytest.raises(ResourceNotFoundError):
        ml.compute.get("cpu")


def test_failed_operation_is_reported_and_rolled_back(azure: AzureStandIn, workspace: Workspace, ml: MLClient) -> None:
    workspace.add_compute("cpu")
    azure.fail_next_operation("DELETE", r"/computes/cpu$", code="ComputeBusy", message="Nodes are busy.")

    with pytest.raises(HttpResponseError, match="ComputeBusy"):
        ml.compute.begin_delete("cpu").result()

    assert ml.compute.get("cpu").provisioning_state == "Succeeded"


# ------------------------------------------------------------------------------------ endpoints
def test_online_endpoint_list_and_delete(azure: AzureStandIn, workspace: Workspace, ml: MLClient) -> None:
    workspace.add_online_endpoint("churn-online", traffic={"blue": 100})

    assert [e.name for e in ml.online_endpoints.list()] == ["churn-online"]
    endpoint = ml.online_endpoints.get("churn-online")
    assert endpoint.scoring_uri == "https://churn-online.eastus.inference.ml.azure.com/score"
    assert endpoint.traffic == {"blue": 100}

    ml.online_endpoints.begin_delete("churn-online").result()

    with pytest.raises(ResourceNotFoundError):
        ml.online_endpoints.get("churn-online")


def test_batch_endpoint_list_and_delete(azure: AzureStandIn, workspace: Workspace, ml: MLClient) -> None:
    workspace.add_batch_endpoint("churn-batch")

    assert [e.name for e in ml.batch_endpoints.list()] == ["churn-batch"]
    assert ml.batch_endpoints.get("churn-batch").scoring_uri.endswith("/jobs")

    ml.batch_endpoints.begin_delete("churn-batch").result()

    with pytest.raises(ResourceNotFoundError):
        ml.batch_endpoints.get("churn-batch")
    assert azure.state.deleted == [f"{ML_PATH}/batchEndpoints/churn-batch"]


# ----------------------------------------------------------------------------------- datastores
def test_datastores_point_at_the_configured_account(workspace: Workspace, ml: MLClient) -> None:
    stores = {d.name: d for d in ml.datastores.list()}

    assert stores["workspaceblobstore"].container_name == f"azureml-blobstore-{workspace.workspace_id}"
    assert stores["workspaceartifactstore"].container_name == "azureml"
    assert {d.account_name for d in stores.values()} == {AZURITE_ACCOUNT}
    secret = ml.datastores.get("workspaceartifactstore", include_secrets=True)
    assert secret.credentials.account_key == AZURITE_KEY


def test_an_identity_based_datastore_has_no_secrets(azure: AzureStandIn, workspace: Workspace, ml: MLClient) -> None:
    workspace.add_datastore("lake", account_name=AZURITE_ACCOUNT, container_name="lake")
    url = f"{azure.url}{ML_PATH}/datastores/lake/listSecrets?api-version=2024-10-01-preview"

    lake = ml.datastores.get("lake", include_secrets=True)
    asked = requests.post(url, headers={"Authorization": "Bearer x"}, verify=azure.ca_bundle, timeout=5)

    # The SDK does not ask for the secrets of credentialsType None; the service refuses (recorded).
    assert type(lake.credentials).__name__ == "NoneCredentialConfiguration"
    assert not any(e.path.endswith("/lake/listSecrets") for e in azure.exchanges[:-1])
    assert asked.status_code == 400
    assert asked.json()["error"] == {"code": "UserError", "message": "No secrets for credentials of type None."}


# ---------------------------------------------------------------------------- workspace delete
def test_workspace_purge_deletes_dependents(
    azure: AzureStandIn, workspace: Workspace, ml: MLClient, arm: ResourceManagementClient
) -> None:
    workspace.add_compute("cpu")
    dependents = [
        workspace.storage_account_id,
        workspace.key_vault_id,
        workspace.container_registry_id,
        workspace.application_insights_id,
    ]
    app_insights = _arm_properties(arm, workspace.application_insights_id, "2020-02-02")
    log_analytics = app_insights["WorkspaceResourceId"]

    ml.workspaces.begin_delete(WS, delete_dependent_resources=True, permanently_delete=True).result()

    assert _calls(azure, "DELETE", ML_PATH) == [{"api-version": "2024-10-01-preview", "forceToPurge": "true"}]
    assert set(azure.state.deleted) == {*dependents, log_analytics, f"{ML_PATH}/computes/cpu", ML_PATH}
    for arm_id in [*dependents, log_analytics]:
        with pytest.raises(ResourceNotFoundError):
            arm.resources.get_by_id(str(arm_id), api_version="2023-01-01")
    with pytest.raises(ResourceNotFoundError):
        ml.workspaces.get(WS)
    assert azure.state.soft_deleted_workspaces == {}


def test_workspace_default_delete_is_soft(azure: AzureStandIn, workspace: Workspace, ml: MLClient) -> None:
    ml.workspaces.begin_delete(WS, delete_dependent_resources=False).result()

    assert _calls(azure, "DELETE", ML_PATH)[0]["forceToPurge"] == "false"
    assert list(azure.state.soft_deleted_workspaces.values()) == [workspace]
    assert azure.state.generic_resource(str(workspace.storage_account_id)) is not None


# ---------------------------------------------------------------------------- faults and errors
@pytest.mark.parametrize(("method", "status"), [("GET", 429), ("DELETE", 503)])
def test_throttling_burst_is_retried(
    azure: AzureStandIn, workspace: Workspace, ml: MLClient, method: str, status: int
) -> None:
    workspace.add_compute("cpu")
    azure.fail_next(method, r"/computes(/cpu)?$", status=status, times=2)

    if method == "GET":
        assert [c.name for c in ml.compute.list()] == ["cpu"]
    else:
        ml.compute.begin_delete("cpu").result()

    answered = [e.status for e in azure.exchanges if e.method == method and "/computes" in e.path]
    assert answered == [status, status, 200 if method == "GET" else 202]


def test_deleting_what_is_gone_is_not_found(
    azure: AzureStandIn, workspace: Workspace, ml: MLClient, arm: ResourceManagementClient
) -> None:
    with pytest.raises(ResourceNotFoundError) as compute_error:
        ml.compute.begin_delete("never-existed").result()
    with pytest.raises(ResourceNotFoundError) as arm_error:
        arm.resources.begin_delete_by_id(f"{ML_PATH}/models/none/versions/1", api_version="2024-04-01").result()

    assert compute_error.value.status_code == 404
    assert compute_error.value.error is not None and compute_error.value.error.code == "ResourceNotFound"
    response: Any = arm_error.value.response  # an azure.core HttpResponse, typed by a narrower protocol
    assert response.headers["x-ms-request-id"] == azure.exchanges[-1].request_id


# ------------------------------------------------------------------------------------- plumbing
async def test_usable_from_async_code(azure: AzureStandIn, workspace: Workspace, ml: MLClient) -> None:
    workspace.add_job("j1")

    # The server has its own loop, so the blocking SDK works from a worker thread or even inline.
    names = await asyncio.to_thread(lambda: [job.name for job in ml.jobs.list()])

    assert names == ["j1"] and ml.jobs.get("j1").name == "j1"


async def test_plain_http_mode_with_allow_http_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)
    async with AzureStandIn(tls=False) as azure:
        azure.state.add_workspace(SUB, RG, WS).add_job("j1")
        client: Any = ml_client(azure, SUB, RG, WS)

        jobs = await asyncio.to_thread(lambda: [job.name for job in client.jobs.list()])

        assert azure.url.startswith("http://") and jobs == ["j1"]

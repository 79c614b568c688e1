"""The Azure stand-in answers as the real Azure ML / ARM services do, request by request.

Every request amlbot sends to Azure has a shape fixture in ``tests/contract/shapes/`` taken from the
real service: azure-ai-ml's recorded sessions (``Azure/azure-sdk-assets``,
``python/sdk/ml/azure-ai-ml/tests/recordings/…``) or, where none exists, the REST spec examples
(``Azure/azure-rest-api-specs``, ``…/Microsoft.MachineLearningServices/stable/2024-04-01/examples/``).
This file proves that (a) every route the stand-in serves has a fixture and every fixture a route,
(b) driving every fixture's request through the real SDK clients yields answers that conform, and
(c) the checker fails on wrong answers. ``tests/e2e/conftest.py`` and
``tests/standins/test_azure_standin.py`` also check every answer of every test they run.

How to add a shape (a new stand-in route, or a request amlbot starts sending):
1. Read the real answer in a recording or spec example (``find_files``/``read_file``).
2. Write ``shapes/<area>.<operation>.json``::

       {"operation": "what it is",
        "request": {"method": "GET", "path": "/subscriptions/{sub}/…/things/{name}",
                    "api_versions": ["2024-04-01"]},        # as sent on the wire; [null] for none
        "source": ["<repo> <path of the recording or example>"],
        "responses": {"200": {"headers": {"Azure-AsyncOperation": "required"}, "body": {…shape…}}},
        "notes": "facts worth keeping"}

   ``{name:a|b}`` in a path matches only those segments. Body shapes are described in
   ``checker.py``'s docstring; reusable ones (systemData, errors, …) live in ``shapes/_common.json``.
   Error statuses (4xx/5xx with the ARM error body) are allowed on every request.
3. Make ``test_every_shape_is_exercised_through_the_sdk`` send the request (or add a scenario step).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from azure.ai.ml import MLClient
from azure.ai.ml.constants import ListViewType
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient

from commands.azure.config import WorkspaceConfig
from commands.azure.control import WorkspaceControl
from sandbox.standins.azure import AzureStandIn, Workspace, ml_client, resource_client
from sandbox.standins.azure.client import TEST_CLIENT_KWARGS, FakeCredential, managed_identity_environment
from tests.contract.checker import (
    ERROR_STATUSES,
    SHAPES,
    Answer,
    Shape,
    answer_of,
    check_answer,
    check_value,
    load_shapes,
    match,
    violations,
)
from tests.contract.standin import checked_standin

SUB = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
RG = "rg-contract"
WS = "ws-contract"
SOURCE = re.compile(r"Azure/azure-sdk-assets python/sdk/ml/azure-ai-ml/tests/recordings/|Azure/azure-rest-api-specs |"
                    r"Azure/bicep-types-az |Microsoft Learn")


@pytest_asyncio.fixture
async def azure(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AzureStandIn]:
    async with checked_standin(monkeypatch, page_size=2) as standin:
        yield standin


def _shapes() -> tuple[list[Shape], dict[str, Any]]:
    return load_shapes(SHAPES)


# ------------------------------------------------------------------------------------ fixtures
def test_every_shape_is_sourced_and_well_formed() -> None:
    shapes, common = _shapes()
    assert len(shapes) >= 50
    named = set(re.findall(r'"@(\w+)', json.dumps(common) + "".join(p.read_text() for p in SHAPES.glob("*.json"))))
    assert named <= common.keys(), f"undefined shapes: {named - common.keys()}"
    for shape in shapes:
        assert shape.sources and all(SOURCE.match(s) for s in shape.sources), f"{shape.file}: no real source"
        assert shape.api_versions, f"{shape.file}: no api-version"
        assert any(200 <= status < 300 for status in shape.responses), f"{shape.file}: no success answer"
    keys = [(s.method, s.path) for s in shapes]
    assert len(keys) == len(set(keys)), "two fixtures describe the same request"


def test_every_standin_route_has_a_shape_and_every_shape_a_route() -> None:
    shapes, _ = _shapes()
    routes = [(method, pattern) for method, pattern, _ in AzureStandIn()._routes]

    unshaped = [f"{method} {pattern.pattern}" for method, pattern in routes
                if not any(s.method == method and any(pattern.fullmatch(p) for p in s.example_paths()) for s in shapes)]
    unrouted = [s.file for s in shapes
                if not all(any(m == s.method and r.fullmatch(p) for m, r in routes) for p in s.example_paths())]

    assert unshaped == [], "stand-in routes without a real shape behind them"
    assert unrouted == [], "shapes the stand-in does not serve"


# ------------------------------------------------------------------------- driven through the SDK
def _seed(azure: AzureStandIn) -> Workspace:
    ws = azure.state.add_workspace(SUB, RG, WS)
    ws.add_job("train-1", experiment_name="churn")
    ws.add_job("train-2", experiment_name="churn", status="Running")
    ws.add_job("pipe", job_type="Pipeline", experiment_name="churn")
    ws.add_job("step-a", parent_job_name="pipe", experiment_name="churn")
    ws.add_job("old", experiment_name="churn")
    ws.add_model_version("churn", "1", job_name="train-1")
    ws.add_model_version("churn", "2", job_name="train-2")
    ws.add_data_version("sales", "1")
    ws.add_data_version("sales", "2")
    ws.add_environment_version("sk", "1")
    code = ws.add_code_version("src", "1")
    ws.add_component_version("prep", "1", code=code["id"])
    ws.add_schedule("nightly")
    ws.add_compute("cpu")
    ws.add_attached_compute("vm", f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/vm")
    ws.add_online_endpoint("oe")
    ws.add_batch_endpoint("be")
    return ws


def _drive(ws: Workspace, ml: MLClient, arm: ResourceManagementClient, azure: AzureStandIn) -> None:
    """One request of every kind amlbot sends, through the real SDK clients."""
    arm.resource_groups.get(RG)
    list(arm.resources.list_by_resource_group(RG))
    ml.workspaces.get(WS)
    ml.datastores.get("workspaceblobstore", include_secrets=True)
    list(ml.datastores.list())
    ml.datastores.get_default()
    WorkspaceControl(WorkspaceConfig(subscription_id=SUB, resource_group=RG, workspace_name=WS, arm_endpoint=azure.url),
                     FakeCredential(), TEST_CLIENT_KWARGS).blob_service()  # the storage account, then its blob service
    _sign_in_as_managed_identity(azure)
    # jobs, run history behind the discovery document
    list(ml.jobs.list(list_view_type=ListViewType.ALL))
    ml.jobs.get("train-1")
    ml.jobs.get("step-a")
    list(ml.jobs.list(parent_job_name="pipe"))
    WorkspaceControl(WorkspaceConfig(subscription_id=SUB, resource_group=RG, workspace_name=WS, arm_endpoint=azure.url),
                     FakeCredential(), TEST_CLIENT_KWARGS).run_children("pipe")  # every page, by continuation token
    ml.jobs.begin_cancel("train-2").result()
    azure.lro.mode = "location"
    ml.jobs.begin_delete("old").result()
    azure.lro.mode = "async-operation"
    # versioned assets: list, get, archive (GET + PUT), a container archived whole, a version deleted
    list(ml.models.list())
    list(ml.models.list(name="churn", list_view_type=ListViewType.ALL))
    ml.models.get("churn", "1")
    ml.models.archive("churn", "1")
    ml.models.archive("churn")
    for collection, name in (("models", "churn"), ("data", "sales")):
        version = ws.child_id(collection, name) + "/versions/2"
        arm.resources.begin_delete_by_id(version, api_version="2024-04-01").result()
    for kind, name in ((ml.data, "sales"), (ml.environments, "sk"), (ml.components, "prep")):
        list(kind.list())
        list(kind.list(name=name, list_view_type=ListViewType.ALL))
        kind.get(name, version="1")
        kind.archive(name, version="1")
    for collection, name in (("models", "churn"), ("data", "sales"), ("environments", "sk"), ("components", "prep"),
                             ("codes", "src")):
        arm.resources.get_by_id(ws.child_id(collection, name) + "/versions/1", api_version="2024-04-01")
    arm.resources.get_by_id(ws.id, api_version="2024-04-01")
    # schedules: disabled (PUT, polled), then deleted
    list(ml.schedules.list(list_view_type="All"))
    ml.schedules.get("nightly")
    ml.schedules.begin_disable("nightly").result()
    ml.schedules.begin_delete("nightly").result()
    # computes and endpoints
    list(ml.compute.list())
    ml.compute.get("cpu")
    ml.compute.get("vm")
    arm.resources.get_by_id(ws.child_id("computes", "cpu"), api_version="2024-04-01")
    ml.compute.begin_delete("cpu").result()
    list(ml.online_endpoints.list())
    ml.online_endpoints.get("oe")
    ml.online_endpoints.begin_delete(name="oe").result()
    list(ml.batch_endpoints.list())
    ml.batch_endpoints.get("be")
    list(ml.batch_deployments.list("be"))
    ml.batch_endpoints.begin_delete(name="be").result()
    for missing in (lambda: ml.compute.get("gone"), lambda: ml.schedules.get("gone"), lambda: ml.batch_endpoints.get("gone"),
                    lambda: list(ml.models.list(name="gone"))):
        with pytest.raises(ResourceNotFoundError):
            missing()
    # the workspace's other resources by id, then the workspace with its dependents
    for arm_id in (ws.storage_account_id, ws.key_vault_id, ws.container_registry_id, ws.application_insights_id):
        assert arm_id is not None
        arm.resources.get_by_id(arm_id, api_version="2023-01-01")
    logs = arm.resources.get_by_id(str(ws.application_insights_id), api_version="2020-02-02").properties
    arm.resources.get_by_id(logs["WorkspaceResourceId"], api_version="2023-01-01")
    # what a workspace deletion reads to keep shared dependents, and a dependent's delete polled to its end
    list(ml.workspaces.list(scope="subscription"))
    list(arm.resources.list(filter="resourceType eq 'Microsoft.Insights/components'"))
    extra = azure.state.add_generic_resource(SUB, RG, "Microsoft.ContainerRegistry/registries", "crextra")
    azure.lro.other_providers, azure.lro.in_progress_polls = "async", 1
    arm.resources.begin_delete_by_id(extra, api_version="2023-07-01").result()
    azure.lro.other_providers, azure.lro.in_progress_polls = "sync", 0
    ml.workspaces.begin_delete(WS, delete_dependent_resources=True, permanently_delete=True).result()


def _sign_in_as_managed_identity(azure: AzureStandIn) -> None:
    """DefaultAzureCredential in a process that runs as an App Service managed identity."""
    from azure.identity import DefaultAzureCredential

    saved = {name: os.environ.get(name) for name in managed_identity_environment(azure)}
    os.environ.update(managed_identity_environment(azure))
    try:
        DefaultAzureCredential().get_token("https://management.azure.com/.default")
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def test_every_shape_is_exercised_through_the_sdk(azure: AzureStandIn) -> None:
    ws = _seed(azure)
    ml, arm = ml_client(azure, SUB, RG, WS, polling_interval=0), resource_client(azure, SUB)

    _drive(ws, ml, arm, azure)

    assert violations(azure.exchanges) == []
    shapes, _ = _shapes()
    answered = {getattr(match(shapes, e.method, e.path), "file", None) for e in azure.exchanges if e.status < 300}
    assert sorted(s.file for s in shapes if s.file not in answered) == []


def test_a_stand_in_answer_unlike_the_service_is_caught(azure: AzureStandIn) -> None:
    ws = azure.state.add_workspace(SUB, RG, WS)
    compute = ws.add_compute("cpu")
    compute["systemData"] = {"createdAt": "2024-01-01T00:00:00Z"}  # computes carry none on the wire
    del compute["properties"]["createdOn"]
    ml = ml_client(azure, SUB, RG, WS)

    ml.compute.get("cpu")

    problems = violations(azure.exchanges)
    assert any("fields the real service never sends: ['systemData']" in p for p in problems), problems
    assert any("body.properties.createdOn: missing" in p for p in problems), problems
    azure.exchanges.clear()  # leave the fixture's own checks a clean slate


# ----------------------------------------------------------------------------- the checker itself
def _answer(method: str, path: str, status: int, body: Any, headers: dict[str, str] | None = None,
            version: str | None = "2023-08-01-preview") -> Answer:
    query = {"api-version": version} if version else {}
    return Answer(method, path, query, status, headers or {}, body, body is not None)


WS_PATH = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
COMPUTE = {
    "id": f"{WS_PATH}/computes/cpu", "name": "cpu", "type": "Microsoft.MachineLearningServices/workspaces/computes",
    "location": "eastus", "tags": {},
    "properties": {"computeType": "AmlCompute", "computeLocation": "eastus", "provisioningState": "Succeeded",
                   "description": None, "createdOn": "t", "modifiedOn": "t", "resourceId": None,
                   "provisioningErrors": None, "isAttachedCompute": False, "disableLocalAuth": True,
                   "properties": {"vmSize": "S", "vmPriority": "Dedicated",
                                  "scaleSettings": {"maxNodeCount": 4, "minNodeCount": 0,
                                                    "nodeIdleTimeBeforeScaleDown": "PT2M"},
                                  "currentNodeCount": 0, "targetNodeCount": 0, "nodeStateCounts": None,
                                  "allocationState": "Steady", "errors": None, "osType": "Linux"}},
}


def _problems(answer: Answer) -> list[str]:
    shapes, common = _shapes()
    return check_answer(answer, shapes, common)


def test_checker_accepts_the_recorded_shape() -> None:
    assert _problems(_answer("GET", f"{WS_PATH}/computes/cpu", 200, COMPUTE)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda b: b["properties"].pop("modifiedOn"), "body.properties.modifiedOn: missing"),
        (lambda b: b["properties"]["properties"]["scaleSettings"].update(maxNodeCount="4"),
         "maxNodeCount: expected integer, got string"),
        (lambda b: b.update(systemData={}), "fields the real service never sends: ['systemData']"),
        (lambda b: b["properties"].update(isAttachedCompute=None), "isAttachedCompute: expected boolean, got null"),
    ],
)
def test_checker_catches_a_wrong_body(change: Any, expected: str) -> None:
    body = copy.deepcopy(COMPUTE)
    change(body)

    assert any(expected in p for p in _problems(_answer("GET", f"{WS_PATH}/computes/cpu", 200, body))), expected


def test_checker_catches_wrong_status_headers_versions_and_unknown_requests() -> None:
    delete = f"{WS_PATH}/computes/cpu"
    status_url = {"Azure-AsyncOperation": "https://x/providers/p/locations/l/computeOperationsStatus/1"}

    assert _problems(_answer("DELETE", delete, 202, None, status_url)) == []
    assert "status 201" in _problems(_answer("DELETE", delete, 201, None))[0]
    assert "header Azure-AsyncOperation is missing" in _problems(_answer("DELETE", delete, 202, None))[0]
    wrong_kind = {"Azure-AsyncOperation": "https://x/mfeOperationsStatus/1"}
    assert "to contain '/computeOperationsStatus/'" in _problems(_answer("DELETE", delete, 202, None, wrong_kind))[0]
    assert "sends no body" in _problems(_answer("DELETE", delete, 202, {"x": 1}, status_url))[0]
    assert "api-version '1999-01-01'" in _problems(_answer("GET", delete, 200, COMPUTE, version="1999-01-01"))[0]
    assert "no shape fixture" in _problems(_answer("GET", f"{WS_PATH}/widgets/w", 200, {}))[0]
    # Errors: any 4xx/5xx, but with the ARM error body.
    assert _problems(_answer("GET", delete, 429, {"error": {"code": "TooManyRequests", "message": "m"}})) == []
    assert "body.error: missing" in _problems(_answer("GET", delete, 404, {"message": "gone"}))[0]
    # Where the ML front end answers a 404 itself, ARM's generic form is not what it says.
    gateway = {"error": {"code": "ResourceNotFound", "message": "m"}}
    assert "expected =UserError" in _problems(_answer("GET", f"{WS_PATH}/schedules/s", 404, gateway, version="2023-06-01-preview"))[0]
    assert 404 in ERROR_STATUSES and 418 not in ERROR_STATUSES


def test_checker_walks_arrays_maps_unions_and_optional_fields() -> None:
    _, common = _shapes()
    spec = {"value": ["@run_user"], "?nextLink": "string|null", "tags": {"*": "string"}}
    user = {"userObjectId": "o", "userPuId": None, "userIdp": None, "userAltSecId": None, "userIss": None,
            "userTenantId": "t", "userName": "n", "upn": None}

    assert check_value({"value": [user], "tags": {"a": "b"}}, spec, common, "body") == []
    assert check_value({"value": [user], "nextLink": None, "tags": {}}, spec, common, "body") == []
    assert check_value({"value": [{**user, "userTenantId": 1}], "tags": {}}, spec, common, "body") == [
        "body.value[0].userTenantId: expected string, got integer 1"
    ]
    assert check_value({"value": [], "tags": {"a": 1}}, spec, common, "body") == ["body.tags.a: expected string, got integer 1"]
    assert check_value("AKS", "=AKS|=Kubernetes", common, "x") == []
    assert check_value("AmlCompute", "=AKS|=Kubernetes", common, "x") == ["x: expected =AKS|=Kubernetes, got string 'AmlCompute'"]
    assert check_value({"value": [], "tags": {}, "extra": 1}, spec, common, "body") == [
        "body: fields the real service never sends: ['extra']"
    ]


def test_answer_of_reads_the_recorded_exchange(azure: AzureStandIn) -> None:
    azure.state.add_workspace(SUB, RG, WS)
    ml = ml_client(azure, SUB, RG, WS)

    ml.workspaces.get(WS)

    (answer,) = [answer_of(e) for e in azure.exchanges if e.path == WS_PATH]
    assert answer.status == 200 and answer.body["name"] == WS and answer.raw_body

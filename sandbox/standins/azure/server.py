"""An aiohttp stand-in for Azure Resource Manager and the Azure ML control plane.

The REAL ``azure.ai.ml.MLClient`` and ``azure.mgmt.resource.resources.ResourceManagementClient`` talk
to it over HTTPS on 127.0.0.1 (see ``client.py`` for how to build them). It serves:

* ARM: ``GET /subscriptions/{s}/resourcegroups/{rg}``, ``GET …/resources``, and ``GET``/``DELETE`` of
  any resource by id (storage accounts, key vaults, registries, Application Insights, Log Analytics).
* Azure ML (``…/providers/Microsoft.MachineLearningServices/workspaces/{ws}``): the workspace (GET,
  DELETE with ``forceToPurge``), jobs (list with ``nextLink`` paging, GET, DELETE, POST ``cancel``),
  model containers and versions (list, GET, PUT — which is how the SDK archives — and DELETE),
  computes, online and batch endpoints (list, GET, DELETE as long-running operations), datastores
  (list, GET, POST ``listSecrets``), the ``discoveryUrl`` document, and run history
  (``/history/v1.0/…/runs/{id}`` and ``…/children``) behind it.

Every answer carries ``x-ms-request-id`` and ``x-ms-correlation-request-id``; errors use the ARM error
body ``{"error": {"code", "message"}}``. Long-running operations answer ``202`` with
``Azure-AsyncOperation``, ``Location`` and ``Retry-After`` (see ``LroSettings``) and complete only when
polled, so tests are deterministic.

The server runs on its own thread and event loop. That way the synchronous SDK can be called
directly from a test (even from inside a running event loop) without deadlocking the server.
"""

from __future__ import annotations

import base64
import json
import re
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple
from urllib.parse import urlencode

from aiohttp import web

from sandbox.standins.azure.state import (
    ASSET_COLLECTIONS,
    DEFAULT_TENANT,
    ML,
    TERMINAL_JOB_STATES,
    AssetContainer,
    AzureState,
    Json,
    ResourceGroup,
    Workspace,
    iso,
    unsigned_token,
)
from sandbox.standins.azure.threaded import ThreadedServer
from sandbox.standins.azure.tls import certificates

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourceGroups/(?P<rg>[^/]+)"
_WS = _RG + r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)"
_OPS = _SUB + r"/providers/Microsoft\.MachineLearningServices/locations/(?P<loc>[^/]+)"
_HISTORY = r"/history/v1\.0" + _WS
MANAGED_IDENTITY_PATH = "/msi/token"
MANAGED_IDENTITY_OBJECT_ID = "3d1f0b6e-6c2a-4c39-9d0a-5b7f2e8c1a44"
MANAGED_IDENTITY_CLIENT_ID = "8a0c5f3e-2b71-4d9e-a6c4-1f9e7d3b2a55"

# What a PUT may not change in a version of each collection: an asset version's content is fixed.
_IMMUTABLE = {
    "models": ("modelUri", "jobName", "modelType"),
    "data": ("dataUri", "dataType"),
    "environments": ("build", "image", "condaFile", "osType"),
    "components": ("componentSpec",),
    "codes": ("codeUri",),
}

_DEFAULT_ERROR_CODES = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "AuthorizationFailed",
    404: "ResourceNotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class Call(NamedTuple):
    method: str
    path: str
    query: dict[str, str]


class Exchange(NamedTuple):
    """One request and how it was answered: the ids/status amlbot copies into receipts, and the
    headers and body the contract test (tests/contract) checks against the real service's shapes."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    request_id: str
    correlation_id: str
    headers: dict[str, str] = {}
    body: bytes | None = None


@dataclass
class LroSettings:
    """How long-running operations (ML deletes, job cancel) are answered.

    ``mode``: ``"async-operation"`` answers 202 with ``Azure-AsyncOperation`` + ``Location``;
    ``"location"`` with ``Location`` only; ``"sync"`` finishes at once with 200.
    ``in_progress_polls``: status polls answered ``InProgress`` before ``Succeeded``.
    ``retry_after``: a ``Retry-After`` value (seconds) to send; ``0`` sends none, as the service
    (recordings show no ``Retry-After`` on ML operations). Note: azure-core treats ``0`` as "no hint"
    and falls back to the client's own interval (``polling_interval`` kwarg, default 30 s; the SDK's
    endpoint deletes hard-code 5 s). Keep ``in_progress_polls=0`` or pass ``polling_interval=0``.
    """

    mode: Literal["async-operation", "location", "sync"] = "async-operation"
    in_progress_polls: int = 0
    retry_after: int = 0
    # Other providers' DELETEs (storage, key vault, registry, …): "sync" answers 200 at once;
    # "async" answers 202 like the ML deletes above, the resource still there until polled to the end.
    other_providers: Literal["sync", "async"] = "sync"


class _Place(NamedTuple):
    """Where an operation runs (its status URL names the subscription and the location)."""

    subscription_id: str
    location: str


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    retry_after: int | None
    code: str
    message: str


@dataclass
class _OperationFailure:
    method: str
    pattern: re.Pattern[str]
    code: str
    message: str


# Where each kind of operation is polled, as the service names it (azure-sdk-assets recordings:
# workspace/…test_workspace_create_and_delete, compute/…test_aml_compute_create_and_delete,
# schedule/…test_schedule_lifetime, batch_services/…test_batch_endpoint_create).
# "arm": another provider's operation, polled only through its Location (…/operationResults/…).
OperationKind = Literal["mfe", "workspace", "compute", "arm"]
_STATUS_PATHS: dict[str, str] = {
    "mfe": "mfeOperationsStatus",
    "workspace": "workspaceOperationsStatus",
    "compute": "computeOperationsStatus",
}


@dataclass
class Operation:
    """A long-running operation; advances one step per status poll."""

    id: str
    subscription_id: str
    location: str
    method: str
    target: str  # path of the resource acted on
    kind: OperationKind
    remaining: int
    complete: Callable[[], None]
    rollback: Callable[[], None]
    failure: Json | None = None
    status: str = "InProgress"
    started: str = field(default_factory=iso)
    ended: str | None = None

    def advance(self) -> None:
        if self.status != "InProgress":
            return
        if self.remaining > 0:
            self.remaining -= 1
            return
        if self.failure is not None:
            self.rollback()
            self.status = "Failed"
        else:
            self.complete()
            self.status = "Succeeded"
        self.ended = iso()


class ArmError(Exception):
    """An error answer. ``details`` set: the ML front end's form, ``details`` and ``additionalInfo`` included."""

    def __init__(self, status: int, code: str, message: str, details: list[Json] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


@dataclass
class _Ctx:
    request: web.Request
    method: str
    path: str
    query: dict[str, str]
    body: Any
    match: dict[str, str]


Handler = Callable[[_Ctx], web.StreamResponse]


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, details: list[Json] | None = None
) -> web.Response:
    error: Json = {"code": code, "message": message}
    if details is not None:
        error.update(details=details, additionalInfo=[])
    return web.json_response({"error": error}, status=status, headers=headers)


def _token(offset: int) -> str:
    """An opaque continuation token for the page that starts at `offset`."""
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _offset(token: str | None, code: str) -> int:
    try:
        return int(json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["o"]) if token else 0
    except (ValueError, KeyError, TypeError) as exc:
        raise ArmError(400, code, "The continuation token is not valid.") from exc


def _not_found(kind: str, name: str, where: str) -> ArmError:
    return ArmError(404, "ResourceNotFound", f"The Resource '{kind}/{name}' under {where} was not found.")


def _ml_not_found(workspace: Workspace, kind: str, name: str) -> ArmError | None:
    """The ML front end's own 404 where recordings show it (schedule/…test_schedule_lifetime,
    batch_services/…test_batch_endpoint_create, model/…test_model_archive_restore_version)."""
    if kind == "schedules":
        return ArmError(404, "UserError", f"Resource Trigger {name} not found", [])
    if kind == "batchEndpoints":
        message = (f"An endpoint with the name '{name}' does not exist in the workspace '{workspace.name}'. "
                   "Please check the endpoint name and also ensure the current user has access to it.")
        return ArmError(404, "UserError", message, [])
    if kind == "models":
        detail = {"code": "ModelNotFound", "message": f"Model container with name: {name} not found.",
                  "details": [], "additionalInfo": []}
        return ArmError(404, "UserError", "The specified resource was not found.", [detail])
    return None


class AzureStandIn(ThreadedServer):
    """ARM + Azure ML control plane on 127.0.0.1. Use as ``async with AzureStandIn() as azure: …``."""

    def __init__(
        self,
        state: AzureState | None = None,
        *,
        tls: bool = True,
        page_size: int = 100,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(tls=tls, host=host, port=port, name="azure-standin")
        self.state = state or AzureState()
        self.page_size = page_size  # items per page of every list; lower it to exercise nextLink
        self.lro = LroSettings()
        self.exchanges: list[Exchange] = []
        self.errors: list[str] = []  # stand-in bugs (answered 500); a test should expect this empty
        self.operations: dict[str, Operation] = {}
        self._faults: list[_Fault] = []
        self._operation_failures: list[_OperationFailure] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._register_routes()

    # ------------------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """Base URL (no trailing slash): the ARM endpoint, and the ML endpoints behind discovery."""
        return super().url

    @property
    def ca_bundle(self) -> str:
        """CA bundle (system CAs + the stand-in's CA) to trust: use as REQUESTS_CA_BUNDLE."""
        return str(certificates().bundle_path)

    @property
    def calls(self) -> list[Call]:
        return [Call(e.method, e.path, e.query) for e in self.exchanges]

    async def __aenter__(self) -> AzureStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -------------------------------------------------------------------------- test controls
    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int = 429,
        times: int = 1,
        retry_after: int | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests matching ``method`` and ``path_regex`` (``re.search``,
        case-insensitive, on the path) with ``status`` and an ARM error body. Only throttling (429)
        carries ``Retry-After`` unless told otherwise (0, at once): a refusal such as 403 has none,
        and azure-core would retry any answer that had one."""
        if retry_after is None and status == 429:
            retry_after = 0
        with self.state.lock:
            self._faults.append(
                _Fault(
                    method=method.upper(),
                    pattern=re.compile(path_regex, re.IGNORECASE),
                    status=status,
                    remaining=times,
                    retry_after=retry_after,
                    code=code or _DEFAULT_ERROR_CODES.get(status, "Error"),
                    message=message or f"Injected failure ({status}).",
                )
            )

    def fail_next_operation(
        self, method: str, path_regex: str, *, code: str = "InternalServerError", message: str = "Operation failed."
    ) -> None:
        """Make the next long-running operation started by a matching request end as ``Failed``."""
        with self.state.lock:
            self._operation_failures.append(
                _OperationFailure(method.upper(), re.compile(path_regex, re.IGNORECASE), code, message)
            )

    def complete_operations(self) -> None:
        """Finish every pending operation, as if its poller had run (for fire-and-forget callers)."""
        with self.state.lock:
            for operation in self.operations.values():
                operation.remaining = 0
                operation.advance()

    # ------------------------------------------------------------------------------- plumbing
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        with self.state.lock:  # handlers are synchronous: one request mutates state at a time
            return self._respond(request, raw)

    def _respond(self, request: web.Request, raw: bytes) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        correlation_id = request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
        method, path = request.method.upper(), request.path
        query = {key: request.query[key] for key in request.query}
        try:
            response = self._dispatch(request, method, path, query, raw)
        except ArmError as exc:
            response = _error(exc.status, exc.code, exc.message, details=exc.details)
        except Exception:  # a stand-in bug must be visible, not retried by the SDK into a timeout
            self.errors.append(f"{method} {path}\n{traceback.format_exc()}")
            response = _error(500, "InternalServerError", "stand-in error; see AzureStandIn.errors")
        response.headers["x-ms-request-id"] = request_id
        response.headers["x-ms-correlation-request-id"] = correlation_id
        if client_request_id := request.headers.get("x-ms-client-request-id"):
            response.headers["x-ms-client-request-id"] = client_request_id
        body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else None
        self.exchanges.append(
            Exchange(method, path, query, response.status, request_id, correlation_id, dict(response.headers), body)
        )
        return response

    def _dispatch(
        self, request: web.Request, method: str, path: str, query: dict[str, str], raw: bytes
    ) -> web.StreamResponse:
        for fault in self._faults:
            if fault.remaining > 0 and fault.method == method and fault.pattern.search(path):
                fault.remaining -= 1
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
                return _error(fault.status, fault.code, fault.message, headers)
        # The discovery document is fetched without a token; a managed identity's token, with its secret.
        public = path in ("/discovery", MANAGED_IDENTITY_PATH)
        if not public and not request.headers.get("Authorization", "").startswith("Bearer "):
            return _error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/"'},
            )
        if path.lower().startswith("/subscriptions/") and "api-version" not in query:
            return _error(400, "MissingApiVersionParameter", "The api-version query parameter is required.")
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return _error(400, "InvalidRequestContent", "The request content could not be deserialized.")
        for route_method, pattern, handler in self._routes:
            if route_method == method and (match := pattern.fullmatch(path)):
                return handler(_Ctx(request, method, path, query, body, match.groupdict()))
        if any(pattern.fullmatch(path) for _, pattern, _ in self._routes):
            return _error(405, "MethodNotAllowed", f"The resource does not support http method '{method}'.")
        raise ArmError(404, "NotFound", f"No route for {method} {path} in the Azure stand-in.")

    def _route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(pattern, re.IGNORECASE), handler))

    def _register_routes(self) -> None:
        r = self._route
        r("GET", r"/discovery", self._discovery)
        r("GET", MANAGED_IDENTITY_PATH, self._managed_identity_token)
        for status_path in _STATUS_PATHS.values():
            r("GET", _OPS + rf"/{status_path}/(?P<op>[^/]+)", self._operation_status)
        r("GET", _OPS + r"/mfeOperationResults/(?P<op>[^/]+)", self._operation_result)
        r("GET", _RG, self._resource_group_get)
        r("GET", _RG + r"/resources", self._resource_group_resources)
        r("GET", _SUB + r"/resources", self._subscription_resources)
        r("GET", _SUB + r"/providers/Microsoft\.MachineLearningServices/workspaces", self._workspaces_list)
        r("GET", _SUB + r"/providers/(?P<namespace>[^/]+)/locations/(?P<loc>[^/]+)/operationResults/(?P<op>[^/]+)", self._operation_result)
        r("GET", _WS, self._workspace_get)
        r("DELETE", _WS, self._workspace_delete)
        r("GET", _WS + r"/jobs", self._jobs_list)
        r("GET", _WS + r"/jobs/(?P<name>[^/]+)", self._job_get)
        r("DELETE", _WS + r"/jobs/(?P<name>[^/]+)", self._job_delete)
        r("POST", _WS + r"/jobs/(?P<name>[^/]+)/cancel", self._job_cancel)
        assets = _WS + rf"/(?P<collection>{'|'.join(ASSET_COLLECTIONS)})"
        r("GET", assets, self._assets_list)
        r("GET", assets + r"/(?P<name>[^/]+)", self._asset_get)
        r("PUT", assets + r"/(?P<name>[^/]+)", self._asset_put)
        r("GET", assets + r"/(?P<name>[^/]+)/versions", self._asset_versions_list)
        r("GET", assets + r"/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", self._asset_version_get)
        r("PUT", assets + r"/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", self._asset_version_put)
        r("DELETE", assets + r"/(?P<name>[^/]+)/versions/(?P<version>[^/]+)", self._asset_version_delete)
        r("GET", _WS + r"/schedules", self._schedules_list)
        r("GET", _WS + r"/schedules/(?P<name>[^/]+)", self._getter("schedules", "schedules"))
        r("PUT", _WS + r"/schedules/(?P<name>[^/]+)", self._schedule_put)
        r("DELETE", _WS + r"/schedules/(?P<name>[^/]+)", self._schedule_delete)
        r("GET", _WS + r"/computes", self._computes_list)
        r("GET", _WS + r"/computes/(?P<name>[^/]+)", self._compute_get)
        r("DELETE", _WS + r"/computes/(?P<name>[^/]+)", self._compute_delete)
        for kind, attribute in (("onlineEndpoints", "online_endpoints"), ("batchEndpoints", "batch_endpoints")):
            r("GET", _WS + rf"/{kind}", self._lister(attribute))
            r("GET", _WS + rf"/{kind}/(?P<name>[^/]+)", self._getter(attribute, kind))
            r("DELETE", _WS + rf"/{kind}/(?P<name>[^/]+)", self._endpoint_deleter(attribute, kind))
            # Deployments are not modelled; OnlineEndpointOperations.get lists them, so answer empty.
            r("GET", _WS + rf"/{kind}/(?P<name>[^/]+)/deployments", self._deployments_list(attribute, kind))
        r("GET", _WS + r"/datastores", self._datastores_list)
        r("GET", _WS + r"/datastores/(?P<name>[^/]+)", self._getter("datastores", "datastores"))
        r("POST", _WS + r"/datastores/(?P<name>[^/]+)/listSecrets", self._datastore_secrets)
        r("GET", _HISTORY + r"/runs/(?P<run>[^/]+)", self._run_get)
        r("GET", _HISTORY + r"/runs/(?P<run>[^/]+)/children", self._run_children)
        # Any other provider's resource, by id (what ResourceManagementClient.resources.*_by_id hits).
        other_provider = r"(?P<namespace>(?!Microsoft\.MachineLearningServices/)[^/]+)"
        generic = _RG + rf"/providers/{other_provider}/(?P<type>[^/]+)/(?P<name>[^/]+)"
        r("GET", generic, self._generic_get)
        r("DELETE", generic, self._generic_delete)
        r("GET", _RG + r"/providers/Microsoft\.Storage/storageAccounts/(?P<name>[^/]+)/blobServices/default", self._blob_service_get)

    # -------------------------------------------------------------------------------- helpers
    def _workspace(self, ctx: _Ctx) -> Workspace:
        m = ctx.match
        if m["sub"].lower() not in self.state.subscriptions:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{m['sub']}' could not be found.")
        if self.state.resource_group(m["sub"], m["rg"]) is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{m['rg']}' could not be found.")
        workspace = self.state.workspace(m["sub"], m["rg"], m["ws"])
        if workspace is None:
            raise _not_found(f"{ML}/workspaces", m["ws"], f"resource group '{m['rg']}'")
        return workspace

    def _child(self, ctx: _Ctx, attribute: str, kind: str) -> tuple[Workspace, Json]:
        workspace = self._workspace(ctx)
        item = getattr(workspace, attribute).get(ctx.match["name"].lower())
        if item is None:
            where = f"resource group '{workspace.resource_group}'"
            raise _ml_not_found(workspace, kind, ctx.match["name"]) or _not_found(
                f"{ML}/workspaces/{workspace.name}/{kind}", ctx.match["name"], where
            )
        return workspace, item

    def _page(self, ctx: _Ctx, items: list[Json]) -> web.Response:
        """One page of ``items``; the rest is behind ``nextLink`` with an opaque ``$skip`` token."""
        offset = _offset(ctx.query.get("$skip"), "BadRequest")
        count = ctx.query.get("count", "")  # some lists (datastores, endpoints) ask for a page size
        end = offset + (min(self.page_size, int(count)) if count.isdigit() and int(count) > 0 else self.page_size)
        body: Json = {"value": items[offset:end]}
        if end < len(items):
            params = {k: v for k, v in ctx.query.items() if k != "$skip"}
            params["$skip"] = _token(end)
            body["nextLink"] = f"{self.url}{ctx.path}?{urlencode(params)}"
        return web.json_response(body)

    @staticmethod
    def _view(ctx: _Ctx, items: list[Json]) -> list[Json]:
        """Apply ``listViewType`` (ActiveOnly by default) on ``properties.isArchived``."""
        view = ctx.query.get("listViewType", "ActiveOnly").lower()
        if view == "all":
            return items
        archived = view == "archivedonly"
        return [item for item in items if bool(item["properties"].get("isArchived")) == archived]

    def _start_operation(
        self,
        ctx: _Ctx,
        workspace: Workspace | _Place,
        *,
        complete: Callable[[], None],
        rollback: Callable[[], None] = lambda: None,
        body: Json | None = None,
        kind: OperationKind = "mfe",
    ) -> web.Response:
        """202 (a DELETE or POST) or, with ``body``, 201 with it (a PUT), and an operation to poll."""
        failure = next(
            (f for f in self._operation_failures if f.method == ctx.method and f.pattern.search(ctx.path)), None
        )
        if failure is not None:
            self._operation_failures.remove(failure)
        error = {"code": failure.code, "message": failure.message} if failure else None
        if self.lro.mode == "sync":
            if error is not None:
                rollback()
                return _error(400, error["code"], error["message"])
            complete()
            return web.json_response(body) if body is not None else web.Response(status=200)
        operation = Operation(
            id=str(uuid.uuid4()),
            subscription_id=workspace.subscription_id,
            location=workspace.location,
            method=ctx.method,
            target=ctx.path,
            remaining=self.lro.in_progress_polls,
            complete=complete,
            rollback=rollback,
            failure=error,
            kind=kind,
        )
        self.operations[operation.id] = operation
        headers = self._operation_headers(operation, ctx.query.get("api-version", ""))
        if body is not None:
            return web.json_response(body, status=201, headers=headers)
        return web.Response(status=202, headers=headers)

    def _operation_headers(self, operation: Operation, api_version: str) -> dict[str, str]:
        """As the service answers: workspaces give both headers on their status URL, computes only
        ``Azure-AsyncOperation``, the others ``Azure-AsyncOperation`` plus ``Location`` (the operation
        result, or for a PUT the resource itself) and ``x-ms-async-operation-timeout``."""
        base = f"{self.url}/subscriptions/{operation.subscription_id}/providers/{ML}/locations/{operation.location}"
        query = urlencode({"api-version": api_version})
        result = f"{base}/mfeOperationResults/{operation.id}?{query}"
        headers: dict[str, str] = {}
        if operation.kind == "arm":
            namespace = operation.target.split("/providers/", 1)[1].split("/", 1)[0]
            base = f"{self.url}/subscriptions/{operation.subscription_id}/providers/{namespace}/locations/{operation.location}"
            headers["Location"] = f"{base}/operationResults/{operation.id}?{query}"
        elif self.lro.mode == "location":  # test control: a Location-only operation, which ARM allows
            headers["Location"] = result
        else:
            status = f"{base}/{_STATUS_PATHS[operation.kind]}/{operation.id}?{query}"
            headers["Azure-AsyncOperation"] = status
            if operation.kind == "workspace":
                headers["Location"] = status
            elif operation.kind == "mfe":
                headers["Location"] = f"{self.url}{operation.target}?{query}" if operation.method == "PUT" else result
                headers["x-ms-async-operation-timeout"] = "PT30M"
        if self.lro.retry_after:
            headers["Retry-After"] = str(self.lro.retry_after)
        return headers

    def _operation(self, ctx: _Ctx) -> Operation:
        operation = self.operations.get(ctx.match["op"])
        if operation is None:
            raise ArmError(404, "NotFound", f"Operation '{ctx.match['op']}' was not found.")
        return operation

    # ---------------------------------------------------------------------------------- misc
    def _discovery(self, ctx: _Ctx) -> web.Response:
        # Every data-plane service of the workspace points back at the stand-in; the keys are the
        # ones Microsoft Learn shows (how-to-manage-rest).
        keys = ("api", "experimentation", "history", "hyperdrive", "labeling", "modelmanagement", "pipelines")
        return web.json_response(dict.fromkeys((*keys, "studiocoreservices"), self.url))

    def _managed_identity_token(self, ctx: _Ctx) -> web.Response:
        """An App Service managed identity's token endpoint (`IDENTITY_ENDPOINT`, secret in
        `X-IDENTITY-HEADER`), so a bot in another process signs in with DefaultAzureCredential as
        it does on Azure. The token is unsigned: the stand-in checks only that one is sent."""
        if not ctx.request.headers.get("X-IDENTITY-HEADER"):
            raise ArmError(401, "Unauthorized", "The X-IDENTITY-HEADER header is missing.")
        resource = ctx.query.get("resource", "")
        expires = int(time.time()) + 3600
        token = unsigned_token({"aud": resource, "tid": DEFAULT_TENANT, "oid": MANAGED_IDENTITY_OBJECT_ID, "exp": expires})
        return web.json_response(
            {"access_token": token, "expires_on": str(expires), "resource": resource, "token_type": "Bearer",
             "client_id": MANAGED_IDENTITY_CLIENT_ID}
        )

    def _operation_status(self, ctx: _Ctx) -> web.Response:
        operation = self._operation(ctx)
        operation.advance()
        status = operation.status
        body: Json
        if operation.kind == "mfe":
            # While running, the service names what is happening ("Deleting", "Updating", "Creating").
            if status == "InProgress":
                status = "Deleting" if operation.method == "DELETE" else "Updating"
            base = f"/subscriptions/{operation.subscription_id}/providers/{ML}/locations/{operation.location}"
            body = {"id": f"{base}/mfeOperationResults/{operation.id}", "name": operation.id, "status": status,
                    "startTime": operation.started}
            if operation.ended:
                body["endTime"] = operation.ended
        else:
            body = {"status": status}
            if operation.kind == "compute" and status == "Succeeded":
                body["percentComplete"] = 100.0
        if operation.status == "Failed":
            body["error"] = operation.failure
        retry = operation.status == "InProgress" and self.lro.retry_after
        return web.json_response(body, headers={"Retry-After": str(self.lro.retry_after)} if retry else None)

    def _operation_result(self, ctx: _Ctx) -> web.Response:
        operation = self._operation(ctx)
        operation.advance()
        if operation.status == "InProgress":
            headers = self._operation_headers(operation, ctx.query.get("api-version", ""))
            return web.Response(status=202, headers=headers)
        if operation.status == "Failed":
            failure = operation.failure or {}
            return _error(400, failure.get("code", "Failed"), failure.get("message", "Operation failed."))
        return web.Response(status=204 if operation.method == "DELETE" else 200)

    # ----------------------------------------------------------------------------------- ARM
    def _group(self, ctx: _Ctx) -> ResourceGroup:
        group = self.state.resource_group(ctx.match["sub"], ctx.match["rg"])
        if group is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{ctx.match['rg']}' could not be found.")
        return group

    def _resource_group_get(self, ctx: _Ctx) -> web.Response:
        return web.json_response(self._group(ctx).to_rest())

    def _resource_group_resources(self, ctx: _Ctx) -> web.Response:
        group = self._group(ctx)
        items = [resource.to_rest() for resource in group.resources.values()]
        for workspace in group.workspaces.values():
            rest = workspace.to_rest(self.url)
            items.append({k: rest[k] for k in ("id", "name", "type", "location", "kind", "tags", "identity", "sku")})
        return self._page(ctx, items)

    def _subscription_resources(self, ctx: _Ctx) -> web.Response:
        """Every resource of the subscription; ``$filter=resourceType eq '<type>'`` narrows the type."""
        groups = self.state.subscriptions.get(ctx.match["sub"].lower())
        if groups is None:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{ctx.match['sub']}' could not be found.")
        wanted = None
        if flt := ctx.query.get("$filter"):
            matched = re.fullmatch(r"\s*resourceType\s+eq\s+'([^']+)'\s*", flt, re.IGNORECASE)
            if matched is None:
                raise ArmError(400, "InvalidFilter", f"The stand-in understands only resourceType eq '…', not {flt!r}.")
            wanted = matched[1].lower()
        listed = [r.to_rest() for g in groups.values() for r in g.resources.values() if wanted in (None, r.type.lower())]
        # A listed resource carries no properties unless expanded (GenericResourceExpanded).
        return self._page(ctx, [{k: v for k, v in item.items() if k != "properties"} for item in listed])

    def _workspaces_list(self, ctx: _Ctx) -> web.Response:
        """The workspaces of a subscription (``ml.workspaces.list(scope="subscription")``)."""
        groups = self.state.subscriptions.get(ctx.match["sub"].lower(), {})
        workspaces = [w for g in groups.values() for w in g.workspaces.values()]
        return self._page(ctx, [w.to_rest(self.url) for w in sorted(workspaces, key=lambda w: w.name)])

    def _generic_get(self, ctx: _Ctx) -> web.Response:
        self._group(ctx)
        resource = self.state.generic_resource(ctx.path)
        if resource is None:
            m = ctx.match
            raise _not_found(f"{m['namespace']}/{m['type']}", m["name"], f"resource group '{m['rg']}'")
        return web.json_response(resource.to_rest())

    def _blob_service_get(self, ctx: _Ctx) -> web.Response:
        self._group(ctx)
        resource = self.state.generic_resource(ctx.path.rsplit("/blobServices/", 1)[0])
        if resource is None:
            raise _not_found("Microsoft.Storage/storageAccounts", ctx.match["name"], f"resource group '{ctx.match['rg']}'")
        return web.json_response(resource.blob_service_rest())

    def _generic_delete(self, ctx: _Ctx) -> web.Response:
        # Storage, key vault and App Insights answer their deletes at once (the default), so
        # fire-and-forget callers such as the SDK's dependent-resource cleanup are deterministic;
        # `lro.other_providers = "async"` plays those that take a while (registries, Log Analytics).
        self._group(ctx)
        resource = self.state.generic_resource(ctx.path)
        if resource is None:
            m = ctx.match
            raise _not_found(f"{m['namespace']}/{m['type']}", m["name"], f"resource group '{m['rg']}'")
        if self.lro.other_providers == "sync":
            self.state.remove_generic_resource(resource.id)
            return web.Response(status=200)
        place = _Place(ctx.match["sub"], resource.location)
        return self._start_operation(ctx, place, complete=lambda: self.state.remove_generic_resource(resource.id), kind="arm")

    # ----------------------------------------------------------------------------- workspace
    def _workspace_get(self, ctx: _Ctx) -> web.Response:
        return web.json_response(self._workspace(ctx).to_rest(self.url))

    def _workspace_delete(self, ctx: _Ctx) -> web.Response:
        workspace = self._workspace(ctx)
        if workspace.provisioning_state == "Deleting":
            raise ArmError(409, "Conflict", f"Workspace '{workspace.name}' is already being deleted.")
        purge = ctx.query.get("forceToPurge", "false").lower() == "true"
        previous = workspace.provisioning_state
        workspace.provisioning_state = "Deleting"

        def rollback() -> None:
            workspace.provisioning_state = previous

        return self._start_operation(
            ctx,
            workspace,
            complete=lambda: self.state.remove_workspace(workspace, purge=purge),
            rollback=rollback,
            kind="workspace",
        )

    # ---------------------------------------------------------------------------------- jobs
    def _jobs_list(self, ctx: _Ctx) -> web.Response:
        workspace = self._workspace(ctx)
        jobs = self._view(ctx, list(workspace.jobs.values()))
        if job_type := ctx.query.get("jobType"):
            jobs = [j for j in jobs if j["properties"]["jobType"].lower() == job_type.lower()]
        if tag := ctx.query.get("tag"):
            jobs = [j for j in jobs if tag in (j["properties"].get("tags") or {})]
        jobs.sort(key=lambda j: j["systemData"]["createdAt"], reverse=True)  # newest first, as the service
        return self._page(ctx, jobs)

    def _job_get(self, ctx: _Ctx) -> web.Response:
        workspace = self._workspace(ctx)
        run = workspace.runs.get(ctx.match["name"])
        if ctx.match["name"].lower() not in workspace.jobs and run is not None and run.get("parentRunId"):
            # A pipeline step: the control plane answers without "properties", which is the SDK's
            # cue to read the job from run history instead (azure.ai.ml ``_is_pipeline_child_job``).
            return web.json_response(
                {"id": workspace.child_id("jobs", run["runId"]), "name": run["runId"], "type": f"{ML}/workspaces/jobs"}
            )
        return web.json_response(self._child(ctx, "jobs", "jobs")[1])

    def _job_delete(self, ctx: _Ctx) -> web.Response:
        workspace, job = self._child(ctx, "jobs", "jobs")

        def complete() -> None:
            name = job["name"]
            workspace.jobs.pop(name.lower(), None)
            for run_id in [r for r, run in workspace.runs.items() if r == name or run.get("rootRunId") == name]:
                del workspace.runs[run_id]
            self.state.deleted.append(job["id"])

        return self._start_operation(ctx, workspace, complete=complete)

    def _job_cancel(self, ctx: _Ctx) -> web.Response:
        workspace, job = self._child(ctx, "jobs", "jobs")
        props = job["properties"]
        if props["status"] in TERMINAL_JOB_STATES:
            return web.Response(status=200)  # nothing to cancel
        previous = props["status"]
        props["status"] = "CancelRequested"

        def set_status(status: str) -> Callable[[], None]:
            def apply() -> None:
                props["status"] = status
                if run := workspace.runs.get(job["name"]):
                    run["status"] = status

            return apply

        return self._start_operation(ctx, workspace, complete=set_status("Canceled"), rollback=set_status(previous))

    # ---------------------------------------------------------------------- versioned assets
    def _asset(self, ctx: _Ctx) -> tuple[Workspace, AssetContainer]:
        workspace = self._workspace(ctx)
        collection = ctx.match["collection"]
        entry = workspace.collection(collection).get(ctx.match["name"].lower())
        if entry is None:
            where = f"resource group '{workspace.resource_group}'"
            raise _ml_not_found(workspace, collection, ctx.match["name"]) or _not_found(
                f"{ML}/workspaces/{workspace.name}/{collection}", ctx.match["name"], where
            )
        return workspace, entry

    def _asset_version(self, ctx: _Ctx) -> tuple[Workspace, AssetContainer, Json]:
        workspace, entry = self._asset(ctx)
        version = entry.versions.get(ctx.match["version"])
        if version is None:
            raise _not_found(
                f"{ML}/workspaces/{workspace.name}/{ctx.match['collection']}/{entry.container['name']}/versions",
                ctx.match["version"],
                f"resource group '{workspace.resource_group}'",
            )
        return workspace, entry, version

    def _assets_list(self, ctx: _Ctx) -> web.Response:
        workspace = self._workspace(ctx)
        containers = self._view(ctx, [entry.container for entry in workspace.collection(ctx.match["collection"]).values()])
        return self._page(ctx, sorted(containers, key=lambda c: c["name"]))

    def _asset_get(self, ctx: _Ctx) -> web.Response:
        return web.json_response(self._asset(ctx)[1].container)

    def _asset_put(self, ctx: _Ctx) -> web.Response:
        """Update a container (the SDK archives a whole asset this way)."""
        _, entry = self._asset(ctx)
        self._merge_properties(entry.container, ctx.body, keep=("latestVersion", "nextVersion", "provisioningState"))
        return web.json_response(entry.container)

    def _asset_versions_list(self, ctx: _Ctx) -> web.Response:
        _, entry = self._asset(ctx)
        versions = self._view(ctx, list(entry.versions.values()))
        if wanted := ctx.query.get("version"):
            versions = [v for v in versions if v["name"] == wanted]
        # Newest numeric version first, then any named versions.
        versions.sort(key=lambda v: (not v["name"].isdigit(), -int(v["name"]) if v["name"].isdigit() else 0, v["name"]))
        if top := ctx.query.get("$top"):
            versions = versions[: int(top)]
        return self._page(ctx, versions)

    def _asset_version_get(self, ctx: _Ctx) -> web.Response:
        return web.json_response(self._asset_version(ctx)[2])

    def _asset_version_put(self, ctx: _Ctx) -> web.Response:
        """Update an existing version (``archive``/``restore`` is GET, flip ``isArchived``, PUT).
        A version's content is immutable: only its description, tags, stage and archive flag change."""
        workspace, entry, version = self._asset_version(ctx)
        immutable = ("provisioningState", *_IMMUTABLE[ctx.match["collection"]])
        self._merge_properties(version, ctx.body, keep=immutable)
        props = version["properties"]
        if "stage" in props:  # archiving moves a version to stage "Archived", restoring back (model recordings)
            if props.get("isArchived"):
                props["stage"] = "Archived"
            elif props["stage"] == "Archived":
                props["stage"] = "Development"
        workspace.refresh_container(ctx.match["collection"], entry.container["name"])
        return web.json_response(version)

    def _asset_version_delete(self, ctx: _Ctx) -> web.Response:
        workspace, entry, version = self._asset_version(ctx)
        del entry.versions[version["name"]]
        self.state.deleted.append(version["id"])
        if entry.versions:
            workspace.refresh_container(ctx.match["collection"], entry.container["name"])
        return web.Response(status=200)

    # ----------------------------------------------------------------------------- schedules
    def _schedules_list(self, ctx: _Ctx) -> web.Response:
        workspace = self._workspace(ctx)
        view = ctx.query.get("listViewType", "EnabledOnly").lower()
        schedules = [s for s in workspace.schedules.values() if view == "all" or s["properties"]["isEnabled"] == (view == "enabledonly")]
        return self._page(ctx, sorted(schedules, key=lambda s: s["name"]))

    def _schedule_put(self, ctx: _Ctx) -> web.Response:
        """Create or update (the SDK disables a schedule this way): 201 with the body and an
        operation to poll, as the service answers."""
        workspace = self._workspace(ctx)
        if not isinstance(ctx.body, dict) or not isinstance(ctx.body.get("properties"), dict):
            raise ArmError(400, "InvalidRequestContent", "The request body must carry 'properties'.")
        name = ctx.match["name"]
        schedule = workspace.schedules.get(name.lower())
        if schedule is None:
            schedule = workspace.schedules[name.lower()] = {
                "id": workspace.child_id("schedules", name), "name": name, "type": f"{ML}/workspaces/schedules",
                "properties": {}, "systemData": workspace.created_by.system_data(iso()),
            }
        previous = dict(schedule["properties"])
        self._merge_properties(schedule, ctx.body, keep=())
        schedule["properties"]["provisioningState"] = "Updating"

        def complete() -> None:
            schedule["properties"]["provisioningState"] = "Succeeded"

        def rollback() -> None:
            schedule["properties"] = previous

        # The 201 carries only the properties (schedule/…test_schedule_lifetime recording).
        return self._start_operation(
            ctx, workspace, complete=complete, rollback=rollback, body={"properties": schedule["properties"]}
        )

    def _schedule_delete(self, ctx: _Ctx) -> web.Response:
        workspace, schedule = self._child(ctx, "schedules", "schedules")
        if schedule["properties"]["isEnabled"]:  # "A schedule must be disabled to be deleted" (Learn)
            raise ArmError(400, "UserError", f"Schedule '{schedule['name']}' is enabled: disable it before deleting it.")

        def complete() -> None:
            if workspace.schedules.pop(schedule["name"].lower(), None) is not None:
                self.state.deleted.append(schedule["id"])

        return self._start_operation(ctx, workspace, complete=complete)

    @staticmethod
    def _merge_properties(resource: Json, body: Any, *, keep: tuple[str, ...]) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise ArmError(400, "InvalidRequestContent", "The request body must carry 'properties'.")
        props = resource["properties"]
        props.update({k: v for k, v in body["properties"].items() if k not in keep})
        resource["systemData"]["lastModifiedAt"] = iso()

    # ------------------------------------------------------------------------------ computes
    def _computes_list(self, ctx: _Ctx) -> web.Response:
        workspace = self._workspace(ctx)
        return self._page(ctx, sorted(workspace.computes.values(), key=lambda c: c["name"]))

    def _compute_get(self, ctx: _Ctx) -> web.Response:
        return web.json_response(self._child(ctx, "computes", "computes")[1])

    def _compute_delete(self, ctx: _Ctx) -> web.Response:
        action = ctx.query.get("underlyingResourceAction")
        if action is None or action.lower() not in ("delete", "detach"):
            raise ArmError(400, "BadRequest", "Query parameter 'underlyingResourceAction' must be Delete or Detach.")
        workspace, compute = self._child(ctx, "computes", "computes")
        behind = compute["properties"].get("resourceId")
        # Delete (not Detach) takes the resource behind an attached compute with it.
        also = behind if action.lower() == "delete" and compute["properties"].get("isAttachedCompute") and behind else None
        return self._delete_child(ctx, workspace, "computes", compute, also=also, kind="compute")

    def _delete_child(
        self,
        ctx: _Ctx,
        workspace: Workspace,
        attribute: str,
        item: Json,
        *,
        also: str | None = None,
        kind: OperationKind = "mfe",
    ) -> web.Response:
        """A child delete as an LRO: ``Deleting`` until the operation completes, then gone (with the
        resource ``also`` names, if any)."""
        props = item["properties"]
        if props.get("provisioningState") == "Deleting":
            raise ArmError(409, "Conflict", f"'{item['name']}' is already being deleted.")
        previous = props.get("provisioningState")
        props["provisioningState"] = "Deleting"

        def complete() -> None:
            if getattr(workspace, attribute).pop(item["name"].lower(), None) is not None:
                self.state.deleted.append(item["id"])
            if also is not None:
                self.state.remove_generic_resource(also)

        def rollback() -> None:
            props["provisioningState"] = previous

        return self._start_operation(ctx, workspace, complete=complete, rollback=rollback, kind=kind)

    # ------------------------------------------------------------------ endpoints, datastores
    def _lister(self, attribute: str) -> Handler:
        def handler(ctx: _Ctx) -> web.Response:
            workspace = self._workspace(ctx)
            return self._page(ctx, sorted(getattr(workspace, attribute).values(), key=lambda i: i["name"]))

        return handler

    def _getter(self, attribute: str, kind: str) -> Handler:
        def handler(ctx: _Ctx) -> web.Response:
            return web.json_response(self._child(ctx, attribute, kind)[1])

        return handler

    def _endpoint_deleter(self, attribute: str, kind: str) -> Handler:
        def handler(ctx: _Ctx) -> web.Response:
            workspace, endpoint = self._child(ctx, attribute, kind)
            return self._delete_child(ctx, workspace, attribute, endpoint)

        return handler

    def _deployments_list(self, attribute: str, kind: str) -> Handler:
        def handler(ctx: _Ctx) -> web.Response:
            self._child(ctx, attribute, kind)
            return self._page(ctx, [])

        return handler

    def _datastores_list(self, ctx: _Ctx) -> web.Response:
        """`isDefault=true` (what `datastores.get_default()` sends) keeps only the default one."""
        workspace = self._workspace(ctx)
        datastores = sorted(workspace.datastores.values(), key=lambda d: d["name"])
        if ctx.query.get("isDefault", "").lower() == "true":
            datastores = [d for d in datastores if d["properties"]["isDefault"]]
        return self._page(ctx, datastores)

    def _datastore_secrets(self, ctx: _Ctx) -> web.Response:
        workspace, datastore = self._child(ctx, "datastores", "datastores")
        secrets = workspace.datastore_secrets.get(ctx.match["name"].lower())
        if secrets is None:  # an identity-based datastore (model/…archive_restore_version recording)
            kind = datastore["properties"]["credentials"]["credentialsType"]
            raise ArmError(400, "UserError", f"No secrets for credentials of type {kind}.")
        return web.json_response(secrets)

    # --------------------------------------------------------------------------- run history
    def _run_get(self, ctx: _Ctx) -> web.Response:
        workspace = self._workspace(ctx)
        run = workspace.runs.get(ctx.match["run"])
        if run is None:
            raise ArmError(404, "UserError", f"Run {ctx.match['run']} was not found")
        return web.json_response(run)

    def _run_children(self, ctx: _Ctx) -> web.Response:
        """A run's direct children, oldest first, `page_size` at a time. Run history pages with
        `continuationToken` (sent back as `$continuationtoken`) and answers `nextLink: null`, which is
        why azure-ai-ml's pager stops after the first page (issue #12)."""
        workspace = self._workspace(ctx)
        if ctx.match["run"] not in workspace.runs:
            raise ArmError(404, "UserError", f"Run {ctx.match['run']} was not found")
        children = [run for run in workspace.runs.values() if run.get("parentRunId") == ctx.match["run"]]
        children.sort(key=lambda run: (run["createdUtc"], run["runNumber"]))
        if top := ctx.query.get("$top"):
            return web.json_response({"value": children[: int(top)], "continuationToken": None, "nextLink": None})
        offset = _offset(ctx.query.get("$continuationtoken"), "UserError")
        end = offset + self.page_size
        more = _token(end) if end < len(children) else None
        return web.json_response({"value": children[offset:end], "continuationToken": more, "nextLink": None})

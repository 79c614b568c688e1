"""The Azure ML control plane of one workspace, on azure-ai-ml (MLClient) and azure-mgmt-resource.

azure-ai-ml is synchronous and slow to import: it is imported on first use and every call runs in a
worker thread, so the event loop (and Slack's 3-second ack) never waits on it.
Clients are built from three inputs only — a credential, the resource-manager endpoint and
pass-through client options — so the same code runs against Azure, a sovereign cloud or the
local stand-in.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from commands.azure.config import WorkspaceConfig
from commands.azure.door import ItemResult, Status
from commands.azure.retry import MGMT_RETRY
from commands.azure.sdk import response_header

PUBLIC_ARM = "https://management.azure.com/"
WORKSPACE_API_VERSION = "2024-04-01"
STORAGE_API_VERSION = "2023-05-01"
T = TypeVar("T")


@dataclass(frozen=True)
class StorageAccount:
    """The storage account a workspace is bound to (its `storageAccount`), and its blob endpoint."""

    id: str
    name: str
    blob_endpoint: str | None


def cloud_kwargs(resource_manager: str) -> dict[str, Any]:
    """MLClient's cloud: the public one by name, anything else as a custom cloud with every
    endpoint at `resource_manager` (MLClient keeps custom clouds in a process-wide registry that
    never overwrites a name, hence one name per endpoint)."""
    base = resource_manager.rstrip("/") + "/"
    if base == PUBLIC_ARM:
        return {"cloud": "AzureCloud"}
    url = urlsplit(base)
    return {
        "cloud": f"amlbot-{url.scheme}-{url.netloc.replace(':', '-')}",
        "cloud_metadata": {
            "azure_portal": base,
            "resource_manager": base,
            "active_directory": base,
            "aml_resource_id": base,
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": base,
        },
    }


def default_credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def outcome_of_delete(poller_call: Callable[[], Any]) -> ItemResult:
    """Run a delete to completion: 404 is 'already absent', any other error 'failed' with its reason."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    try:
        poller = poller_call()
        if hasattr(poller, "result"):
            poller.result()
        return ItemResult(Status.DELETED)
    except ResourceNotFoundError as error:
        return ItemResult(Status.ALREADY_ABSENT, azure_request_id=response_header(error, "x-ms-request-id"))
    except HttpResponseError as error:
        code = getattr(error.error, "code", None) or f"HTTP {error.status_code}"
        return ItemResult(Status.FAILED, f"{code}: {error.message}"[:500], response_header(error, "x-ms-request-id"))



class WorkspaceControl:
    def __init__(
        self,
        config: WorkspaceConfig,
        credential: Any | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self._credential = credential
        self._kwargs = {**MGMT_RETRY, **(client_kwargs or {})}
        self._lock = threading.Lock()
        self._ml: Any = None
        self._arm: Any = None

    @property
    def resource_manager(self) -> str:
        return self.config.arm_endpoint or PUBLIC_ARM

    def ml(self) -> Any:
        with self._lock:
            if self._ml is None:
                from azure.ai.ml import MLClient

                self._credential = self._credential or default_credential()
                self._ml = MLClient(
                    self._credential,
                    self.config.subscription_id,
                    self.config.resource_group,
                    self.config.workspace_name,
                    enable_telemetry=False,
                    show_progress=False,
                    **cloud_kwargs(self.resource_manager),
                    **self._kwargs,
                )
            return self._ml

    def arm(self) -> Any:
        with self._lock:
            if self._arm is None:
                from azure.mgmt.resource.resources import ResourceManagementClient

                self._credential = self._credential or default_credential()
                base = self.resource_manager.rstrip("/")
                self._arm = ResourceManagementClient(
                    self._credential,
                    self.config.subscription_id,
                    base_url=base,
                    credential_scopes=[base + "/.default"],
                    **self._kwargs,
                )
            return self._arm

    async def client(self) -> Any:
        """`ml()` from a coroutine: the first one imports azure.ai.ml (seconds), never on the event loop."""
        return await asyncio.to_thread(self.ml)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one blocking SDK call off the event loop."""
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    async def call_or_none(self, getter: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """One blocking SDK read off the event loop: None when there is no such resource (404);
        any other error is raised, never read as an answer."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return await self.call(getter, *args, **kwargs)
        except ResourceNotFoundError:
            return None

    def document(self, resource_id: str, api_version: str) -> dict[str, Any] | None:
        """A resource's REST body as the service keeps it (systemData included), or None if gone."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            document: dict[str, Any] = self.arm().resources.get_by_id(resource_id, api_version=api_version).as_dict()
            return document
        except ResourceNotFoundError:
            return None

    def storage_account(self) -> StorageAccount:
        """The workspace's own storage account, from its `storageAccount` id (read through the
        resource manager), with the blob endpoint the account publishes."""
        from azure.core.exceptions import ResourceNotFoundError

        workspace = self.document(self.workspace_id, WORKSPACE_API_VERSION)
        if workspace is None:
            raise ResourceNotFoundError(f"workspace {self.config.workspace_name} not found")
        arm_id = (workspace.get("properties") or {}).get("storageAccount") or ""
        account = self.document(arm_id, STORAGE_API_VERSION) if arm_id.startswith("/subscriptions/") else None
        endpoints = ((account or {}).get("properties") or {}).get("primaryEndpoints") or {}
        return StorageAccount(arm_id, arm_id.rstrip("/").rsplit("/", 1)[-1], endpoints.get("blob"))

    def blob_service(self) -> dict[str, Any]:
        """The properties of the workspace storage account's blob service (`blobServices/default`:
        versioning, soft deletes), which only the resource manager tells; any failure is raised."""
        from azure.core.exceptions import ResourceNotFoundError

        account = self.storage_account()
        body = self.document(f"{account.id}/blobServices/default", STORAGE_API_VERSION) if account.id.startswith("/subscriptions/") else None
        if body is None:
            raise ResourceNotFoundError("the workspace's storage account (or its blob service) was not found")
        return body.get("properties") or {}

    def _run_history(self) -> Any:
        """Run history's REST operations. azure-ai-ml has no public call for run records:
        `jobs._runs_operations` is what its own `jobs.get` reads pipeline steps with."""
        ml = self.ml()
        with self._lock:  # the SDK builds that client on first use, without a lock of its own
            return ml.jobs._runs_operations

    def run_record(self, run_id: str) -> dict[str, Any] | None:
        """A run's run-history record as the service keeps it (`createdBy` with the object id and
        UPN, `runType`, `dataContainerId`, …), or None if it is gone."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return dict(self._run_history().get_run(run_id).as_dict())
        except ResourceNotFoundError:
            return None

    def run_creator(self, run_id: str) -> dict[str, Any]:
        """Who created a run, from its run-history record (`userObjectId`, `upn`, … as on the wire).
        The control plane shows only a UPN or a display name."""
        return dict((self.run_record(run_id) or {}).get("createdBy") or {})

    def run_children(self, run_id: str) -> list[dict[str, Any]]:
        """A run's direct children in run history, every page, as the service sends them.

        Run history pages with `continuationToken` and no `nextLink`; azure-ai-ml's pager follows only
        `nextLink`, so it stops after the first page. Each request is still the SDK's own; the token
        is read from the answer and handed back as `$continuationtoken` until there is none."""
        operations = self._run_history()._operation
        c = self.config
        children: list[dict[str, Any]] = []
        token: str | None = None
        pages: list[dict[str, Any]] = []

        def keep_page(pipeline_response: Any) -> None:
            response = pipeline_response.http_response
            if response.status_code == 200:  # a retried try's error body is not a page
                pages.append(response.json())

        while True:
            pages.clear()
            for _ in operations.get_child(
                c.subscription_id, c.resource_group, c.workspace_name, run_id,
                continuationtoken=token, raw_response_hook=keep_page,
            ):
                pass  # the pages themselves are read by the hook, as sent
            children += [run for page in pages for run in page.get("value") or []]
            token = pages[-1].get("continuationToken") if pages else None
            if not token:
                return children

    @property
    def workspace_id(self) -> str:
        c = self.config
        return (
            f"/subscriptions/{c.subscription_id}/resourceGroups/{c.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{c.workspace_name}"
        )

    def child_id(self, collection: str, name: str) -> str:
        return f"{self.workspace_id}/{collection}/{name}"

    async def close(self) -> None:
        if self._arm is not None:
            await self.call(self._arm.close)

"""The doors to each configured workspace (storage and control plane), opened on first use, with every
Azure call they make measured (bot.metrics)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot import metrics
from commands.azure.config import WorkspaceConfig
from commands.azure.control import WorkspaceControl
from commands.azure.graph import PUBLIC_GRAPH, Directory
from commands.operations.base import OperationError

if TYPE_CHECKING:
    from commands.azure.blobs import WorkspaceBlobs


class Doors:
    def __init__(
        self,
        workspaces: dict[str, WorkspaceConfig],
        *,
        credential: Any | None = None,
        client_kwargs: dict[str, Any] | None = None,
        graph_endpoint: str | None = PUBLIC_GRAPH,
    ) -> None:
        self._configs = workspaces
        self._graph_endpoint = graph_endpoint  # None: amlbot does not ask Microsoft Graph
        self._directory: Directory | None = None
        self._credential = credential  # None: DefaultAzureCredential, made on first use
        self._client_kwargs = client_kwargs or {}
        self._blobs: dict[str, WorkspaceBlobs] = {}
        self._bound: set[str] = set()
        self._controls: dict[str, WorkspaceControl] = {}

    def get(self, alias: str, account_url: str | None = None) -> WorkspaceBlobs:
        """The workspace's blob storage as configured (or at `account_url`, the one `bind` found)."""
        if alias not in self._blobs:
            from commands.azure.blobs import WorkspaceBlobs  # the storage SDK: loaded on first use, not at start

            self._blobs[alias] = WorkspaceBlobs(self._configs[alias], account_url, client_kwargs=metrics.storage_kwargs())
        return self._blobs[alias]

    async def bind(self, alias: str) -> WorkspaceBlobs:
        """The workspace's blob storage, bound to the storage account the workspace itself names
        (`storageAccount`): reached through that account's blob endpoint when the config names none,
        refused when the config's URL or connection string names another account. Checked once."""
        if alias in self._bound:
            return self._blobs[alias]
        control = self.control(alias)
        account = await control.call(control.storage_account)
        config = self._configs[alias]
        configured = config.storage_connection_string or config.storage_account_url
        if not configured and not account.blob_endpoint:
            raise OperationError(f"Workspace `{alias}` names no storage account amlbot can read ({account.id or 'none'}).")
        door = self.get(alias, None if configured else account.blob_endpoint)
        if door.account_name.lower() != account.name.lower():
            key = "storage_connection_string" if config.storage_connection_string else "storage_account_url"
            raise OperationError(
                f"Workspace `{alias}` keeps its data in storage account `{account.name}`, but the config's `{key}` names "
                f"`{door.account_name}`: amlbot touches only the workspace's own account. Correct `{key}` or remove it."
            )
        self._bound.add(alias)
        return door

    def control(self, alias: str) -> WorkspaceControl:
        if alias not in self._controls:
            self._controls[alias] = WorkspaceControl(
                self._configs[alias], self._credential, metrics.management_kwargs(self._client_kwargs)
            )
        return self._controls[alias]

    def directory(self) -> Directory | None:
        """Microsoft Graph, with the same identity as the Azure clients; None when not set up."""
        if self._directory is None and self._graph_endpoint:
            measured = metrics.management_kwargs(self._client_kwargs, "graph")
            self._directory = Directory(self._graph_endpoint, self._credential, measured)
        return self._directory

    async def close(self) -> None:
        for door in self._blobs.values():
            await door.close()
        for control in self._controls.values():
            await control.close()
        if self._directory is not None:
            self._directory.close()
        self._blobs.clear()
        self._bound.clear()
        self._controls.clear()
        self._directory = None

"""The doors to each configured workspace (storage and control plane), opened on first use, with every
Azure call they make measured (bot.metrics)."""

from __future__ import annotations

from typing import Any

from bot import metrics
from commands.azure.blobs import WorkspaceBlobs
from commands.azure.config import WorkspaceConfig
from commands.azure.control import WorkspaceControl
from commands.azure.graph import PUBLIC_GRAPH, Directory


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
        self._controls: dict[str, WorkspaceControl] = {}

    def get(self, alias: str) -> WorkspaceBlobs:
        if alias not in self._blobs:
            self._blobs[alias] = WorkspaceBlobs(self._configs[alias], client_kwargs=metrics.STORAGE_KWARGS)
        return self._blobs[alias]

    def control(self, alias: str) -> WorkspaceControl:
        if alias not in self._controls:
            self._controls[alias] = WorkspaceControl(
                self._configs[alias], self._credential, metrics.management_kwargs(self._client_kwargs)
            )
        return self._controls[alias]

    def directory(self) -> Directory | None:
        """Microsoft Graph, with the same identity as the Azure clients; None when not set up."""
        if self._directory is None and self._graph_endpoint:
            measured = metrics.management_kwargs(self._client_kwargs, metrics.GRAPH_POLICY)
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
        self._controls.clear()
        self._directory = None

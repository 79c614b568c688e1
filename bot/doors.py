"""One door per configured workspace, opened on first use and reused."""

from __future__ import annotations

from commands.azure.blobs import WorkspaceBlobs
from commands.azure.door import WorkspaceDoor
from commands.azure.config import WorkspaceConfig


class Doors:
    def __init__(self, workspaces: dict[str, WorkspaceConfig]) -> None:
        self._configs = workspaces
        self._open: dict[str, WorkspaceDoor] = {}

    def get(self, alias: str) -> WorkspaceDoor:
        if alias not in self._open:
            self._open[alias] = WorkspaceBlobs(self._configs[alias])
        return self._open[alias]

    async def close(self) -> None:
        for door in self._open.values():
            await door.close()
        self._open.clear()

"""The one door to Azure: exactly the calls the operations make, nothing more.

Operations depend on this protocol; `commands.azure.sdk` implements it on the Azure SDKs, and
tests run that implementation against Azurite and the control-plane stand-in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class BlobInfo:
    container: str
    name: str
    size: int
    modified: datetime | None = None


class Status(StrEnum):
    DELETED = "deleted"
    ALREADY_ABSENT = "already_absent"
    FAILED = "failed"
    RETAINED = "retained"
    SOFT_DELETED = "soft_deleted"
    EXPORTED = "exported"


@dataclass(frozen=True)
class ItemResult:
    status: Status
    reason: str = ""
    azure_request_id: str | None = None


class WorkspaceDoor(Protocol):
    """Everything an operation may do to one workspace."""

    async def list_blobs(self, container: str, prefix: str) -> list[BlobInfo]: ...

    async def delete_blobs(self, container: str, names: list[str]) -> dict[str, ItemResult]: ...

    def read_blob(self, container: str, name: str) -> AsyncIterator[bytes]: ...

    async def write_blob(self, container: str, name: str, chunks: AsyncIterator[bytes]) -> int: ...

    async def read_link(self, container: str, name: str, expiry: timedelta) -> str: ...

    async def close(self) -> None: ...

"""The one door to Azure: exactly the calls the operations make, nothing more.

Operations depend on these protocols; `commands.azure.blobs` and `commands.azure.files` implement
them on the Azure SDKs, and tests run those against Azurite, the Files stand-in and the
control-plane stand-in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)  # slots: a listing may hold 100 000 of these
class BlobInfo:
    container: str
    name: str
    size: int
    modified: datetime | None = None
    etag: str | None = None


class DeleteMethod(StrEnum):
    """How a set of blobs is deleted; each item's outcome means the same either way."""

    BATCH = "batch"  # blob batch requests, up to 256 deletes each: one round trip for many
    SINGLE = "single"  # one request a blob, several in flight


class Status(StrEnum):
    DELETED = "deleted"
    ALREADY_ABSENT = "already_absent"
    FAILED = "failed"
    RETAINED = "retained"
    SOFT_DELETED = "soft_deleted"
    ARCHIVED = "archived"  # the most the service allows for some records; their files go separately
    EXPORTED = "exported"
    CHANGED = "changed"  # rewritten since the plan: kept, since approvers approved other bytes


# How people read a status in cards and receipts' summaries.
LABELS = {Status.CHANGED.value: "changed since the plan"}


CHANGED_REASON = "changed since the plan: rewritten after approval, so it was kept"
EXPORT_CHANGED = "changed since the plan: rewritten after approval, so it was not exported (approvers approved other bytes)"


def label(status: str) -> str:
    return LABELS.get(status, status.replace("_", " "))


class Gone(Exception):
    """The blob or file to read is not there (any more)."""


class Unaddressable(Exception):
    """A name with `.` or `..` segments: HTTP stacks resolve those in the request's path, so a
    request for it would reach another blob, or none. Such a name is never sent."""


def unaddressable(name: str) -> bool:
    return any(segment in (".", "..") for segment in name.replace("\\", "/").split("/"))


UNADDRESSABLE = "its name has `.` or `..` segments, which the HTTP path would resolve to another blob: not touched"


@dataclass(frozen=True)
class ItemResult:
    status: Status
    reason: str = ""
    azure_request_id: str | None = None


@dataclass(frozen=True)
class Copied:
    """A blob copied by the storage service itself: its outcome and, when it was copied, the
    copy's size and the Content-MD5 the service keeps for it (base64; None when it keeps none)."""

    result: ItemResult
    size: int | None = None
    content_md5: str | None = None


@dataclass(frozen=True)
class Retention:
    """What the storage account keeps of what is deleted in some containers, as the data plane tells it."""

    soft_delete_days: int | None  # blob soft delete: deleted blobs and snapshots stay recoverable this long
    holds: dict[str, str]  # container -> why nothing in it can be deleted now (a legal hold)
    guarded: dict[str, str]  # container -> why some of its blobs may refuse deletion (immutability policies)


class WorkspaceDoor(Protocol):
    """Everything an operation may do to one workspace."""

    async def list_blobs(self, container: str, prefix: str) -> list[BlobInfo]: ...

    async def delete_blobs(
        self, container: str, etags: dict[str, str | None], method: DeleteMethod = DeleteMethod.BATCH
    ) -> dict[str, ItemResult]:
        """Delete each named blob only while its ETag is the given one (any, for None); one that
        was rewritten is kept, as CHANGED."""
        ...

    def read_blob(self, container: str, name: str) -> AsyncIterator[bytes]: ...

    async def write_blob(self, container: str, name: str, chunks: AsyncIterator[bytes]) -> int: ...

    async def read_link(self, container: str, name: str, expiry: timedelta) -> str: ...

    async def ensure_container(self, container: str) -> bool: ...

    async def copy_blob(self, source: tuple[str, str], etag: str | None, container: str, name: str) -> Copied:
        """Have the service copy blob `source` (container, name) to `name` in `container`, only
        while the source still has `etag` (x-ms-source-if-match): no byte passes through amlbot.
        A source rewritten since is CHANGED and not copied; one gone is ALREADY_ABSENT."""
        ...

    async def container_link(self, container: str, expiry: timedelta) -> str:
        """A read-and-list link to the whole container alone, lapsing after `expiry`."""
        ...

    async def list_containers(self, prefix: str) -> list[tuple[str, datetime | None]]:
        """The containers whose names start with `prefix`, with when each was last modified."""
        ...

    async def delete_container(self, container: str) -> ItemResult: ...

    async def retention(self, containers: list[str]) -> Retention: ...

    async def close(self) -> None: ...


class ShareDoor(Protocol):
    """The workspace's Azure Files shares: where Studio keeps notebooks and user files."""

    async def walk(self, share: str, folder: str) -> tuple[list[BlobInfo], list[str]]:
        """Every file under `folder` and every directory, `folder` included; nothing if it is not there."""
        ...

    async def delete_files(self, share: str, etags: dict[str, str | None]) -> dict[str, ItemResult]:
        """Like `WorkspaceDoor.delete_blobs`, as near as Azure Files allows (see commands.azure.files)."""
        ...

    async def delete_directory(self, share: str, path: str) -> ItemResult: ...

    def read_file(self, share: str, path: str) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...

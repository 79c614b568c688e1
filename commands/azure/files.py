"""The workspace storage account's file shares on azure-storage-file-share (async clients).

Azure ML Studio keeps notebooks and user files in an Azure Files share, not in blobs. Files has no
batch delete: each file is one request, a few run at once; a directory goes once it is empty.
Signed in with Entra ID, the client must declare it acts as a backup operator
(`token_intent="backup"`), which the role Storage File Data Privileged Contributor grants.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.fileshare.aio import ShareServiceClient

from commands.azure.config import WorkspaceConfig
from commands.azure.door import CHANGED_REASON, BlobInfo, Gone, ItemResult, Status, Unaddressable, unaddressable
from commands.azure.retry import file_share_retry
from commands.azure.sdk import response_header

CONCURRENCY = 8  # deletes in flight at once: Files throttles per share, not per batch


def file_endpoint(blob_endpoint: str) -> str:
    """The account's Files endpoint from its Blob endpoint (`<account>.blob.<suffix>` -> `.file.`)."""
    url = urlsplit(blob_endpoint)
    account, dot_blob, suffix = url.netloc.partition(".blob.")
    if not dot_blob:
        raise ValueError(
            f"can't tell the file endpoint from {blob_endpoint!r}: give the workspace a "
            "storage_connection_string with a FileEndpoint"
        )
    return urlunsplit((url.scheme, f"{account}.file.{suffix}", "", "", ""))


def _credential() -> Any:
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()


async def _outcome(call: Callable[..., Awaitable[Any]]) -> ItemResult:
    """One delete: its request id on success, 404 as already absent, anything else failed."""
    request_ids: list[str] = []
    try:
        await call(raw_response_hook=lambda response: request_ids.append(response.http_response.headers.get("x-ms-request-id")))
    except ResourceNotFoundError as error:
        return ItemResult(Status.ALREADY_ABSENT, azure_request_id=response_header(error, "x-ms-request-id"))
    except HttpResponseError as error:
        reason = getattr(error, "error_code", None) or f"HTTP {error.status_code}"
        return ItemResult(Status.FAILED, str(reason), response_header(error, "x-ms-request-id"))
    return ItemResult(Status.DELETED, azure_request_id=request_ids[-1] if request_ids else None)


async def _changed(file: Any, etag: str) -> ItemResult | None:
    """Azure Files' Delete File takes no If-Match: the ETag is compared just before the delete, so
    a rewrite in the instant between the two still goes. None when the file is as planned."""
    try:
        properties = await file.get_file_properties()
    except ResourceNotFoundError as error:
        return ItemResult(Status.ALREADY_ABSENT, azure_request_id=response_header(error, "x-ms-request-id"))
    if properties.etag != etag:
        return ItemResult(Status.CHANGED, CHANGED_REASON)
    return None



def _endpoint(config: WorkspaceConfig) -> str:
    """The Files endpoint of a workspace signed in with Entra ID. A connection string that spells
    out its BlobEndpoint (an emulator, a private endpoint) must spell out its FileEndpoint too:
    amlbot does not guess a host. Raises ValueError saying why it cannot tell."""
    text = config.storage_connection_string
    if text:
        keys = {part.split("=", 1)[0].strip().lower() for part in text.split(";") if "=" in part}
        if "blobendpoint" in keys and "fileendpoint" not in keys:
            raise ValueError("the storage connection string names a BlobEndpoint but no FileEndpoint")
        return ""  # the connection string says it all
    if not config.storage_account_url:
        raise ValueError("the workspace has no storage account URL")
    return file_endpoint(config.storage_account_url)


class WorkspaceFiles:
    """Opened per operation; where the Files service cannot be found, every call raises ValueError
    saying why, so a plan can report it instead of failing."""

    def __init__(self, config: WorkspaceConfig) -> None:
        self._client: ShareServiceClient | None = None
        self._credential: Any = None
        self._problem = ""
        try:
            endpoint = _endpoint(config)
        except ValueError as error:
            self._problem = str(error)
            return
        if config.storage_connection_string:
            self._client = ShareServiceClient.from_connection_string(config.storage_connection_string, **file_share_retry())
        else:
            self._credential = _credential()
            self._client = ShareServiceClient(endpoint, credential=self._credential, token_intent="backup", **file_share_retry())

    @property
    def _service(self) -> ShareServiceClient:
        if self._client is None:
            raise ValueError(self._problem)
        return self._client

    async def walk(self, share: str, folder: str) -> tuple[list[BlobInfo], list[str]]:
        files: list[BlobInfo] = []
        directories: list[str] = []
        pending = [folder.strip("/")]
        client = self._service.get_share_client(share)
        while pending:
            path = pending.pop()
            try:
                listing = client.get_directory_client(path).list_directories_and_files(include=["etag", "timestamps"])
                entries = [entry async for entry in listing]
            except ResourceNotFoundError:  # no such folder (or share): nothing there
                continue
            directories.append(path)
            for entry in entries:
                child = f"{path}/{entry.name}"
                if entry["is_directory"]:
                    pending.append(child)
                else:
                    files.append(BlobInfo(share, child, entry["size"] or 0, getattr(entry, "last_modified", None), getattr(entry, "etag", None)))
        return files, directories

    async def delete_files(self, share: str, etags: dict[str, str | None]) -> dict[str, ItemResult]:
        client = self._service.get_share_client(share)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def delete(path: str, etag: str | None) -> ItemResult:
            async with gate:
                file = client.get_file_client(path)
                if etag:
                    changed = await _changed(file, etag)
                    if changed is not None:
                        return changed
                return await _outcome(file.delete_file)

        outcomes = await asyncio.gather(*(delete(path, etag) for path, etag in etags.items()))
        return dict(zip(etags, outcomes, strict=True))

    async def delete_directory(self, share: str, path: str) -> ItemResult:
        result = await _outcome(self._service.get_share_client(share).get_directory_client(path).delete_directory)
        if result.reason == "DirectoryNotEmpty":  # something arrived after the plan: it stays, and so does its folder
            return ItemResult(Status.RETAINED, "holds files that appeared after the plan; they were left alone", result.azure_request_id)
        return result

    async def read_file(self, share: str, path: str) -> AsyncIterator[bytes]:
        if unaddressable(path):
            raise Unaddressable(path)
        try:
            downloader = await self._service.get_share_client(share).get_file_client(path).download_file()
        except ResourceNotFoundError as error:
            raise Gone(path) from error
        async for chunk in downloader.chunks():
            yield chunk

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._credential is not None:
            await self._credential.close()

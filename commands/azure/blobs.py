"""Blob storage of one workspace on azure-storage-blob.

Deletes go either way the caller asks: the sync client's blob batch (256 deletes a request), run off
the event loop because Azurite answers the async client's batch with 400, or single requests on the
async client. Reads and writes stream with the async client so a large blob never sits in memory whole.
"""

from __future__ import annotations

import asyncio
import base64
from collections import deque
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

from commands.azure.config import USER_DELEGATION_LIMIT, WorkspaceConfig
from commands.azure.door import (
    CHANGED_REASON,
    EXPORT_CHANGED,
    UNADDRESSABLE,
    BlobInfo,
    Copied,
    DeleteMethod,
    Gone,
    ItemResult,
    Retention,
    Status,
    Unaddressable,
    unaddressable,
)
from commands.azure.retry import storage_retry

BATCH_SIZE = 256  # the Blob service's limit per batch request
BATCHES_AT_ONCE = 4  # batch requests of one call in flight (each in a thread: the sync client's)
BATCH_LEAST = 64  # a call of fewer blobs than this many a request is not spread: a few deletes are one round trip
SINGLES_AT_ONCE = 16  # single delete requests of one call in flight
CHUNK = 4 * 1024 * 1024
# Transfers in 4 MiB pieces (the SDK's defaults are 32 MiB single gets and puts, 4 MiB chunks and
# blocks): a download or upload in flight holds a few MiB, not tens, so an export's memory stays flat.
TRANSFER_SIZES = {
    "max_single_get_size": CHUNK,
    "max_chunk_get_size": CHUNK,
    "max_single_put_size": CHUNK,
    "max_block_size": CHUNK,
}
RANGES_AHEAD = 2  # ranged reads of one big blob in flight (each holds a CHUNK until it is zipped)
# A copy's source is named to the service by a read-only SAS of its own (the one way Copy Blob
# reads a source under Shared Key and Entra ID alike). Sources signed within half of this share
# one expiry, so that with Entra ID one user-delegation key signs them all.
COPY_SOURCE_LIFETIME = timedelta(hours=24)
COPY_POLL = 0.5  # seconds between looks at a copy the service still has pending
LINK_SKEW = timedelta(minutes=5)  # links start this long ago: clocks differ


def _credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class WorkspaceBlobs:
    def __init__(
        self, config: WorkspaceConfig, account_url: str | None = None, client_kwargs: dict[str, Any] | None = None
    ) -> None:
        """`client_kwargs` go to every storage client (the bot adds its measuring policy there)."""
        self.config = config
        extra = client_kwargs or {}
        sync_options = {**storage_retry(asynchronous=False), **TRANSFER_SIZES, **extra}
        async_options = {**storage_retry(asynchronous=True), **TRANSFER_SIZES, **extra}
        if config.storage_connection_string:
            self._sync = BlobServiceClient.from_connection_string(config.storage_connection_string, **sync_options)
            self._async = AsyncBlobServiceClient.from_connection_string(config.storage_connection_string, **async_options)
            self._account_key: str | None = self._sync.credential.account_key
        else:
            url = account_url or config.storage_account_url
            if not url:
                raise ValueError("the workspace has no storage account URL")
            self._sync = BlobServiceClient(url, credential=_credential(), **sync_options)
            self._async = AsyncBlobServiceClient(url, credential=_async_credential(), **async_options)
            self._account_key = None
        self._delegation: tuple[Any, datetime] | None = None  # a user-delegation key and its expiry
        self._source_until: datetime | None = None

    @property
    def account_name(self) -> str:
        """The storage account this door reaches (from the connection string or the URL)."""
        return str(self._sync.account_name)

    @property
    def url(self) -> str:
        """The blob endpoint this door reaches."""
        return str(self._sync.url)

    async def probe(self, container: str) -> None:
        """One harmless read (a page of one blob name), tried once: raises ResourceNotFoundError when
        the container is missing, and the service's error when the identity may not list it."""
        client = self._async.get_container_client(container)
        async for _ in client.list_blobs(results_per_page=1, retry_total=0):
            break

    async def ensure_container(self, container: str, **options: Any) -> bool:
        """Create the container unless it exists; True when it was created."""
        try:
            await self._async.get_container_client(container).create_container(**options)
        except ResourceExistsError:
            return False
        return True

    async def list_blobs(self, container: str, prefix: str) -> list[BlobInfo]:
        client = self._async.get_container_client(container)
        try:
            return [
                BlobInfo(container, blob.name, blob.size or 0, blob.last_modified, blob.etag)
                async for blob in client.list_blobs(name_starts_with=prefix)
            ]
        except ResourceNotFoundError:
            return []

    async def delete_blobs(
        self, container: str, etags: dict[str, str | None], method: DeleteMethod = DeleteMethod.BATCH
    ) -> dict[str, ItemResult]:
        """Batches: the blobs spread over up to BATCHES_AT_ONCE batch requests in flight, none over
        BATCH_SIZE nor, unless there are fewer, under BATCH_LEAST. Singles: SINGLES_AT_ONCE requests in flight. Either way each delete carries
        If-Match, and each answer means the same (`_outcome`)."""
        refused = {name: ItemResult(Status.FAILED, UNADDRESSABLE) for name in etags if unaddressable(name)}
        wanted = {name: etag for name, etag in etags.items() if name not in refused}
        if not wanted:
            return refused
        if method is DeleteMethod.SINGLE:
            return refused | await self._delete_singles(container, wanted)
        names = list(wanted)
        size = min(BATCH_SIZE, max(BATCH_LEAST, -(-len(names) // BATCHES_AT_ONCE)))
        batches = [{name: wanted[name] for name in names[i : i + size]} for i in range(0, len(names), size)]
        gate = asyncio.Semaphore(BATCHES_AT_ONCE)

        async def send(batch: dict[str, str | None]) -> dict[str, ItemResult]:
            async with gate:
                return await asyncio.to_thread(self._delete_batch, container, batch)

        results = dict(refused)
        for outcome in await asyncio.gather(*(send(batch) for batch in batches)):
            results.update(outcome)
        return results

    def _delete_batch(self, container: str, etags: dict[str, str | None]) -> dict[str, ItemResult]:
        client = self._sync.get_container_client(container)
        deletes = [{"name": name, **_condition(etag)} for name, etag in etags.items()]
        try:
            # A blob with snapshots cannot be deleted without them (409 SnapshotsPresent).
            responses = client.delete_blobs(*deletes, raise_on_any_failure=False, delete_snapshots="include")
        except ResourceNotFoundError:
            return {name: ItemResult(Status.ALREADY_ABSENT, "container not found") for name in etags}
        results = {}
        for name, response in zip(etags, responses, strict=True):
            there = client.get_blob_client(name).exists() if response.status_code == 412 else None
            results[name] = _outcome(response.status_code, response.headers, there)
        return results

    async def _delete_singles(self, container: str, etags: dict[str, str | None]) -> dict[str, ItemResult]:
        client = self._async.get_container_client(container)
        gate = asyncio.Semaphore(SINGLES_AT_ONCE)

        async def one(name: str, etag: str | None) -> ItemResult:
            async with gate:
                answer: dict[str, str] = {}  # the response's headers, for its request id
                try:
                    await client.delete_blob(
                        name, delete_snapshots="include", cls=lambda _response, _body, headers: answer.update(headers),
                        **_condition(etag),
                    )
                    return _outcome(200, answer)
                except HttpResponseError as error:
                    status, headers = error.status_code or 0, getattr(error.response, "headers", {})
                there = await client.get_blob_client(name).exists() if status == 412 else None
                return _outcome(status, headers, there)

        tasks = {name: asyncio.ensure_future(one(name, etag)) for name, etag in etags.items()}
        try:
            await asyncio.gather(*tasks.values())
        finally:  # a connection failed past its retries: the step fails whole, and the rest are not sent
            for task in tasks.values():
                task.cancel()
        return {name: task.result() for name, task in tasks.items()}

    async def read_blob(self, container: str, name: str) -> AsyncIterator[bytes]:
        if unaddressable(name):
            raise Unaddressable(name)
        blob = self._async.get_blob_client(container, name)
        try:
            downloader = await blob.download_blob()
        except ResourceNotFoundError as error:
            raise Gone(name) from error
        first = await downloader.read(CHUNK)  # the first answer's bytes: no second request
        if first:
            yield first
        # The SDK reads the rest one chunk at a time: a big blob goes a few ranges at once instead.
        async for chunk in _ranges(blob, downloader.properties.etag, len(first), downloader.size):
            yield chunk

    async def write_blob(self, container: str, name: str, chunks: AsyncIterator[bytes]) -> int:
        await self.ensure_container(container)
        blob = self._async.get_container_client(container).get_blob_client(name)
        total = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal total
            async for chunk in chunks:
                total += len(chunk)
                yield chunk

        await blob.upload_blob(counted(), overwrite=True, max_concurrency=2)
        return total

    async def read_link(self, container: str, name: str, expiry: timedelta) -> str:
        """A read-only link that lapses after `expiry`; HTTPS-only wherever the account is HTTPS."""
        blob = self._sync.get_blob_client(container, name)
        return f"{blob.url}?{await self._sas(container, name, BlobSasPermissions(read=True), datetime.now(UTC) + expiry)}"

    async def container_link(self, container: str, expiry: timedelta) -> str:
        """Read and list, on this one container: a container SAS reaches no other container."""
        client = self._sync.get_container_client(container)
        permission = ContainerSasPermissions(read=True, list=True)
        return f"{client.url}?{await self._sas(container, None, permission, datetime.now(UTC) + expiry)}"

    async def _sas(self, container: str, name: str | None, permission: Any, end: datetime) -> str:
        """A SAS for one blob (`name`) or one container (None), signed with the account key, else
        with a user-delegation key (Entra ID)."""
        start = datetime.now(UTC) - LINK_SKEW
        protocol = "https" if self.url.startswith("https://") else "https,http"
        account = self.account_name
        if self._account_key:
            signer: dict[str, Any] = {"account_key": self._account_key}
        else:
            if end - datetime.now(UTC) > USER_DELEGATION_LIMIT:
                raise ValueError(f"a user-delegation link lives at most {USER_DELEGATION_LIMIT.days} days")
            signer = {"user_delegation_key": await self._delegation_key(start, end)}
        options = {"permission": permission, "start": start, "expiry": end, "protocol": protocol, **signer}
        if name is None:
            return str(generate_container_sas(account, container, **options))
        return str(generate_blob_sas(account, container, name, **options))

    async def _delegation_key(self, start: datetime, end: datetime) -> Any:
        """A user-delegation key that signs until `end`: the last one while it does."""
        if self._delegation is None or self._delegation[1] < end:
            key = await asyncio.to_thread(self._sync.get_user_delegation_key, start, end)
            self._delegation = (key, end)
        return self._delegation[0]

    def _source_expiry(self) -> datetime:
        now = datetime.now(UTC)
        if self._source_until is None or self._source_until - now < COPY_SOURCE_LIFETIME / 2:
            self._source_until = now + COPY_SOURCE_LIFETIME
        return self._source_until

    async def copy_blob(self, source: tuple[str, str], etag: str | None, container: str, name: str) -> Copied:
        source_container, source_name = source
        if unaddressable(source_name) or unaddressable(name):
            return Copied(ItemResult(Status.FAILED, UNADDRESSABLE))
        origin = self._sync.get_blob_client(source_container, source_name)
        signed = await self._sas(source_container, source_name, BlobSasPermissions(read=True), self._source_expiry())
        target = self._async.get_blob_client(container, name)
        # Copy Blob (asynchronous on the service's side, and for any size; Copy Blob From URL
        # stops at 256 MiB). x-ms-source-if-match: a source rewritten since the plan is refused.
        copy = partial(target.start_copy_from_url, f"{origin.url}?{signed}")
        try:
            started = await (copy(source_etag=etag, source_match_condition=MatchConditions.IfNotModified) if etag else copy())
        except (ResourceModifiedError, ResourceNotFoundError) as error:
            # 412 is a rewritten source; 404 may be a source gone, or one the service could not
            # read (CannotVerifyCopySource): only a look at the source tells them apart.
            request_id = _request_id(error)
            if not await self._async.get_blob_client(source_container, source_name).exists():
                return Copied(ItemResult(Status.ALREADY_ABSENT, "gone before its turn: listed in the manifest as missing", request_id))
            if isinstance(error, ResourceModifiedError):
                return Copied(ItemResult(Status.CHANGED, EXPORT_CHANGED, request_id))
            code = getattr(error, "error_code", None) or "HTTP 404"
            return Copied(ItemResult(Status.FAILED, f"the storage service could not copy it ({code})", request_id))
        request_id = str(started.get("request_id") or "") or None
        properties = await target.get_blob_properties()
        while properties.copy.status == "pending":  # within one account the service is mostly done at once
            await asyncio.sleep(COPY_POLL)
            properties = await target.get_blob_properties()
        if properties.copy.status != "success":
            why = properties.copy.status_description or properties.copy.status
            return Copied(ItemResult(Status.FAILED, f"the storage service's copy ended {why}", request_id))
        md5 = properties.content_settings.content_md5
        return Copied(ItemResult(Status.EXPORTED, azure_request_id=request_id), properties.size, base64.b64encode(md5).decode() if md5 else None)

    async def list_containers(self, prefix: str) -> list[tuple[str, datetime | None]]:
        return [(c.name, c.last_modified) async for c in self._async.list_containers(name_starts_with=prefix)]

    async def delete_container(self, container: str) -> ItemResult:
        """Delete a whole container: its blobs go with it, and every link to it stops working."""
        try:
            await self._async.get_container_client(container).delete_container()
        except ResourceNotFoundError:
            return ItemResult(Status.ALREADY_ABSENT)
        return ItemResult(Status.DELETED)

    async def retention(self, containers: list[str]) -> Retention:
        """Blob soft delete from the service properties, legal holds and immutability from each
        container's properties: the data plane's view (versioning and container soft delete are
        settings of the management plane, which this door does not reach)."""
        service = await self._async.get_service_properties()
        policy = service.get("delete_retention_policy")
        holds, guarded = {}, {}
        for container in sorted(set(containers)):
            try:
                properties = await self._async.get_container_client(container).get_container_properties()
            except ResourceNotFoundError:
                continue
            if properties.has_legal_hold:
                holds[container] = f"legal hold on container `{container}`"
            if properties.has_immutability_policy:
                guarded[container] = f"container `{container}` has a time-based immutability policy: files younger than its period cannot be deleted"
            elif getattr(properties, "immutable_storage_with_versioning_enabled", None):
                guarded[container] = f"container `{container}` has version-level immutability: files under a policy or hold cannot be deleted"
        days = policy.days if policy is not None and policy.enabled else None
        return Retention(days, holds, guarded)

    async def close(self) -> None:
        await self._async.close()
        self._sync.close()


def _condition(etag: str | None) -> dict[str, Any]:
    """If-Match the planned ETag: the service refuses the delete (412) if the blob was rewritten."""
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}


def _outcome(status: int, headers: Mapping[str, str], there: bool | None = None) -> ItemResult:
    """What the answer to one delete means, whether it came alone or as a batch's sub-response.
    `there`, asked after a 412 only: whether the blob still exists."""
    request_id = headers.get("x-ms-request-id")
    if status in (200, 202):
        return ItemResult(Status.DELETED, azure_request_id=request_id)
    if status == 404:
        missing = "container not found" if headers.get("x-ms-error-code") == "ContainerNotFound" else ""
        return ItemResult(Status.ALREADY_ABSENT, missing, request_id)
    if status == 412:
        # Azure answers If-Match on a blob that is no longer there with 412, not 404: after a
        # resumed job's unrecorded first try, "changed" would be a lie, hence `there`.
        if there:
            return ItemResult(Status.CHANGED, CHANGED_REASON, request_id)
        return ItemResult(Status.ALREADY_ABSENT, "gone before its delete was sent again", request_id)
    return ItemResult(Status.FAILED, headers.get("x-ms-error-code") or f"HTTP {status}", request_id)


async def _ranges(blob: Any, etag: str, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes `start`..`end` of a blob in CHUNK pieces, RANGES_AHEAD requests in flight, in order.
    Each is pinned to `etag` (If-Match), as the SDK's own chunks are: a blob rewritten meanwhile
    fails the read instead of mixing two versions."""

    async def get(offset: int) -> bytes:
        part = await blob.download_blob(
            offset=offset, length=min(CHUNK, end - offset), etag=etag, match_condition=MatchConditions.IfNotModified
        )
        # One answer (a range is at most the single-get size): its bytes as they came, where
        # readall() would copy them through a BytesIO.
        return b"".join([chunk async for chunk in part.chunks()])

    offsets = iter(range(start, end, CHUNK))
    pending = deque(asyncio.ensure_future(get(offset)) for offset in islice(offsets, RANGES_AHEAD))
    try:
        while pending:
            data = await pending.popleft()
            following = next(offsets, None)
            if following is not None:
                pending.append(asyncio.ensure_future(get(following)))
            yield data
    finally:
        for task in pending:
            task.cancel()


def _request_id(error: Any) -> str | None:
    response = getattr(error, "response", None)
    return response.headers.get("x-ms-request-id") if response is not None else None


def _async_credential() -> Any:
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential()

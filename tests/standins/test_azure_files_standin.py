"""The Azure Files stand-in answers the REAL azure-storage-file-share clients (sync and async)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.fileshare import ShareClient, ShareServiceClient
from azure.storage.fileshare.aio import ShareServiceClient as AsyncShareServiceClient

from sandbox.standins.azure.files import AzureFilesStandIn
from sandbox.standins.azurite import connection_string

SHARE = "code-391ff5ac-6576-460f-ba4d-7e03433c68b6"


@pytest_asyncio.fixture
async def files() -> AsyncIterator[AzureFilesStandIn]:
    async with AzureFilesStandIn() as standin:
        yield standin
        assert standin.errors == []


def _connection(files: AzureFilesStandIn, key: str | None = None) -> str:
    text = connection_string(1) + files.connection_setting  # the blob endpoint is never used here
    return text.replace(text.split("AccountKey=", 1)[1].split(";", 1)[0], key) if key else text


@pytest.fixture
def share(files: AzureFilesStandIn) -> ShareClient:
    client = ShareServiceClient.from_connection_string(_connection(files)).get_share_client(SHARE)
    client.create_share()
    return client


def test_directories_files_and_names_with_spaces(files: AzureFilesStandIn, share: ShareClient) -> None:
    share.get_directory_client("Users").create_directory()
    folder = share.get_directory_client("Users/alice smith")
    folder.create_directory()
    folder.upload_file("My Notebook.ipynb", b"{}" * 5000)
    folder.upload_file("empty.txt", b"")

    listed = {(i.name, i["is_directory"], i.get("size")) for i in folder.list_directories_and_files()}
    assert listed == {("My Notebook.ipynb", False, 10000), ("empty.txt", False, 0)}
    assert share.get_file_client("users/ALICE SMITH/my notebook.ipynb").get_file_properties().size == 10000
    assert share.get_file_client("Users/alice smith/empty.txt").download_file().readall() == b""  # 416, then a plain GET
    assert files.files(SHARE)["Users/alice smith/My Notebook.ipynb"] == b"{}" * 5000
    assert files.directories(SHARE) == {"Users", "Users/alice smith"}


def test_listing_pages_with_markers(files: AzureFilesStandIn, share: ShareClient) -> None:
    for name in ("c", "a", "B", "d", "e"):
        files.add_file(SHARE, f"Users/bob/{name}.py", name.encode())

    pages = share.get_directory_client("Users/bob").list_directories_and_files(results_per_page=2).by_page()

    assert [[item.name for item in page] for page in pages] == [["a.py", "B.py"], ["c.py", "d.py"], ["e.py"]]


def test_ranged_download_and_deletes(files: AzureFilesStandIn, share: ShareClient) -> None:
    files.add_file(SHARE, "Users/carol/data.bin", bytes(range(256)) * 40)
    client = share.get_file_client("Users/carol/data.bin")

    assert client.download_file(offset=10, length=5).readall() == bytes(range(10, 15))
    with pytest.raises(ResourceExistsError) as not_empty:
        share.get_directory_client("Users/carol").delete_directory()
    assert not_empty.value.error_code == "DirectoryNotEmpty"
    client.delete_file()
    share.get_directory_client("Users/carol").delete_directory()
    with pytest.raises(ResourceNotFoundError):
        client.delete_file()
    assert files.directories(SHARE) == {"Users"}


def test_a_wrong_key_is_refused(files: AzureFilesStandIn, share: ShareClient) -> None:
    wrong = ShareServiceClient.from_connection_string(_connection(files, key="d3Jvbmc=")).get_share_client(SHARE)

    with pytest.raises(ClientAuthenticationError) as refused:
        list(wrong.list_directories_and_files())
    assert refused.value.error_code == "AuthenticationFailed"
    assert files.calls[-1].status == 403


def test_injected_failure_reaches_the_client(files: AzureFilesStandIn, share: ShareClient) -> None:
    files.add_file(SHARE, "Users/dan/x.txt", b"x")
    files.fail_next("DELETE", r"/x\.txt$", status=409, code="SharingViolation")

    with pytest.raises(HttpResponseError) as failed:
        share.get_file_client("Users/dan/x.txt").delete_file()
    assert failed.value.error_code == "SharingViolation"
    share.get_file_client("Users/dan/x.txt").delete_file()  # only the next one failed


async def test_async_client_streams_and_lists(files: AzureFilesStandIn) -> None:
    files.add_file(SHARE, "Users/erin/big.bin", b"z" * (9 * 1024 * 1024))
    async with AsyncShareServiceClient.from_connection_string(_connection(files)) as service:
        folder = service.get_share_client(SHARE).get_directory_client("Users/erin")
        assert [item.name async for item in folder.list_directories_and_files()] == ["big.bin"]
        downloader = await folder.get_file_client("big.bin").download_file(max_concurrency=1)
        received = b"".join([chunk async for chunk in downloader.chunks()])
    assert received == b"z" * (9 * 1024 * 1024)
    assert [call.method for call in files.calls] == ["GET", "GET"]  # one listing, one read

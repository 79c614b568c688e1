"""Where an asset's files are: datastore URIs and upload URLs mapped onto the workspace's storage.

Assets name their files as `azureml://…/datastores/<store>/paths/<path>` (models, data) or as an
https URL into a blob container (an environment's build context, a component's code). amlbot reaches
only the workspace's own storage account, so anything elsewhere is reported, never guessed at.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from commands.azure.sdk import ResourceNotFoundError
from commands.operations.base import Context
from commands.operations.run_data import ML_API_VERSION, Prefix, blob_items
from commands.plan import PlanItem

URI = re.compile(
    r"azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/[^/]+/)?datastores/(?P<store>[^/]+)/paths/(?P<path>.+)",
    re.IGNORECASE,
)
ARTIFACT_STORE = "workspaceartifactstore"

Located = tuple[str | None, str]  # (container or share, path), or (None, why it cannot be reached)


def within(name: str, path: str) -> bool:
    """Whether blob or file `name` is `path` itself or lies under it."""
    path = path.rstrip("/")
    return name == path or name.startswith(path + "/")


class Stores:
    """Datastores of the workspace -> containers and shares in its own storage account. Each
    datastore is read once per plan."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._datastores: dict[str, Any] = {}
        self._codes: dict[str, Located] = {}

    async def _datastore(self, name: str) -> Any:
        if name not in self._datastores:
            control = self.ctx.control
            self._datastores[name] = await control.call(lambda: control.ml().datastores.get(name))
        return self._datastores[name]

    async def _ours(self, store: str, attribute: str, kind: str) -> Located:
        """The datastore's container or share, if it is of that kind and in the workspace's account."""
        try:
            datastore, home = await self._datastore(store), await self._datastore(ARTIFACT_STORE)
        except ResourceNotFoundError:
            return None, f"datastore `{store}` does not exist"
        where = getattr(datastore, attribute, None)
        if not where:
            return None, f"datastore `{store}` is not {kind}"
        if datastore.account_name != home.account_name:
            return None, f"datastore `{store}` is in storage account `{datastore.account_name}`, not the workspace's"
        return where, ""

    async def container(self, store: str) -> Located:
        if store.lower() == ARTIFACT_STORE:
            return self.ctx.config.artifact_container, ""
        return await self._ours(store, "container_name", "blob storage")

    async def share(self, store: str) -> Located:
        return await self._ours(store, "file_share_name", "a file share")

    async def locate(self, uri: str | None) -> Located:
        """(container, path) of a datastore URI's files; (None, why) when they cannot be reached."""
        match = URI.fullmatch(uri or "")
        if match is None:
            return None, f"`{uri}` names no datastore path"
        container, why = await self.container(match["store"])
        return (container, match["path"]) if container else (None, why)

    async def locate_url(self, url: str | None) -> Located:
        """(container, path) of an https blob URL, as the SDK records uploads; (None, why) elsewhere."""
        parts = urlsplit(url or "")
        account = parts.netloc.split(".", 1)[0]
        container, _, path = unquote(parts.path).lstrip("/").partition("/")
        if parts.scheme != "https" or ".blob." not in parts.netloc or not path:
            return None, f"`{url}` is not a blob in storage"
        home = await self._datastore(ARTIFACT_STORE)
        if account != home.account_name:
            return None, f"they are in storage account `{account}`, not the workspace's"
        return container, path

    async def locate_code(self, code: str | None) -> Located:
        """Where a code asset (the source snapshot of a component or a run) keeps its files."""
        arm_id = (code or "").removeprefix("azureml:")
        if not arm_id.startswith("/subscriptions/"):
            return None, f"its code `{code}` is not an asset of the workspace" if code else "it has no code of its own"
        if arm_id not in self._codes:
            control = self.ctx.control
            document = await control.call(control.document, arm_id, ML_API_VERSION)
            uri = (document or {}).get("properties", {}).get("codeUri")
            self._codes[arm_id] = await self.locate_url(uri) if document else (None, f"its code `{code}` is gone")
        return self._codes[arm_id]


async def files_at(ctx: Context, container: str, path: str) -> tuple[list[PlanItem], Prefix | None]:
    """A folder's blobs (with its prefix, to notice late arrivals), or the one blob a file path names."""
    folder = (container, path.rstrip("/") + "/")
    items = await blob_items(ctx, [folder])
    if items:
        return items, folder
    return [i for i in await blob_items(ctx, [(container, path.rstrip("/"))]) if i.ref == path.rstrip("/")], None

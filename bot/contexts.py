"""The context an operation previews and runs in: one workspace's doors to Azure, and the request."""

from __future__ import annotations

from bot.doors import Doors
from bot.settings import AppConfig
from commands.intents import Action
from commands.operations import touches_storage
from commands.operations.base import Context


class Contexts:
    def __init__(self, config: AppConfig, doors: Doors) -> None:
        self._config = config
        self._doors = doors

    async def bind_storage(self, action: Action, alias: str) -> None:
        """Before an action that reads or deletes blobs: the workspace's own storage account, or
        OperationError. Checked by the job's process too: it may run with another config than the preview."""
        if touches_storage(action):
            await self._doors.bind(alias)

    def for_request(self, alias: str, request_id: str | None, user_email: str | None = None) -> Context:
        """The context of a preview (`request_id` None) or of the job of `request_id`."""
        return Context(
            alias=alias,
            config=self._config.workspaces[alias],
            door=self._doors.get(alias),
            control=self._doors.control(alias),
            directory=self._doors.directory(),
            request_id=request_id,
            link_expiry=self._config.export_link_expiry,
            server_export_over=self._config.server_export_over,
            user_email=user_email,
        )

"""What every operation is: preview(intent) -> Plan, then execute(plan) -> outcomes, resumably."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from commands.azure.config import WorkspaceConfig
from commands.azure.control import WorkspaceControl
from commands.azure.door import ItemResult, ShareDoor, Status, WorkspaceDoor
from commands.azure.graph import Directory
from commands.intents import Action, Intent
from commands.plan import Plan


class OperationError(Exception):
    """The operation cannot be planned or run; the message is for the person who asked."""


@dataclass(frozen=True)
class Context:
    """What an operation works with: one workspace's doors to Azure, and the request it serves."""

    alias: str
    config: WorkspaceConfig
    door: WorkspaceDoor  # blob storage
    control: WorkspaceControl  # Azure ML control plane and the resource manager
    request_id: str | None = None  # the request a job runs for; None while previewing
    link_expiry: timedelta = timedelta(days=7)  # how long an export's download link works
    server_export_over: int = 0  # exports planning more bytes than this run server-side; 0: never
    user_email: str | None = None  # the email Slack has for a mentioned person, if Slack shares it
    files: ShareDoor | None = None  # file shares: opened by the operations that reach notebooks
    directory: Directory | None = None  # Microsoft Graph: who a person is; None when not set up


class Checkpoint(Protocol):
    """Where an execution records its progress, so a resumed job skips what is done."""

    @property
    def done(self) -> dict[str, ItemResult]:
        """Item key -> outcome already recorded (from an earlier attempt)."""

    async def record(self, results: dict[str, ItemResult]) -> None: ...

    async def progress(self, done: int, total: int, done_bytes: int, total_bytes: int) -> None: ...

    async def cancelled(self) -> bool: ...


@dataclass(frozen=True)
class Execution:
    """What execute() hands back: per-item outcomes and anything to post (an export's link)."""

    results: dict[str, ItemResult]
    extras: dict[str, Any] = field(default_factory=dict)
    stopped_early: bool = False  # cancelled between steps


class Operation(Protocol):
    @property
    def action(self) -> Action: ...  # read-only: a wrapper (retention's StorageTruth) passes its inner one's on

    async def preview(self, intent: Intent, ctx: Context) -> Plan: ...

    async def execute(self, plan: Plan, ctx: Context, checkpoint: Checkpoint) -> Execution: ...


SUCCESS = frozenset({Status.DELETED, Status.ALREADY_ABSENT, Status.EXPORTED, Status.SOFT_DELETED, Status.ARCHIVED})

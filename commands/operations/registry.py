"""The registry: one operation per action. Loaded on first use (see commands.operations)."""

from __future__ import annotations

from commands.intents import Action, Verb
from commands.operations.base import Operation
from commands.operations.cleanup_exports import CleanupExports
from commands.operations.data_assets import DeleteData, ExportData
from commands.operations.experiments import DeleteExperiment, ExportExperiment
from commands.operations.models import DeleteModel, ExportModel
from commands.operations.notebooks import DeleteNotebooks, ExportNotebooks
from commands.operations.resources import CleanupComputes, DeleteCompute, DeleteEndpoint
from commands.operations.retention import StorageTruth
from commands.operations.runs import DeleteRun, ExportRun
from commands.operations.schedules import DeleteSchedule
from commands.operations.server_export import ExportWay
from commands.operations.users import DeleteUser, ExportUser
from commands.operations.workspace_deletion import DeleteWorkspace

_ALL: tuple[Operation, ...] = (
    DeleteRun(),
    ExportRun(),
    CleanupExports(),
    DeleteCompute(),
    DeleteEndpoint(),
    DeleteWorkspace(),
    CleanupComputes(),
    DeleteExperiment(),
    ExportExperiment(),
    DeleteModel(),
    ExportModel(),
    DeleteUser(),
    ExportUser(),
    DeleteData(),
    ExportData(),
    DeleteNotebooks(),
    ExportNotebooks(),
    DeleteSchedule(),
)
# Every deletion plan and receipt says what storage keeps of the files it deletes (retention.py);
# every export plans the way it runs, an archive or server-side copies (server_export.py).
OPERATIONS: dict[Action, Operation] = {
    op.action: StorageTruth(ExportWay(op) if op.action.verb is Verb.EXPORT else op) for op in _ALL
}


"""Plans: exactly what an operation will touch, shown before approval and followed to the letter."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from commands.intents import Action


def canonical_json(value: Any) -> bytes:
    """One byte form per value, so hashes over it are stable across processes and versions."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class ItemKind(StrEnum):
    BLOB = "blob"
    FILE = "file"  # in an Azure Files share (the item's container)
    DIRECTORY = "directory"  # a share's folder, removed once its files are
    RESOURCE = "resource"
    JOB = "job"
    RUN_RECORD = "run_record"  # a run's run-history record (ref: the run id): exported, never deleted alone
    MODEL_VERSION = "model_version"
    DATA_VERSION = "data_version"
    ENVIRONMENT_VERSION = "environment_version"
    COMPONENT_VERSION = "component_version"
    SCHEDULE = "schedule"


@dataclass(frozen=True, slots=True)  # slots: a plan may hold 100 000 of these
class PlanItem:
    kind: ItemKind
    ref: str  # blob name, file or folder path, or an ARM resource id
    size: int | None = None  # bytes, for blobs and files
    container: str | None = None  # for blobs (the container) and files and folders (the share)
    etag: str | None = None  # a blob's or file's ETag when planned: deleted only while it still has it

    @property
    def key(self) -> str:
        """Unique within a plan; progress and receipts are keyed by it."""
        return f"{self.kind.value}:{self.container}/{self.ref}" if self.container else f"{self.kind.value}:{self.ref}"


SERVER_SIDE = "server-side"  # notes["export"] of an export the storage service copies (operations.server_export)


def _item_dict(item: PlanItem) -> dict[str, Any]:
    """An item's stored form. Without an ETag the key is left out, so plans stored before ETags
    were planned keep their hash."""
    # Field by field: dataclasses.asdict deep-copies through every field, ~50× slower on a big plan.
    data: dict[str, Any] = {"kind": item.kind.value, "ref": item.ref, "size": item.size, "container": item.container}
    if item.etag is not None:
        data["etag"] = item.etag
    return data


@dataclass(frozen=True)
class Plan:
    action: Action
    workspace: str  # alias
    target: str  # what the intent named, for people to read
    items: tuple[PlanItem, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(item.size or 0 for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": str(self.action),
            "workspace": self.workspace,
            "target": self.target,
            "items": [_item_dict(item) for item in self.items],
            "warnings": list(self.warnings),
            "notes": copy.deepcopy(self.notes),  # as asdict did: the caller's dict is its own
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            action=Action.parse(data["action"]),
            workspace=data["workspace"],
            target=data["target"],
            items=tuple(
                PlanItem(
                    kind=ItemKind(item["kind"]),
                    ref=item["ref"],
                    size=item.get("size"),
                    container=item.get("container"),
                    etag=item.get("etag"),
                )
                for item in data["items"]
            ),
            warnings=tuple(data.get("warnings", ())),
            notes=dict(data.get("notes", {})),
        )

    @property
    def server_side(self) -> bool:
        """An export planned to run as storage copies, not as a zip through amlbot."""
        return self.notes.get("export") == SERVER_SIDE

    @property
    def hash(self) -> str:
        return hash_of(self.to_dict())


def hash_of(stored: dict[str, Any]) -> str:
    """The hash of a plan's stored form (`Plan.to_dict`), what approvers see and the worker checks."""
    return "sha256:" + hashlib.sha256(canonical_json(stored)).hexdigest()

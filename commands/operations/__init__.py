"""One operation per action; the registry the bot looks actions up in.

The operations, and the Azure storage SDKs and archive code they import, load on first use: the
bot imports this package (and `base` for its types) at start, and starting must not wait for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from commands.intents import Action, Kind

if TYPE_CHECKING:
    from commands.operations.base import Operation


def __getattr__(name: str) -> Any:
    if name == "OPERATIONS":  # `from commands.operations import OPERATIONS` loads the registry
        from commands.operations.registry import OPERATIONS

        return OPERATIONS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def operation_for(action: Action) -> Operation | None:
    from commands.operations.registry import OPERATIONS

    return OPERATIONS.get(action)


# Kinds of action that read or delete blobs in the workspace's storage account.
STORAGE_KINDS = frozenset({Kind.RUN, Kind.EXPERIMENT, Kind.MODEL, Kind.DATA, Kind.USER, Kind.NOTEBOOKS, Kind.EXPORTS})


def touches_storage(action: Action) -> bool:
    return action.kind in STORAGE_KINDS

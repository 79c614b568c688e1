"""Typed commands: what a line of `/aml …` text means, independent of Slack."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class Verb(StrEnum):
    EXPORT = "export"
    DELETE = "delete"
    CLEANUP = "cleanup"


class Kind(StrEnum):
    RUN = "run"
    EXPERIMENT = "experiment"
    MODEL = "model"
    DATA = "data"  # a data asset
    NOTEBOOKS = "notebooks"  # a person's Studio notebooks and files
    SCHEDULE = "schedule"
    USER = "user"
    COMPUTE = "compute"
    ENDPOINT = "endpoint"
    WORKSPACE = "workspace"
    COMPUTES = "computes"
    EXPORTS = "exports"


# Which kinds each verb accepts, in the order `help` lists them.
KINDS_BY_VERB: dict[Verb, tuple[Kind, ...]] = {
    Verb.EXPORT: (Kind.RUN, Kind.EXPERIMENT, Kind.MODEL, Kind.DATA, Kind.NOTEBOOKS, Kind.USER),
    Verb.DELETE: (
        Kind.RUN,
        Kind.EXPERIMENT,
        Kind.MODEL,
        Kind.DATA,
        Kind.NOTEBOOKS,
        Kind.SCHEDULE,
        Kind.COMPUTE,
        Kind.ENDPOINT,
        Kind.WORKSPACE,
        Kind.USER,
    ),
    Verb.CLEANUP: (Kind.COMPUTES, Kind.EXPORTS),
}


DESTRUCTIVE_VERBS = frozenset({Verb.DELETE, Verb.CLEANUP})


@dataclass(frozen=True)
class Action:
    """What a request does, e.g. `delete run`: the policy's key, and its stored form as text."""

    verb: Verb
    kind: Kind

    @classmethod
    def parse(cls, text: str) -> Action:
        """The action written as `verb kind`; ValueError for anything else."""
        verb, _, kind = text.partition(" ")
        action = cls(Verb(verb), Kind(kind))
        if kind not in KINDS_BY_VERB[action.verb]:
            raise ValueError(f"no action {text!r}")
        return action

    def __str__(self) -> str:
        return f"{self.verb.value} {self.kind.value}"

    @property
    def destructive(self) -> bool:
        return self.verb in DESTRUCTIVE_VERBS


# Every action, in the order `help` lists them.
ALL_ACTIONS = tuple(Action(verb, kind) for verb, kinds in KINDS_BY_VERB.items() for kind in kinds)


class UserRefType(StrEnum):
    SLACK = "slack"  # a Slack mention: <@U123ABC>
    SLACK_NAME = "slack_name"  # `@alice` as plain text (no escaping): looked up among the workspace's people
    EMAIL = "email"
    OBJECT_ID = "object_id"  # an Entra ID (AAD) object id, a GUID


@dataclass(frozen=True)
class UserRef:
    type: UserRefType
    value: str

    def __str__(self) -> str:
        match self.type:
            case UserRefType.SLACK:
                return f"<@{self.value}>"
            case UserRefType.SLACK_NAME:
                return f"@{self.value}"
        return self.value


@dataclass(frozen=True)
class Intent:
    """A request for work on Azure: export, delete or clean up something in a workspace."""

    verb: Verb
    kind: Kind
    # run id, experiment, model, data asset, schedule, compute or endpoint name, or workspace alias;
    # None for cleanups and for the intents about a person (see `user`).
    target: str | None = None
    version: str | None = None  # model or data asset version; None means every version
    user: UserRef | None = None  # user and notebooks intents
    workspace: str | None = None  # alias from the config; None means the channel's default
    with_dependents: bool = False
    purge: bool = False
    include_shared: bool = False  # delete data: also files that other assets or runs use
    idle: timedelta | None = None
    older_than: timedelta | None = None

    @property
    def action(self) -> Action:
        return Action(self.verb, self.kind)

    @property
    def destructive(self) -> bool:
        return self.action.destructive


@dataclass(frozen=True)
class HelpCommand:
    topic: str | None = None


@dataclass(frozen=True)
class StatusCommand:
    request_id: str


@dataclass(frozen=True)
class CancelCommand:
    request_id: str


@dataclass(frozen=True)
class RevokeCommand:
    """Delete an export's archive, so its download link stops working."""

    request_id: str


@dataclass(frozen=True)
class ListCommand:
    scope: str = "mine"  # "mine" | "pending"


@dataclass(frozen=True)
class FreezeCommand:
    pass


@dataclass(frozen=True)
class UnfreezeCommand:
    pass


Command = (
    Intent
    | HelpCommand
    | StatusCommand
    | CancelCommand
    | RevokeCommand
    | ListCommand
    | FreezeCommand
    | UnfreezeCommand
)

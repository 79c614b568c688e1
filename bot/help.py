"""`/aml help` for one person: what they may run here, grouped by what it does, one line of
description each; and did-you-mean that suggests only those commands. Pure."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from commands.grammar import USAGE
from commands.intents import Action, Verb

DESCRIPTIONS: dict[str, str] = {
    "export run": "a zip of the run's history, logs and outputs, with a SHA-256 manifest",
    "export experiment": "every run of the experiment, in one zip",
    "export model": "the model's versions: their files and metadata",
    "export data": "the data asset's versions: their files and metadata",
    "export notebooks": "a person's Studio notebooks and files",
    "export user": "everything about a person: runs, models, data, notebooks (a data-access request)",
    "delete run": "the run's files, for good; a signed receipt",
    "delete experiment": "every finished run of the experiment and its files; running ones are kept",
    "delete model": "the model's versions and the files no other version uses",
    "delete data": "the data asset's files and versions; files others use are kept unless --include-shared",
    "delete notebooks": "a person's Studio notebooks and files",
    "delete schedule": "disables the schedule, then deletes it",
    "delete compute": "the compute cluster or instance; its running jobs stop",
    "delete endpoint": "the online or batch endpoint and its deployments",
    "delete workspace": "the whole workspace (two approvers); soft unless --purge",
    "delete user": "everything about a person (an erasure request), after a cooling-off",
    "cleanup computes": "clusters idle at zero nodes for that long",
    "cleanup exports": "export archives past their retention",
    "status": "where a request stands",
    "cancel": "withdraw a request, or stop a running one after its current step",
    "revoke": "delete an export's archive, so its download link stops working",
    "list": "your requests, or those waiting for approval",
    "help": "this list, or the usage of one command",
    "freeze": "stop every job from starting",
    "unfreeze": "let jobs start again",
}

_GROUPS = (
    ("Ask for an export (an approver confirms)", Verb.EXPORT),
    ("Ask for a deletion (approvers decide; a receipt for each)", Verb.DELETE),
    ("Clean up", Verb.CLEANUP),
)


def _line(command: str) -> str:
    return f"`{USAGE[command]}` — {DESCRIPTIONS[command]}"


def allowed_commands(actions: Sequence[Action], *, may_cancel: bool, admin: bool) -> list[str]:
    """Every command this person may run here, in the order help lists them."""
    return [*map(str, actions), *_follow(may_cancel), *(["freeze", "unfreeze"] if admin else [])]


def _follow(may_cancel: bool) -> list[str]:
    return ["status", *(["cancel", "revoke"] if may_cancel else []), "list", "help"]


def help_text(actions: Sequence[Action], *, may_cancel: bool, admin: bool) -> str:
    parts = ["*What you can run here*"]
    for title, verb in _GROUPS:
        mine = [str(a) for a in actions if a.verb is verb]
        if mine:
            parts.append(f"*{title}*\n" + "\n".join(_line(a) for a in mine))
    parts.append("*Follow requests*\n" + "\n".join(_line(c) for c in _follow(may_cancel)))
    if admin:
        parts.append("*Admin*\n" + "\n".join(_line(c) for c in ("freeze", "unfreeze")))
    if not actions:
        parts.append("_You may not ask for exports or deletions in this channel; an admin can change the policy._")
    return "\n\n".join(parts)


def did_you_mean(typed: str, allowed: Sequence[str]) -> str | None:
    """A suggestion among the commands this person may run, never one they may not."""
    match = difflib.get_close_matches(typed, list(allowed), n=1, cutoff=0.75)
    if not match:  # `stauts R-…`: the first word alone, against the one-word commands
        match = difflib.get_close_matches(typed.split()[0], [c for c in allowed if " " not in c], n=1, cutoff=0.75)
    return f"Did you mean `{match[0]}`?" if match else None

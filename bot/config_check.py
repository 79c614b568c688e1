"""The config file, checked strictly and explained: each problem at its file, line and column, in
plain words, one a line. Pure: it reads YAML nodes and validation results, never the disk."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from commands.durations import format_duration
from commands.intents import ALL_ACTIONS, Verb

Path = tuple[str | int, ...]

ACTIONS = tuple(str(action) for action in ALL_ACTIONS)
# Every way an action may be written in the policy: one action, every action of a verb, or everything.
ACTION_KEYS = ("*", *(f"{verb.value} *" for verb in Verb), *ACTIONS)
USER_ID = re.compile(r"[UW][A-Z0-9]+")  # W…: Enterprise Grid
GROUP_ID = re.compile(r"S[A-Z0-9]+")
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]+")


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str
    at_key: bool = False  # point at the key itself (an unknown key) rather than at its value


def dotted(path: Path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _suggest(word: str, choices: Sequence[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean `{match[0]}`?" if match else ""


# ---- where: a path in the data -> the line and column in the file ---------------------------------


def locate(root: yaml.Node | None, path: Path, at_key: bool = False) -> tuple[int, int] | None:
    """1-based line and column of the value at `path` (or of its key), as far down as the file has it."""
    node, mark = root, root.start_mark if root is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
            if found is None:
                break
            key, node = found
            mark = key.start_mark if at_key and part == path[-1] else node.start_mark
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    return (mark.line + 1, mark.column + 1) if mark is not None else None


# ---- what: pydantic's findings, in plain words -------------------------------------------------------

_TYPES = {
    "string_type": "expected text",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping (`key: value` lines)",
    "model_type": "expected a mapping (`key: value` lines)",
    "model_attributes_type": "expected a mapping (`key: value` lines)",
    "list_type": "expected a list (`- item` lines, or `[a, b]`)",
    "tuple_type": "expected a list (`- item` lines, or `[a, b]`)",
    "timedelta_type": "expected a duration such as `30m`, `12h`, `7d` or `2w`",
    "timedelta_parsing": "expected a duration such as `30m`, `12h`, `7d` or `2w`",
}


def _model_at(model: type[BaseModel], path: Path) -> type[BaseModel] | None:
    """The model whose keys are valid at `path` (a mapping of models skips its own keys)."""
    i = 0
    while i < len(path):
        field = model.model_fields.get(str(path[i]))
        if field is None:
            return None
        kind: Any = field.annotation
        i += 1
        if get_origin(kind) is dict:
            kind, i = get_args(kind)[1], i + 1
        if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
            return None
        model = kind
    return model


def _words(error: ErrorDetails, root_model: type[BaseModel]) -> Problem:
    path: Path = tuple(error["loc"])
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = _model_at(root_model, path[:-1])
        known = sorted(parent.model_fields) if parent else []
        return Problem(path, f"unknown key `{path[-1]}`.{_suggest(str(path[-1]), known)}", at_key=True)
    if kind == "missing":
        return Problem(path[:-1], f"`{path[-1]}` is required here", at_key=True)
    if kind in ("greater_than_equal", "greater_than"):
        return Problem(path, f"must be at least {ctx.get('ge', ctx.get('gt'))}")
    if kind in _TYPES:
        return Problem(path, _TYPES[kind])
    message = str(error["msg"]).removeprefix("Value error, ")
    # Checks of the whole file name the key they concern first: `key.path: what is wrong`.
    if not path and (lead := re.match(r"([a-z_]+(?:\.[\w-]+)*): (.*)", message, re.S)):
        return Problem(tuple(lead.group(1).split(".")), lead.group(2))
    return Problem(path, message)


def validation_problems(error: ValidationError, root_model: type[BaseModel]) -> list[Problem]:
    return [_words(e, root_model) for e in error.errors()]


# ---- what pydantic cannot know: names that must match, ids of the right shape, sane durations -------


def _actions(policy: Any) -> Iterator[tuple[Path, str]]:
    for key in policy.requesters:
        yield ("policy", "requesters", key), key
    for key in policy.approvals_required:
        yield ("policy", "approvals_required", key), key
    for i, key in enumerate(policy.self_approval):
        yield ("policy", "self_approval", i), key
    for i, key in enumerate(policy.cooling_off_actions):
        yield ("policy", "cooling_off_actions", i), key


def _rules(policy: Any) -> Iterator[tuple[Path, Any]]:
    for key, rule in policy.requesters.items():
        yield ("policy", "requesters", key), rule
    yield ("policy", "approvers"), policy.approvers
    yield ("policy", "oncall"), policy.oncall


def _id_problem(path: Path, value: str, want: str) -> Problem | None:
    shapes = {"user": USER_ID, "group": GROUP_ID, "channel": CHANNEL_ID}
    if shapes[want].fullmatch(value):
        return None
    for other, shape in shapes.items():
        if other != want and shape.fullmatch(value):
            where = {"user": "`users`", "group": "`groups`", "channel": "`channels`"}[other]
            return Problem(path, f"`{value}` is a Slack {other} id, but this list holds {want} ids: move it under {where}")
    how = {
        "user": "a person's Slack member id, like `U024BE7LH` (`W…` on Enterprise Grid): profile → ⋮ → Copy member ID",
        "group": "a Slack user group id, like `S0614TZR7`: open the group → ⋮ → Copy group ID",
        "channel": "a Slack channel id, like `C024BE91L`: open the channel's details, the id is at the bottom",
    }[want]
    return Problem(path, f"`{value}` is not {how}")


def semantic_problems(config: Any) -> list[Problem]:
    """Problems in a file that parsed: names that match nothing, ids of the wrong shape, durations
    that contradict each other."""
    problems: list[Problem] = []
    policy = config.policy
    for path, action in _actions(policy):
        if action not in ACTION_KEYS:
            problems.append(Problem(
                path, f"`{action}` is not an action.{_suggest(action, ACTION_KEYS)} "
                "Write one like `delete run`, every one of a verb like `export *`, or `*`.", at_key=isinstance(path[-1], str),
            ))
    aliases = sorted(config.workspaces)
    for path, rule in _rules(policy):
        for i, alias in enumerate(rule.workspaces):
            if alias not in config.workspaces:
                problems.append(Problem(
                    (*path, "workspaces", i),
                    f"`{alias}` is not a workspace of this file.{_suggest(alias, aliases)} Workspaces: {', '.join(aliases)}.",
                ))
        for field, want in (("users", "user"), ("groups", "group"), ("channels", "channel")):
            for i, value in enumerate(getattr(rule, field)):
                if problem := _id_problem((*path, field, i), value, want):
                    problems.append(problem)
    for i, value in enumerate(policy.admins):
        if problem := _id_problem(("policy", "admins", i), value, "user"):
            problems.append(problem)
    if policy.approvers_channel and (problem := _id_problem(("policy", "approvers_channel"), policy.approvers_channel, "channel")):
        problems.append(problem)
    for channel in config.channel_defaults:
        if problem := _id_problem(("channel_defaults", channel), channel, "channel"):
            problems.append(Problem(problem.path, problem.message, at_key=True))
    # Only durations the file sets can contradict each other (a default reminder adapts: see the worker).
    if "reminder_before" in policy.model_fields_set and policy.reminder_before >= policy.expiry:
        problems.append(Problem(
            ("policy", "reminder_before"),
            f"{format_duration(policy.reminder_before)} must be shorter than `expiry` ({format_duration(policy.expiry)}): "
            "the reminder would come after the request had expired",
        ))
    return problems


def report(source: str, root: yaml.Node | None, problems: Sequence[Problem]) -> str:
    """One line a problem: `file:line:column: key: what is wrong, and what was expected`."""
    placed = [(locate(root, p.path, p.at_key), p) for p in problems]
    placed.sort(key=lambda pair: pair[0] or (0, 0))  # in the order of the file
    lines = []
    for where, problem in placed:
        at = f"{source}:{where[0]}:{where[1]}" if where else source
        lines.append(f"{at}: {dotted(problem.path)}: {problem.message}")
    return "\n".join(lines)

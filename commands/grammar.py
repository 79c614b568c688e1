"""The `/aml …` grammar: Slack command text <-> typed commands.

Pure: no Slack, Azure or I/O. `parse` turns text into a `Command` or raises `GrammarError`
(never anything else); `render` writes a `Command` back as canonical text that `parse`
maps to an equal command.

Error messages are plain text with Slack mrkdwn backticks around quoted input. Quoted input
is sanitised (no backticks, no control characters) and truncated; escaping Slack's control
characters (&, <, >) for display is the presenter's job, for message, usage and hint alike.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, NoReturn

from commands.durations import (
    EXAMPLES,
    MAX_DURATION,
    DurationError,
    format_duration,
    looks_like_duration,
    parse_duration,
)
from commands.intents import (
    KINDS_BY_VERB,
    CancelCommand,
    Command,
    FreezeCommand,
    HelpCommand,
    Intent,
    Kind,
    ListCommand,
    RevokeCommand,
    StatusCommand,
    UnfreezeCommand,
    UserRef,
    UserRefType,
    Verb,
)

MAX_INPUT = 4000  # characters; Slack allows more, nothing sensible needs it
MAX_QUOTE = 60  # characters of user input quoted back in an error message


class GrammarError(Exception):
    """Text that isn't a valid command, with what would fix it."""

    def __init__(self, message: str, usage: str, hint: str | None = None, guess: str | None = None) -> None:
        super().__init__(message)
        self.message = message  # what is wrong, bad input quoted in backticks
        self.usage = usage  # the usage line(s) for the command the user was attempting
        self.hint = hint  # e.g. "Did you mean `model`?"
        # The command words as typed when they name no command ("delte run"): the caller, who knows
        # what this person may run, makes the did-you-mean.
        self.guess = guess


# --- vocabulary ---------------------------------------------------------------------------

# What the single positional argument of each kind is called, in usage lines and in messages.
_PLACEHOLDER: dict[Kind, str] = {
    Kind.RUN: "<run-id>",
    Kind.EXPERIMENT: "<name>",
    Kind.MODEL: "<name>[:<version>]",
    Kind.DATA: "<name>[:<version>]",
    Kind.NOTEBOOKS: "<@user|email|object-id>",
    Kind.SCHEDULE: "<name>",
    Kind.COMPUTE: "<name>",
    Kind.ENDPOINT: "<name>",
    Kind.WORKSPACE: "<alias>",
    Kind.USER: "<@user|email|object-id>",
}
_WHAT: dict[Kind, str] = {
    Kind.RUN: "a run id",
    Kind.EXPERIMENT: "an experiment name",
    Kind.MODEL: "a model name",
    Kind.DATA: "a data asset name",
    Kind.NOTEBOOKS: "a user",
    Kind.SCHEDULE: "a schedule name",
    Kind.COMPUTE: "a compute name",
    Kind.ENDPOINT: "an endpoint name",
    Kind.WORKSPACE: "a workspace alias",
    Kind.USER: "a user",
}

_VALUE_OPTIONS: dict[str, str] = {
    "--workspace": "<alias>",
    "--idle": "<duration>",
    "--older-than": "<duration>",
}
_FLAG_OPTIONS = ("--with-dependents", "--purge", "--include-shared")
_OPTIONS = (*_VALUE_OPTIONS, *_FLAG_OPTIONS)
# The one action each option other than --workspace belongs to; --workspace suits every intent.
_OPTION_HOME: dict[str, str] = {
    "--with-dependents": "delete workspace",
    "--purge": "delete workspace",
    "--include-shared": "delete data",
    "--idle": "cleanup computes",
    "--older-than": "cleanup exports",
}
_REQUIRED_OPTION: dict[Kind, str] = {Kind.COMPUTES: "--idle", Kind.EXPORTS: "--older-than"}
_VERSIONED = (Kind.MODEL, Kind.DATA)  # targets written `<name>[:<version>]`
_PEOPLE = (Kind.USER, Kind.NOTEBOOKS)  # targets that name a person

_LIST_SCOPES = ("mine", "pending")


def _intent_usage(verb: Verb, kind: Kind) -> str:
    words = ["/aml", verb.value, kind.value]
    if kind in _PLACEHOLDER:
        words.append(_PLACEHOLDER[kind])
    if kind in _REQUIRED_OPTION:
        words.append(f"{_REQUIRED_OPTION[kind]} <duration>")
    action = f"{verb} {kind}"
    words += [f"[{flag}]" for flag in _FLAG_OPTIONS if _OPTION_HOME[flag] == action]
    if kind is not Kind.WORKSPACE:  # a workspace's alias already names the workspace
        words.append("[--workspace <alias>]")
    return " ".join(words)


USAGE: dict[str, str] = {
    **{f"{v} {k}": _intent_usage(v, k) for v, kinds in KINDS_BY_VERB.items() for k in kinds},
    "status": "/aml status <request-id>",
    "cancel": "/aml cancel <request-id>",
    "revoke": "/aml revoke <request-id>",
    "list": "/aml list [mine|pending]",
    "freeze": "/aml freeze",
    "unfreeze": "/aml unfreeze",
    "help": "/aml help [<topic>]",
}
_INTENT_VERBS: dict[str, Verb] = {v.value: v for v in Verb}
_ALL_KINDS = frozenset(k.value for k in Kind)
_VERBS = tuple(dict.fromkeys(key.split()[0] for key in USAGE))
_HELP_TOPICS = tuple(dict.fromkeys([*_VERBS, *USAGE]))


def usage(verb: str | None = None) -> str:
    """Usage lines for a verb ("delete"), one action ("delete model"), or everything (None)."""
    if verb is None:
        return "\n".join(USAGE.values())
    topic = " ".join(verb.lower().split())
    lines = [line for key, line in USAGE.items() if key == topic or key.split()[0] == topic]
    if not lines:
        raise ValueError(f"no usage for {verb!r}")
    return "\n".join(lines)


# --- patterns (ASCII only, always fullmatch: `$` would accept a trailing newline) ------------

_NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.\-]{0,254}")
_VERSION = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_ALIAS = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_REQUEST_ID = re.compile(r"[Rr]-[A-Za-z0-9]{8}")
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,31})(?:\|[^<>]*)?>")
# `@alice` as Slack sends it when the command does not escape mentions: a handle or a display name.
_AT_NAME = re.compile(r"@([A-Za-z0-9][A-Za-z0-9._'\-]{0,79})")
# An email or UPN; `#` for a guest's UPN (`jane_fabrikam.com#EXT#@contoso.onmicrosoft.com`).
_EMAIL = re.compile(r"[A-Za-z0-9._%+'#\-]{1,64}@(?:[A-Za-z0-9\-]{1,63}\.)+[A-Za-z]{2,63}")
_GUID = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")

# A token is a run of non-space text; Slack markup `<…>` stays whole even if its label has spaces.
_TOKEN = re.compile(r"(?:<[^<>]*>|[^\s<]|<)+")
# Slack's link markup (auto-linked domains and emails), with an optional label.
_LINK = re.compile(r"<((?ai:https?://|mailto:)[^<>|]*)(?:\|([^<>]*))?>")
# Slack clients and phones "improve" what people type: smart quotes, odd spaces, dashes.
_NORMALISE = str.maketrans(
    {
        "\u00a0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u200b": None,
        "\u200c": None,
        "\u200d": None,
        "\u2060": None,
        "\ufeff": None,
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
    }
)
_QUOTES = "\"'`"


# --- small helpers ----------------------------------------------------------------------------


def _fold(word: str) -> str:
    """Lowercase ASCII words only: `str.lower` maps some non-ASCII letters onto ASCII ones."""
    return word.lower() if word.isascii() else word


def _q(raw: str) -> str:
    """Quote user input for a message: printable, no backticks to break out of, truncated."""
    text = "".join(ch if ch.isprintable() else " " for ch in raw).replace("`", "'")
    if len(text) > MAX_QUOTE:
        text = text[: MAX_QUOTE - 1] + "…"
    return f"`{text}`"


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str | None:
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"Did you mean `{match[0]}`?" if match else None


def _one_of(words: tuple[str, ...] | list[str]) -> str:
    quoted = [f"`{w}`" for w in words]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]


# --- tokens -----------------------------------------------------------------------------------


def _tokenize(text: str) -> list[str]:
    tokens = (_clean_token(t) for t in _TOKEN.findall(text.translate(_NORMALISE)))
    return [t for t in tokens if t]


def _clean_token(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in _QUOTES:
        token = token[1:-1]  # people quote names out of habit; names never contain quotes
    link = _LINK.fullmatch(token)
    if link:  # Slack auto-links things that look like domains or emails; take what was typed
        target, label = link.groups()
        token = target[7:] if target.lower().startswith("mailto:") else (label or target)
    # Slack escapes these three in typed text; mentions and links were handled above.
    token = token.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    if token[:1] in ("\u2014", "\u2013"):  # autocorrect turns `--` into an em or en dash
        token = "--" + token[1:]
    return token


@dataclass
class _Args:
    """Arguments after the verb, options separated out."""

    positionals: list[str] = field(default_factory=list)
    options: dict[str, str | None] = field(default_factory=dict)  # flags map to None
    # The first problem met while splitting, as (message, hint): raised once the caller
    # knows which usage line to attach.
    problem: tuple[str, str | None] | None = None


def _split(tokens: list[str]) -> _Args:
    args = _Args()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith("-"):
            args.positionals.append(token)
            continue
        name, eq, value = token.partition("=")
        name = _fold(name)
        if not eq and name in _VALUE_OPTIONS and i < len(tokens) and not tokens[i].startswith("-"):
            value, i = tokens[i], i + 1
        args.problem = _option_problem(token, name, bool(eq), value, args.options)
        if args.problem:
            return args
        args.options[name] = value if name in _VALUE_OPTIONS else None
    return args


def _option_problem(
    token: str, name: str, has_eq: bool, value: str, seen: dict[str, str | None]
) -> tuple[str, str | None] | None:
    if name not in _OPTIONS:
        if name == "--version":
            return f"Unknown option `{name}`.", "Give a version as `<name>:<version>`."
        return f"Unknown option {_q(name)}.", _did_you_mean(name, _OPTIONS)
    if name in seen:
        return f"`{name}` is given more than once.", None
    if name in _FLAG_OPTIONS:
        return (f"`{name}` doesn't take a value.", None) if has_eq else None
    if not value:
        return f"`{name}` needs a value: `{name} {_VALUE_OPTIONS[name]}`.", None
    return None


def _only_positionals(action: str, tokens: list[str]) -> list[str]:
    """For commands that take no options."""
    args = _split(tokens)
    if args.problem:
        raise GrammarError(args.problem[0], USAGE[action], args.problem[1])
    if args.options:
        name = next(iter(args.options))
        raise GrammarError(f"`{action}` doesn't take `{name}`.", USAGE[action])
    return args.positionals


def _at_most(action: str, positionals: list[str], count: int, hint: str | None = None) -> None:
    if len(positionals) > count:
        extra = " ".join(positionals[count:])
        raise GrammarError(f"Unexpected {_q(extra)} after `{action}`.", USAGE[action], hint)


def _exactly_one(action: str, positionals: list[str], what: str, hint: str | None = None) -> str:
    if not positionals:
        raise GrammarError(f"`{action}` needs {what}.", USAGE[action])
    _at_most(action, positionals, 1, hint)
    return positionals[0]


# --- values -----------------------------------------------------------------------------------


def _name(action: str, kind: Kind, token: str) -> str:
    if _NAME.fullmatch(token):
        return token
    hint = "Only models and data take a `:<version>`." if ":" in token and kind not in _VERSIONED else None
    if token.startswith("<") and token.endswith(">") and not hint:
        hint = "Replace the `<…>` placeholder with a real value."
    if len(token) > 255:
        problem = f"is too long ({len(token)} characters; the limit is 255)"
    else:
        problem = "can only use letters, digits, `_`, `.` and `-`, and can't start with `-`"
    raise GrammarError(f"{_q(token)} isn't {_WHAT[kind]}: it {problem}.", USAGE[action], hint)


def _versioned(action: str, kind: Kind, token: str) -> tuple[str, str | None]:
    name, colon, version = token.partition(":")
    # With no name before the `:`, complain about the whole token: `:3` says more than ``.
    name = _name(action, kind, name or token)
    if not colon:
        return name, None
    if _VERSION.fullmatch(version):
        return name, version
    if version:
        bad = f"{_q(version)} isn't a {kind} version"
    else:
        bad = f"{_q(token)} has an empty version"
    raise GrammarError(
        f"{bad}: use 1-64 letters, digits, `_`, `.` or `-`.",
        USAGE[action],
        f"Leave out `:<version>` to mean every version of `{name}`.",
    )


def _alias(action: str, token: str) -> str:
    alias = _fold(token)
    if _ALIAS.fullmatch(alias):
        return alias
    raise GrammarError(
        f"{_q(token)} isn't a workspace alias: use 1-63 lowercase letters, digits or `-`, "
        "starting with a letter or digit.",
        USAGE[action],
    )


def _user(action: str, token: str) -> UserRef:
    if mention := _MENTION.fullmatch(token):
        return UserRef(UserRefType.SLACK, mention.group(1))
    if at_name := _AT_NAME.fullmatch(token):
        return UserRef(UserRefType.SLACK_NAME, at_name.group(1))
    if len(token) <= 254 and _EMAIL.fullmatch(token):
        return UserRef(UserRefType.EMAIL, token.lower())
    if _GUID.fullmatch(token):
        return UserRef(UserRefType.OBJECT_ID, token.lower())
    raise GrammarError(
        f"{_q(token)} isn't a user I can look up: mention them, "
        "or give their email or Entra object id.",
        USAGE[action],
    )


def _duration(action: str, option: str, token: str) -> timedelta:
    try:
        return parse_duration(token, units="wdhm")
    except DurationError as error:
        if error.problem == "zero":
            raise GrammarError(f"`{option}` must be more than zero.", USAGE[action]) from None
        if error.problem == "too_long":
            limit = format_duration(MAX_DURATION)
            raise GrammarError(
                f"{_q(token)} is too long for `{option}`; the limit is `{limit}`.", USAGE[action]
            ) from None
        raise GrammarError(
            f"{_q(token)} isn't a duration for `{option}`: use a whole number and a unit, "
            f"like {EXAMPLES}.",
            USAGE[action],
        ) from None


def _request_id(action: str, positionals: list[str]) -> str:
    token = _exactly_one(action, positionals, "a request id, like `R-7K2Q9XJ4`")
    if _REQUEST_ID.fullmatch(token):
        return token.upper()
    raise GrammarError(
        f"{_q(token)} isn't a request id: they look like `R-7K2Q9XJ4`.", USAGE[action]
    )


# --- commands ---------------------------------------------------------------------------------


def parse(text: str) -> Command:
    """Parse the text after `/aml`. Raises GrammarError, and nothing else, for bad input."""
    if len(text) > MAX_INPUT:
        raise GrammarError(
            f"That's too long: {len(text)} characters, and the limit is {MAX_INPUT}.", usage()
        )
    tokens = _tokenize(text)
    if not tokens:
        return HelpCommand()
    word, rest = _fold(tokens[0]), tokens[1:]
    if word in _INTENT_VERBS:
        return _parse_intent(_INTENT_VERBS[word], rest)
    if word in _SIMPLE_PARSERS:
        return _SIMPLE_PARSERS[word](rest)
    guess = " ".join(_fold(t) for t in tokens[:2])
    raise GrammarError(f"Unknown command {_q(tokens[0])}.", usage(), _did_you_mean(word, _VERBS), guess)


def _parse_help(tokens: list[str]) -> HelpCommand:
    words = _only_positionals("help", tokens)
    if not words:
        return HelpCommand()
    topic = " ".join(_fold(w) for w in words)
    if topic in _HELP_TOPICS:
        return HelpCommand(topic)
    raise GrammarError(
        f"There's no help on {_q(' '.join(words))}.",
        USAGE["help"],
        _did_you_mean(topic, _HELP_TOPICS),
    )


def _parse_list(tokens: list[str]) -> ListCommand:
    words = _only_positionals("list", tokens)
    _at_most("list", words, 1)
    if not words:
        return ListCommand()
    scope = _fold(words[0])
    if scope in _LIST_SCOPES:
        return ListCommand(scope)
    raise GrammarError(
        f"Unknown list {_q(words[0])}: use {_one_of(_LIST_SCOPES)}.",
        USAGE["list"],
        _did_you_mean(scope, _LIST_SCOPES),
    )


def _parse_status(tokens: list[str]) -> StatusCommand:
    return StatusCommand(_request_id("status", _only_positionals("status", tokens)))


def _parse_cancel(tokens: list[str]) -> CancelCommand:
    return CancelCommand(_request_id("cancel", _only_positionals("cancel", tokens)))


def _parse_revoke(tokens: list[str]) -> RevokeCommand:
    return RevokeCommand(_request_id("revoke", _only_positionals("revoke", tokens)))


def _parse_freeze(tokens: list[str]) -> FreezeCommand:
    _at_most("freeze", _only_positionals("freeze", tokens), 0)
    return FreezeCommand()


def _parse_unfreeze(tokens: list[str]) -> UnfreezeCommand:
    _at_most("unfreeze", _only_positionals("unfreeze", tokens), 0)
    return UnfreezeCommand()


_SIMPLE_PARSERS: dict[str, Callable[[list[str]], Command]] = {
    "help": _parse_help,
    "status": _parse_status,
    "cancel": _parse_cancel,
    "revoke": _parse_revoke,
    "list": _parse_list,
    "freeze": _parse_freeze,
    "unfreeze": _parse_unfreeze,
}


def _parse_intent(verb: Verb, tokens: list[str]) -> Intent:
    args = _split(tokens)
    kinds = KINDS_BY_VERB[verb]
    kind_word = _fold(args.positionals[0]) if args.positionals else None
    kind = next((k for k in kinds if k.value == kind_word), None)
    if args.problem:  # option trouble is reported with the best usage we can tell
        message, hint = args.problem
        raise GrammarError(message, USAGE[f"{verb} {kind}"] if kind else usage(verb), hint)
    if kind is None:
        _bad_kind(verb, args.positionals[0] if args.positionals else None)
    action = f"{verb} {kind}"
    for name in args.options:
        _check_option(action, name)
    intent = _intent_target(verb, kind, args.positionals[1:])
    return _intent_options(intent, args.options)


def _bad_kind(verb: Verb, word: str | None) -> NoReturn:
    kinds = [k.value for k in KINDS_BY_VERB[verb]]
    takes = f"`{verb}` takes {_one_of(kinds)}."
    if word is None:
        raise GrammarError(f"What should I {verb}? {takes}", usage(verb))
    folded = _fold(word)
    if folded in _ALL_KINDS:  # a real kind, just not for this verb
        message = f"`{verb}` doesn't work on `{folded}`. {takes}"
    else:
        message = f"Unknown kind {_q(word)} for `{verb}`. {takes}"
    raise GrammarError(message, usage(verb), _did_you_mean(folded, kinds), f"{verb} {folded}")


def _check_option(action: str, name: str) -> None:
    home = _OPTION_HOME.get(name)
    if home is not None and home != action:
        raise GrammarError(
            f"`{name}` isn't valid for `{action}`: it only goes with `{home}`.", USAGE[action]
        )


def _intent_target(verb: Verb, kind: Kind, positionals: list[str]) -> Intent:
    action = f"{verb} {kind}"
    if kind not in _PLACEHOLDER:  # cleanups: everything is in options
        option = _REQUIRED_OPTION[kind]
        misplaced = bool(positionals) and looks_like_duration(positionals[0])
        hint = f"Did you mean `{option} {positionals[0]}`?" if misplaced else None
        _at_most(action, positionals, 0, hint)
        return Intent(verb, kind)
    spaces = "Names can't contain spaces." if kind not in _PEOPLE else None
    token = _exactly_one(action, positionals, _WHAT[kind], spaces)
    if kind in _PEOPLE:
        return Intent(verb, kind, user=_user(action, token))
    if kind in _VERSIONED:
        name, version = _versioned(action, kind, token)
        return Intent(verb, kind, target=name, version=version)
    if kind is Kind.WORKSPACE:
        alias = _alias(action, token)
        return Intent(verb, kind, target=alias, workspace=alias)
    return Intent(verb, kind, target=_name(action, kind, token))


def _intent_options(intent: Intent, options: dict[str, str | None]) -> Intent:
    action = str(intent.action)
    changes: dict[str, Any] = {  # Intent's fields by name: booleans, a workspace alias, a duration
        "with_dependents": "--with-dependents" in options,
        "purge": "--purge" in options,
        "include_shared": "--include-shared" in options,
    }
    if (raw := options.get("--workspace")) is not None:
        workspace = _alias(action, raw)
        if intent.workspace not in (None, workspace):
            raise GrammarError(
                f"`{action} {intent.target}` already names the workspace, "
                f"so drop {_q('--workspace ' + raw)}.",
                USAGE[action],
            )
        changes["workspace"] = workspace
    required = _REQUIRED_OPTION.get(intent.kind)
    if required is not None:
        raw = options.get(required)
        if raw is None:
            raise GrammarError(
                f"`{action}` needs `{required} <duration>`, like {EXAMPLES}.",
                USAGE[action],
            )
        field_name = required.removeprefix("--").replace("-", "_")
        changes[field_name] = _duration(action, required, raw)
    return replace(intent, **changes)


# --- rendering --------------------------------------------------------------------------------


def render(cmd: Command) -> str:
    """Canonical text for `cmd` (without `/aml`); `parse(render(cmd)) == cmd`.

    Raises ValueError for a command that `parse` could never produce (a bad name, say).
    """
    text = _render(cmd)
    try:
        ok = parse(text) == cmd
    except GrammarError:
        ok = False
    if not ok:
        raise ValueError(f"{cmd!r} can't be written as /aml text")
    return text


def _render(cmd: Command) -> str:
    match cmd:
        case HelpCommand(topic=None):
            return "help"
        case HelpCommand(topic=topic):
            return f"help {topic}"
        case StatusCommand(request_id=rid):
            return f"status {rid}"
        case CancelCommand(request_id=rid):
            return f"cancel {rid}"
        case RevokeCommand(request_id=rid):
            return f"revoke {rid}"
        case ListCommand(scope=scope):
            return f"list {scope}"
        case FreezeCommand():
            return "freeze"
        case UnfreezeCommand():
            return "unfreeze"
        case Intent():
            return _render_intent(cmd)
    raise ValueError(f"not a command: {cmd!r}")


def _render_intent(intent: Intent) -> str:
    words = [intent.verb.value, intent.kind.value]
    if intent.user is not None:
        words.append(str(intent.user))
    elif intent.target is not None:
        version = f":{intent.version}" if intent.version is not None else ""
        words.append(intent.target + version)
    if intent.workspace is not None and intent.kind is not Kind.WORKSPACE:
        words += ["--workspace", intent.workspace]
    if intent.with_dependents:
        words.append("--with-dependents")
    if intent.purge:
        words.append("--purge")
    if intent.include_shared:
        words.append("--include-shared")
    if intent.idle is not None:
        words += ["--idle", format_duration(intent.idle)]
    if intent.older_than is not None:
        words += ["--older-than", format_duration(intent.older_than)]
    return " ".join(words)

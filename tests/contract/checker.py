"""Checks answers of the Azure stand-in against shape fixtures of the real service.

A fixture (``shapes/<area>.<operation>.json``) describes one request amlbot sends and what the real
service answers to it: the method, the path template, the api-versions amlbot uses, and per status
code the headers and the body's shape. Pure functions only: load, match, check.

Shape language (bodies):
  * ``"string"``, ``"integer"``, ``"number"``, ``"boolean"``, ``"object"``, ``"array"``, ``"null"``,
    ``"any"``, ``"=Literal"`` (exactly that string), or ``"@name"`` (a shape defined in
    ``shapes/_common.json``); alternatives joined with ``|`` (``"string|null"``, ``"=AKS|=Kubernetes"``).
    A leading ``?`` lets the field be absent (``"?string|null"``).
  * a JSON object: an object with exactly these fields; ``"$open": true`` also allows fields not
    listed (the real service sends many we do not depend on), ``"*": <shape>`` checks every value of
    a map. A key ``"?x"`` is the same as a value with a leading ``?``.
  * a one-element JSON array ``[<shape>]``: an array whose every item matches.

Headers: ``{"Name": "required" | "absent" | "optional" | {"contains": "..."}}`` (case-insensitive).
Body: a shape, or ``"empty"`` (no body, or the JSON ``null`` the service sends on some 202s).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHAPES = Path(__file__).parent / "shapes"
GRAPH_SHAPES = SHAPES / "graph"  # Microsoft Graph's users API, checked apart from Azure's requests
COMMON = "_common.json"

# Statuses the service may answer any request with (throttling, auth, gateway, conflicts, not found):
# allowed everywhere, with the ARM error body, unless a fixture describes the status itself.
ERROR_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 429, 500, 502, 503, 504})
_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


@dataclass(frozen=True)
class Shape:
    """One fixture: a request and the real service's answers to it."""

    file: str
    operation: str
    method: str
    path: str
    api_versions: tuple[str | None, ...]
    sources: tuple[str, ...]
    responses: dict[int, dict[str, Any]]
    pattern: re.Pattern[str] = field(compare=False)

    @property
    def specificity(self) -> int:
        """Literal characters in the template: the most specific matching fixture wins."""
        return len(re.sub(r"\{[^}:]+\}", "", self.path))

    def example_paths(self) -> list[str]:
        """The template with every placeholder filled, once per alternative of a ``{name:a|b}``
        placeholder (to probe which stand-in routes it covers)."""
        paths = [self.path]
        while any("{" in p for p in paths):
            expanded = []
            for path in paths:
                found = re.search(r"\{([^}:]+)(?::([^}]+))?\}", path)
                if found is None:
                    expanded.append(path)
                    continue
                for choice in (found.group(2) or "x1").split("|"):
                    expanded.append(path[: found.start()] + choice + path[found.end():])
            paths = expanded
        return paths


@dataclass(frozen=True)
class Answer:
    """One request the stand-in answered, as recorded by it."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, None when there was no body
    raw_body: bool  # whether any body bytes were sent

    def describe(self) -> str:
        version = self.query.get("api-version")
        return f"{self.method} {self.path}" + (f" (api-version {version})" if version else "")


def _template_regex(path: str) -> re.Pattern[str]:
    """``{name}`` matches one path segment, ``{name:a|b}`` one of the listed segments."""
    parts = re.split(r"(\{[^}]+\})", path)
    body = "".join(_placeholder(p) if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(body, re.IGNORECASE)


def _placeholder(part: str) -> str:
    _, _, choices = part[1:-1].partition(":")
    return f"(?:{'|'.join(re.escape(c) for c in choices.split('|'))})" if choices else "[^/]+"


def load_shapes(directory: Path = SHAPES) -> tuple[list[Shape], dict[str, Any]]:
    """Every fixture in ``directory`` and the common named shapes."""
    common = json.loads((directory / COMMON).read_text())
    shapes = []
    for file in sorted(directory.glob("*.json")):
        if file.name == COMMON:
            continue
        raw = json.loads(file.read_text())
        request = raw["request"]
        shapes.append(
            Shape(
                file=file.name,
                operation=raw["operation"],
                method=request["method"].upper(),
                path=request["path"],
                api_versions=tuple(request["api_versions"]),
                sources=tuple(raw["source"]) if isinstance(raw["source"], list) else (raw["source"],),
                responses={int(status): spec for status, spec in raw["responses"].items()},
                pattern=_template_regex(request["path"]),
            )
        )
    return shapes, common


def match(shapes: list[Shape], method: str, path: str) -> Shape | None:
    candidates = [s for s in shapes if s.method == method.upper() and s.pattern.fullmatch(path)]
    return max(candidates, key=lambda s: s.specificity, default=None)


def check_answer(answer: Answer, shapes: list[Shape], common: dict[str, Any]) -> list[str]:
    """Every way ``answer`` differs from what the real service answers; empty when it conforms."""
    where = answer.describe()
    shape = match(shapes, answer.method, answer.path)
    if shape is None:
        return [f"{where}: no shape fixture describes this request (add one under tests/contract/shapes)"]
    version = answer.query.get("api-version")
    problems = []
    if version not in shape.api_versions:
        problems.append(f"{where}: api-version {version!r} is not in {shape.file} {list(shape.api_versions)}")
    spec = shape.responses.get(answer.status)
    if spec is None:
        if answer.status not in ERROR_STATUSES:
            allowed = sorted(shape.responses)
            return [*problems, f"{where}: status {answer.status}, but {shape.file} allows {allowed} (or an error)"]
        spec = {"body": "@arm_error"}
    where = f"{where} -> {answer.status} [{shape.file}]"
    problems += _check_headers(where, spec.get("headers", {}), answer.headers)
    body_spec = spec.get("body", "empty")
    if body_spec == "empty":
        if answer.body is not None:
            problems.append(f"{where}: the real service sends no body here, the stand-in sent one")
    elif not answer.raw_body:
        problems.append(f"{where}: the real service sends a body here, the stand-in sent none")
    else:
        problems += [f"{where}: {p}" for p in check_value(answer.body, body_spec, common, "body")]
    return problems


def _check_headers(where: str, spec: dict[str, Any], headers: dict[str, str]) -> list[str]:
    present = {k.lower(): v for k, v in headers.items()}
    problems = []
    for name, rule in spec.items():
        value = present.get(name.lower())
        if rule == "absent" and value is not None:
            problems.append(f"{where}: header {name} is sent, the real service does not send it")
        elif rule == "required" and value is None:
            problems.append(f"{where}: header {name} is missing")
        elif isinstance(rule, dict):
            if value is None:
                problems.append(f"{where}: header {name} is missing")
            elif rule["contains"] not in value:
                problems.append(f"{where}: header {name} is {value!r}, expected it to contain {rule['contains']!r}")
    return problems


def check_value(value: Any, spec: Any, common: dict[str, Any], at: str) -> list[str]:
    """Every way ``value`` differs from ``spec`` (see the module docstring), with its JSON path."""
    if isinstance(spec, str):
        return _check_union(value, spec.lstrip("?"), common, at)
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{at}: expected an array, got {_kind(value)}"]
        return [p for i, item in enumerate(value) for p in check_value(item, spec[0], common, f"{at}[{i}]")]
    if not isinstance(value, dict):
        return [f"{at}: expected an object, got {_kind(value)}"]
    problems = []
    fields = {k.lstrip("?"): (v, k.startswith("?") or (isinstance(v, str) and v.startswith("?")))
              for k, v in spec.items() if k not in ("$open", "*")}
    for name, (field_spec, optional) in fields.items():
        if name not in value:
            if not optional:
                problems.append(f"{at}.{name}: missing (the real service always sends it)")
            continue
        problems += check_value(value[name], field_spec, common, f"{at}.{name}")
    extra = [k for k in value if k not in fields]
    if "*" in spec:
        for key in extra:
            problems += check_value(value[key], spec["*"], common, f"{at}.{key}")
    elif extra and not spec.get("$open"):
        problems.append(f"{at}: fields the real service never sends: {sorted(extra)}")
    return problems


def _check_union(value: Any, spec: str, common: dict[str, Any], at: str) -> list[str]:
    alternatives = spec.split("|")
    failures: list[list[str]] = []
    for alternative in alternatives:
        if alternative.startswith("@"):
            found = check_value(value, common[alternative[1:]], common, at)
        elif alternative == "any" or (alternative == "null" and value is None) or alternative == f"={value}" or (
            alternative in _PRIMITIVES and isinstance(value, _PRIMITIVES[alternative])
            and not (isinstance(value, bool) and alternative in ("integer", "number"))
        ):
            found = []
        else:
            found = [f"{at}: expected {spec}, got {_kind(value)}"]
        if not found:
            return []
        failures.append(found)
    # One alternative: its own precise problems; several: the closest one (fewest problems).
    return min(failures, key=len)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    ) + (f" {value!r}" if isinstance(value, (str, int, float)) and len(repr(value)) < 60 else "")


def answer_of(exchange: Any) -> Answer:
    """An ``Answer`` from a stand-in's ``Exchange`` (method, path, query, status, headers, body bytes)."""
    raw = (exchange.body or b"").strip()
    body: Any = None
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")  # not JSON: reported as a type mismatch
    return Answer(exchange.method, exchange.path, dict(exchange.query), exchange.status, dict(exchange.headers), body,
                  bool(raw))


@functools.cache
def _loaded(directory: Path) -> tuple[list[Shape], dict[str, Any]]:
    return load_shapes(directory)


def violations(exchanges: Iterable[Any], directory: Path = SHAPES) -> list[str]:
    """Every way the stand-in's recorded answers differ from the real service's shapes (those in
    `directory`: `SHAPES` for Azure, `GRAPH_SHAPES` for Microsoft Graph)."""
    shapes, common = _loaded(directory)
    return [problem for exchange in exchanges for problem in check_answer(answer_of(exchange), shapes, common)]

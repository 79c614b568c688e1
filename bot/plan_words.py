"""A plan in the words people think in: runs, models, data assets, notebooks, resources — with
counts and sizes — a one-line headline, and the consequence an approver agrees to. Pure.

Blob names stay in the plan file; a card names the things people recognise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from commands import grammar
from commands.intents import Action, Intent, Kind, UserRefType, Verb
from commands.plan import ItemKind, Plan, PlanItem


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


_PLURAL = {
    "run": "runs", "model": "models", "data asset": "data assets", "environment": "environments",
    "component": "components", "schedule": "schedules", "notebooks": "notebooks", "export archive": "export archives",
    "file": "files", "compute": "computes", "endpoint": "endpoints", "workspace": "workspaces",
    "storage account": "storage accounts", "Key Vault": "Key Vaults", "container registry": "container registries",
    "Application Insights": "Application Insights", "Log Analytics workspace": "Log Analytics workspaces",
    "version": "versions", "record": "records", "resource": "resources",
}
# Groups in the order a card lists them: what people made first, the infrastructure last.
ORDER = (
    "run", "model", "data asset", "environment", "component", "schedule", "notebooks", "export archive", "file",
    "compute", "endpoint", "workspace", "storage account", "Key Vault", "container registry", "Application Insights",
    "Log Analytics workspace", "resource",
)


def count(n: int, noun: str) -> str:
    return f"{n} {noun if n == 1 else _PLURAL.get(noun, noun + 's')}"


_RUN_BLOB = re.compile(r"^(?:ExperimentRun/dcid\.|azureml/|dataset/)([^/]+)/")
_NOTEBOOK = re.compile(r"^Users/([^/]+)")
_VERSIONED = {
    ItemKind.MODEL_VERSION: "model", ItemKind.DATA_VERSION: "data asset",
    ItemKind.ENVIRONMENT_VERSION: "environment", ItemKind.COMPONENT_VERSION: "component",
}
_ARM_TYPES = {
    "workspaces": "workspace", "computes": "compute", "onlineendpoints": "endpoint", "batchendpoints": "endpoint",
    "storageaccounts": "storage account", "vaults": "Key Vault", "registries": "container registry",
    "components": "Application Insights",
}
# What `--with-dependents` deletes, as the headline says it.
DEPENDENT_WORDS = {"storage account": "storage", "Key Vault": "Key Vault", "container registry": "registry",
                   "Application Insights": "Application Insights", "Log Analytics workspace": "Log Analytics workspace"}


@dataclass
class Member:
    """One run, model, notebook folder…: how many of its files and records the plan holds."""

    files: int = 0
    bytes: int = 0
    versions: list[str] = field(default_factory=list)
    kept: int = 0  # items of it the plan keeps (a running job, a shared file)


@dataclass
class Group:
    noun: str
    members: dict[str, Member] = field(default_factory=dict)

    @property
    def files(self) -> int:
        return sum(m.files for m in self.members.values())

    @property
    def bytes(self) -> int:
        return sum(m.bytes for m in self.members.values())


def _arm(ref: str) -> tuple[str, str]:
    parts = ref.strip("/").split("/")
    if len(parts) < 2:
        return "resource", parts[-1]
    if len(parts) > 2 and parts[-3].lower() == "microsoft.operationalinsights":
        return "Log Analytics workspace", parts[-1]
    return _ARM_TYPES.get(parts[-2].lower(), "resource"), parts[-1]


def _place(item: PlanItem, plan: Plan) -> tuple[str, str]:
    """The group and member an item belongs to, as people would file it."""
    match item.kind:
        case ItemKind.BLOB if (run := _RUN_BLOB.match(item.ref)):
            return "run", run.group(1)
        case ItemKind.BLOB if plan.action.kind is Kind.EXPORTS:
            return "export archive", item.ref.split("/")[0]
        case ItemKind.BLOB if plan.action.kind in (Kind.MODEL, Kind.DATA):
            return ("model" if plan.action.kind is Kind.MODEL else "data asset"), plan.target
        case ItemKind.FILE | ItemKind.DIRECTORY:
            person = _NOTEBOOK.match(item.ref)
            return "notebooks", person.group(1) if person else (item.container or "files")
        case ItemKind.JOB:
            return "run", item.ref.rstrip("/").split("/")[-1]
        case ItemKind.SCHEDULE:
            return "schedule", item.ref.rstrip("/").split("/")[-1]
        case ItemKind.RESOURCE:
            return _arm(item.ref)
        case kind if kind in _VERSIONED:
            parts = item.ref.rstrip("/").split("/")
            return _VERSIONED[kind], parts[-3]
    return "file", item.container or "storage"


def groups(plan: Plan) -> list[Group]:
    kept = set(plan.notes.get("retained", {}))
    found: dict[str, Group] = {}
    for item in plan.items:
        noun, name = _place(item, plan)
        member = found.setdefault(noun, Group(noun)).members.setdefault(name, Member())
        if item.kind in (ItemKind.BLOB, ItemKind.FILE):
            member.files += 1
            member.bytes += item.size or 0
        if item.kind in _VERSIONED:
            member.versions.append(item.ref.rstrip("/").split("/")[-1])
        if item.key in kept:
            member.kept += 1
    return sorted(found.values(), key=lambda g: ORDER.index(g.noun) if g.noun in ORDER else len(ORDER))


@dataclass(frozen=True)
class Summary:
    """What the words say of a plan, from one pass over its items: a plan of 100 000 items takes
    seconds to parse and to group, so a render takes its summary (bot.publisher keeps one per request)."""

    action: Action
    workspace: str
    target: str
    items: int
    groups: list[Group]
    warnings: tuple[str, ...]
    retained: int  # items the plan keeps (notes["retained"])
    server_side: bool = False  # an export planned as storage copies (Plan.server_side)

    @property
    def files(self) -> int:
        return sum(g.files for g in self.groups)

    @property
    def bytes(self) -> int:
        return sum(g.bytes for g in self.groups)


def summarize(plan: Plan) -> Summary:
    return Summary(plan.action, plan.workspace, plan.target, len(plan.items), groups(plan), plan.warnings,
                   len(plan.notes.get("retained", {})), plan.server_side)


def files_and_size(files: int, size: int) -> str:
    return f"{count(files, 'file')}, {human_bytes(size)}" if files else ""


def member_line(name: str, member: Member) -> str:
    details = [d for d in (
        ("version " if len(member.versions) == 1 else "versions ") + ", ".join(member.versions) if member.versions else "",
        files_and_size(member.files, member.bytes),
        f"{member.kept} kept" if member.kept else "",
    ) if d]
    return name + (f" ({'; '.join(details)})" if details else "")


def intent_of(text: str | None) -> Intent | None:
    """The stored intent, parsed again (it is stored as canonical `/aml` text)."""
    if not text:
        return None
    try:
        parsed = grammar.parse(text)
    except grammar.GrammarError:
        return None
    return parsed if isinstance(parsed, Intent) else None


def person_name(intent: Intent | None, names: Mapping[str, str]) -> str:
    """The person an intent is about, in plain text: their Slack name when known."""
    if intent is None or intent.user is None:
        return "this person"
    if intent.user.type is UserRefType.SLACK:
        return names.get(intent.user.value, f"Slack user {intent.user.value}")
    return intent.user.value


def _summary(found: list[Group], *, skip: str | None = None) -> str:
    """"5 runs, 2 models, 1 data asset, notebooks"."""
    parts = []
    for group in found:
        if group.noun == skip:
            continue
        parts.append("notebooks" if group.noun == "notebooks" else count(len(group.members), group.noun))
    return ", ".join(parts)


def _dependents(found: list[Group]) -> list[str]:
    """The workspace's dependents that go with it (those the plan keeps are not named)."""
    return [DEPENDENT_WORDS[g.noun] for g in found if g.noun in DEPENDENT_WORDS and any(not m.kept for m in g.members.values())]


def _and(words: list[str]) -> str:
    return ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else "".join(words)


def severe(intent: Intent | None) -> bool:
    """A workspace deletion: everything in it goes, and with --purge it cannot come back."""
    return intent is not None and intent.verb is Verb.DELETE and intent.kind is Kind.WORKSPACE


def headline(plan: Summary, intent: Intent | None, names: Mapping[str, str] | None = None) -> str:
    """One line in plain words: what happens, to what, how much, where."""
    found = plan.groups
    files, size = plan.files, plan.bytes
    where = f"workspace {plan.workspace}"
    if intent is None:
        return " — ".join(p for p in (f"{plan.action} {plan.target}".strip(), files_and_size(files, size), where) if p)
    verb = {Verb.EXPORT: "Export", Verb.DELETE: "Delete", Verb.CLEANUP: "Delete"}[intent.verb]
    target = f"{intent.target}:{intent.version}" if intent.version else (intent.target or "")
    runs = next((len(g.members) for g in found if g.noun == "run"), 0)
    match intent.kind:
        case Kind.WORKSPACE:
            dependents = _dependents(found)
            what = f"workspace {plan.workspace}" + (f" and its {_and(dependents)}" if dependents else "")
            if intent.purge:
                return f"Purge {what} — cannot be undone"
            return f"Delete {what} — the workspace is recoverable for 14 days"
        case Kind.USER:
            verb = "Export" if intent.verb is Verb.EXPORT else "Erase"
            subject = f"everything about {person_name(intent, names or {})} — {_summary(found)}"
        case Kind.NOTEBOOKS:
            subject = f"the notebooks of {person_name(intent, names or {})}"
        case Kind.EXPERIMENT:
            subject = f"experiment {target}: {count(runs, 'run')}"
        case Kind.DATA:
            subject = f"data asset {target}"
        case Kind.COMPUTES:
            subject = f"{count(plan.items, 'idle compute')}"
        case Kind.EXPORTS:
            subject = f"{count(plan.items, 'export archive')} past retention"
        case _:
            subject = f"{intent.kind.value} {target}"
    return " — ".join(p for p in (f"{verb} {subject}", files_and_size(files, size), where) if p)


def amount(plan: Plan) -> str:
    """"21 files of 3 runs", "2 models, 1 schedule": how much of what a set of items is."""
    found = groups(plan)
    files = sum(g.files for g in found)
    things = _summary(found) or count(len(plan.items), "item")
    return f"{count(files, 'file')} of {things}" if files else things


def item_label(item: PlanItem, plan: Plan) -> str:
    """One item as people name it: `run churn-1: outputs/model.pkl`, `model churn`, `compute gpu`."""
    noun, name = _place(item, plan)
    label = f"{noun} {name}" if noun != "notebooks" else f"notebooks of {name}"
    if item.kind in (ItemKind.BLOB, ItemKind.FILE):
        label += ": " + "/".join(item.ref.rstrip("/").split("/")[-2:])
    elif item.kind in _VERSIONED:
        label += ":" + item.ref.rstrip("/").split("/")[-1]
    return label


def export_way(plan: Summary) -> str:
    """How an export will run, as its plan says (the job follows the same note)."""
    if plan.server_side:
        return ("Server-side export: the storage service copies each file, only as planned (its ETag), into a "
                "container of this export's own; amlbot reads none of their bytes. The link is read-only, to that "
                "container alone, for `azcopy`.")
    return "Exported as one zip archive streamed through amlbot, with a SHA-256 manifest."


def consequence(plan: Summary, intent: Intent | None, link_days: int | None = None) -> str:
    """What pressing Approve does, in one or two sentences, for its confirmation dialog."""
    found = plan.groups
    files, size = plan.files, plan.bytes
    things = _summary(found) or count(plan.items, "item")
    if intent is not None and intent.verb is Verb.EXPORT:
        expiry = f", valid {link_days} days" if link_days else ""
        if plan.server_side:
            return (f"Copy {files_and_size(files, size) or things} of {things} inside the storage account into a "
                    f"container of this export's own, with a read-only link for the requester{expiry}.")
        return f"Export {files_and_size(files, size) or things} of {things} into a download link for the requester{expiry}."
    if severe(intent):
        assert intent is not None
        dependents = _dependents(found)
        what = f"workspace {plan.workspace}" + (f" and its {_and(dependents)}" if dependents else "")
        # Dependents may stay recoverable for a while (Key Vault, Log Analytics soft delete): the
        # plan's warnings say which and how long, so never "nothing can be recovered".
        later = "; the card says how long each dependent stays recoverable" if dependents else ""
        if intent.purge:
            return f"Permanently delete {what}, with every run, model and file in it. The workspace cannot be recovered{later}."
        return f"Delete {what}. The workspace can be recovered for 14 days{later}."
    keeping = f" {count(plan.retained, 'item')} are kept." if plan.retained else ""
    if files:
        return f"Permanently delete {count(files, 'file')} ({human_bytes(size)}) of {things}. This cannot be undone.{keeping}"
    return f"Permanently delete {things}. This cannot be undone.{keeping}"

"""`amlbot doctor`: checks the whole set-up, one line per check, with the fix for each failure.

The exit status is 0 only when every check passes. Nothing is changed, except that a missing exports
container is created, as the first export would. Azure rights are shown by harmless reads, one for
each kind of thing the allowed actions touch: a read proves the identity reaches it and may read it,
not that it may delete (only a deletion proves that). Microsoft Graph, where people are looked up,
is checked by reading one user when the policy allows an action on people.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Connection, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot import audit, keys, policy
from bot.doors import Doors
from bot.settings import AppConfig, ConfigError, Settings, load_config
from bot.store import migrations, schema
from bot.store.db import normalise_url, sqlite_file
from commands.azure.config import WorkspaceConfig
from commands.azure.graph import PERMISSION, DirectoryError
from commands.azure.sdk import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from commands.intents import Action, Kind, Verb
from commands.operations import OPERATIONS, touches_storage
from commands.operations.base import OperationError

# The bot scopes manifest.yml asks for (tests/unit/test_manifest.py keeps the two equal); the
# installed image has no manifest to read.
MANIFEST_SCOPES = frozenset(
    {"commands", "chat:write", "files:write", "im:write", "usergroups:read", "users:read", "users:read.email"}
)
DB_TIMEOUT = 5  # seconds to connect to PostgreSQL
# One retry: a check must answer in seconds, not wait out the jobs' back-off (storage reads: none).
CLIENT_KWARGS = {"retry_total": 1}

TOKEN_FIX = (
    "set SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-…): api.slack.com/apps → your app → OAuth & Permissions"
)
APP_TOKEN_FIX = (
    "set SLACK_APP_TOKEN to an app-level token (xapp-…) with the connections:write scope: api.slack.com/apps → "
    "your app → Basic Information → App-Level Tokens; and turn Socket Mode on under Settings → Socket Mode"
)
SIGN_IN_FIX = (
    "amlbot signs in with DefaultAzureCredential: give the process a managed identity or workload identity, "
    "or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET, or run `az login`"
)

# The roles each harmless read stands for (README, "Connect Azure").
ROLES = {
    "storage account": "Reader on the workspace storage account",
    "storage": "Storage Blob Data Contributor on the workspace storage account",
    "exports": "Storage Blob Data Contributor on the workspace storage account",
    "computes": "AzureML Compute Operator on the workspace",
    "endpoints": "AzureML Data Scientist on the workspace",
    "jobs": "AzureML Data Scientist on the workspace",
    "models": "AzureML Data Scientist on the workspace",
    "resource group": "Contributor on the workspace and its resource group",
    "subscription": "Reader on the subscription (to see which workspaces share a dependent)",
    "storage settings": "Reader on the workspace storage account (blob soft delete, legal holds, immutability, versioning)",
    "workspace": "at least Reader on the workspace",
}
# What the actions on each kind of object read first; every export also writes to the exports container.
KIND_READS = {
    "run": ("storage", "jobs"),  # the run's job: its run tree, its outputs, whether it still runs
    "experiment": ("storage", "jobs"),
    "user": ("storage", "jobs"),
    "model": ("storage", "models"),
    "compute": ("computes",),
    "computes": ("computes",),
    "endpoint": ("endpoints",),
    "workspace": ("resource group", "subscription"),
    "exports": ("exports",),
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"
        return text if self.ok else f"{text} — fix: {self.fix}"


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


# ---- configuration and Slack ------------------------------------------------------------------


def check_config(settings: Settings) -> tuple[Check, AppConfig | None]:
    path = settings.amlbot_config
    try:
        config = load_config(path)
    except ConfigError as error:
        return failed("config", str(error), f"correct {path} (AMLBOT_CONFIG); every key is in README.md and config.example.yml"), None
    return passed("config", f"{path}: workspaces {', '.join(sorted(config.workspaces))}"), config


def check_signing_secret(settings: Settings) -> Check:
    if settings.slack_signing_secret:
        return passed("slack signing secret", "set")
    if settings.slack_app_token:
        return passed("slack signing secret", "not needed: Socket Mode (SLACK_APP_TOKEN is set)")
    return failed(
        "slack signing secret", "SLACK_SIGNING_SECRET is not set: every request from Slack would be refused",
        "set it from api.slack.com/apps → your app → Basic Information → App Credentials → Signing Secret",
    )


def granted_scopes(headers: dict[str, Any]) -> frozenset[str] | None:
    """What Slack says the token holds (`x-oauth-scopes`), or None when it did not say."""
    value = next((v for k, v in headers.items() if k.lower() == "x-oauth-scopes"), None)
    if isinstance(value, list):  # some HTTP clients hand headers over as lists
        value = ",".join(value)
    return frozenset(s.strip() for s in value.split(",") if s.strip()) if value is not None else None


async def check_slack(settings: Settings) -> list[Check]:
    if not settings.slack_bot_token:
        return [failed("slack token", "SLACK_BOT_TOKEN is not set", TOKEN_FIX)]
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    try:
        response = await client.auth_test()
    except SlackApiError as error:
        return [failed("slack token", f"auth.test answered {error.response.get('error')}", TOKEN_FIX + " (and reinstall the app if it was revoked)")]
    except (aiohttp.ClientError, TimeoutError) as error:
        return [unreachable("slack token", settings, error)]
    token = passed("slack token", f"bot {response.get('user')} ({response.get('user_id')}) in {response.get('team')} ({response.get('team_id')})")
    return [token, check_scopes(granted_scopes(response.headers))]


def unreachable(name: str, settings: Settings, error: Exception) -> Check:
    return failed(name, f"cannot reach {settings.slack_api_url}: {type(error).__name__}: {error}",
                  "let the bot reach slack.com over HTTPS (proxy, firewall, DNS); SLACK_API_URL must be unset in production")


async def check_app_token(settings: Settings) -> list[Check]:
    """In Socket Mode, the app-level token must open a connection: ask Slack for one, as the bot will
    at start (the URL is single-use and simply left unused)."""
    if not settings.slack_app_token:
        return []  # HTTP mode
    client = AsyncWebClient(base_url=settings.slack_api_url)
    try:
        await client.apps_connections_open(app_token=settings.slack_app_token)
    except SlackApiError as error:
        return [failed("slack app token", f"apps.connections.open answered {error.response.get('error')}", APP_TOKEN_FIX)]
    except (aiohttp.ClientError, TimeoutError) as error:
        return [unreachable("slack app token", settings, error)]
    return [passed("slack app token", "Socket Mode: apps.connections.open gave a connection URL")]


def check_scopes(granted: frozenset[str] | None) -> Check:
    if granted is None:
        return failed("slack scopes", "Slack did not say which scopes the token holds (no x-oauth-scopes header)",
                      "check that no proxy strips response headers between the bot and slack.com")
    missing = sorted(MANIFEST_SCOPES - granted)
    if missing:
        return failed(
            "slack scopes", f"the token lacks {', '.join(missing)}",
            "add them under OAuth & Permissions → Bot Token Scopes (or re-create the app from manifest.yml), "
            "then reinstall the app and update SLACK_BOT_TOKEN",
        )
    return passed("slack scopes", f"all {len(MANIFEST_SCOPES)} scopes of manifest.yml granted")


# ---- the database -----------------------------------------------------------------------------


def _audit_rows(conn: Connection) -> tuple[list[audit.AuditEntry], audit.Head | None]:
    entries = [audit.AuditEntry(**row._mapping) for row in conn.execute(select(schema.audit_log).order_by(schema.audit_log.c.seq))]
    row = conn.execute(select(schema.audit_head)).first()
    return entries, audit.Head(row.seq, row.hash, row.signature) if row else None


def check_database(settings: Settings) -> list[Check]:
    url = normalise_url(settings.amlbot_database_url)
    shown = make_url(url).render_as_string(hide_password=True)
    serve_fix = "start `amlbot serve` (or `amlbot worker`) once with this AMLBOT_DATABASE_URL: it migrates at start"
    file = sqlite_file(url)
    if file is not None and not file.exists():
        return [failed("database", f"{shown}: the file does not exist yet", serve_fix + " (or correct the path)")]
    options = {"connect_args": {"connect_timeout": DB_TIMEOUT}} if url.startswith("postgresql") else {}
    engine = create_engine(url, **options)
    try:
        with engine.connect() as conn:
            version = migrations.applied_version(conn)
            entries, head = _audit_rows(conn) if version else ([], None)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return [failed("database", f"{shown} unreachable: {reason}",
                       "check AMLBOT_DATABASE_URL (host, port, user, database name) and that the server is up and lets this host in")]
    finally:
        engine.dispose()
    current = migrations.HEAD
    if version < current:
        return [failed("database", f"{shown}: schema version {version}, this amlbot needs {current}", serve_fix)]
    if version > current:
        return [failed("database", f"{shown}: schema version {version} is newer than this amlbot ({current})",
                       "run the amlbot version that migrated it (or newer) on every replica")]
    return [passed("database", f"{shown}: reachable, schema version {current} (current)"), check_audit_key(settings, entries, head)]


def check_audit_key(settings: Settings, entries: list[audit.AuditEntry], head: audit.Head | None) -> Check:
    """The key `serve` would sign with (none is generated here) signed the head, and the whole
    chain verifies: links, recorded breaks, head."""
    try:
        keyring = keys.configured(settings)
    except keys.KeyProblem as error:
        return failed("audit key", str(error), keys.NEW_KEY_FIX)
    generated = keys.generated_key_path(settings)
    if keyring is None:
        if generated is None:
            return failed("audit key", "AMLBOT_AUDIT_KEY is not set, and replicas sharing a PostgreSQL database must share one key",
                          keys.NEW_KEY_FIX)
        if head is None:
            return passed("audit key", f"AMLBOT_AUDIT_KEY not set: `amlbot serve` will generate {generated} (one local replica only)")
        return failed("audit key", "AMLBOT_AUDIT_KEY is not set and the audit log already has a signed head",
                      "set AMLBOT_AUDIT_KEY to the key that signed it (every replica uses the same key)")
    source = "AMLBOT_AUDIT_KEY" if settings.amlbot_audit_key else str(generated)
    if head is None:
        return passed("audit key", f"{source} set; the audit log is empty")
    if audit.head_signer(head, keyring) is None:
        return failed(
            "audit key", f"{source} did not sign the head of the audit log (entry {head.seq})",
            "set AMLBOT_AUDIT_KEY to the key every replica uses; after a rotation list the earlier public key in "
            "AMLBOT_AUDIT_PREVIOUS_KEYS (README, Runbook)",
        )
    result = audit.verify_chain(entries, head, keyring)
    if not result.ok:
        return failed("audit key", f"the audit log is broken at entry {result.first_bad_seq}: {result.reason}",
                      "`amlbot audit verify` and `amlbot audit show`; compare the database with its backups (README, Security)")
    if result.signer != keyring.signer().public.id:
        return passed("audit key", f"an earlier key ({result.signer}) signed the head; the next entry records the rotation to {source}")
    return passed("audit key", f"{source} signs the head of the audit log")


# ---- Azure ------------------------------------------------------------------------------------


def reads_for(actions: Iterable[Action]) -> dict[str, list[str]]:
    """Each harmless read the actions need, with the actions that need it."""
    reads: dict[str, list[str]] = {}
    for action in actions:
        kind_reads = KIND_READS.get(action.kind, ())
        bound = ("storage account",) if touches_storage(action) else ()
        # A deletion of files also reads what storage keeps of them (commands.operations.retention).
        settings = ("storage settings",) if action.verb is Verb.DELETE and "storage" in kind_reads else ()
        for read in (*bound, *kind_reads, *settings, *(("exports",) if action.verb is Verb.EXPORT else ())):
            reads.setdefault(read, []).append(str(action))
    return reads


def explain(error: BaseException, read: str, where: str) -> tuple[str, str]:
    """What went wrong with one read, and the fix."""
    if isinstance(error, ClientAuthenticationError) or getattr(error, "status_code", None) == 401:
        return f"cannot sign in to Azure: {_short(error)}", SIGN_IN_FIX
    if isinstance(error, ResourceNotFoundError):
        return f"{where} not found", f"correct the config: {_NOT_FOUND_FIX.get(read, 'the workspace names')}"
    if isinstance(error, HttpResponseError) and error.status_code == 403:
        return f"the identity may not read {where}: {_short(error)}", f"grant the identity {ROLES[read]}"
    if isinstance(error, ServiceRequestError | aiohttp.ClientError | OSError | TimeoutError):
        return f"cannot reach {where}: {_short(error)}", _UNREACHABLE_FIX.get(read, "check arm_endpoint, DNS, proxy and firewall")
    if isinstance(error, OperationError):  # the config names another storage account than the workspace
        return str(error), "amlbot reaches only the storage account the workspace names (its storageAccount)"
    if isinstance(error, ValueError):
        return str(error), "set storage_account_url (or storage_connection_string) for the workspace"
    return f"{where}: {_short(error)}", f"see the error above; the identity needs {ROLES[read]}"


_NOT_FOUND_FIX = {
    "workspace": "subscription_id, resource_group and workspace_name must name an existing workspace",
    "storage": "artifact_container must name the container of the workspace's `workspaceartifactstore` datastore",
    "resource group": "resource_group must name the workspace's resource group",
}
_STORAGE_UNREACHABLE = "check storage_account_url / storage_connection_string, DNS, firewall and private endpoints of the storage account"
_UNREACHABLE_FIX = dict.fromkeys(("storage", "exports", "storage settings"), _STORAGE_UNREACHABLE)


def _short(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return str(text).strip().splitlines()[0][:300]


async def _exports(blobs: Any, container: str) -> str:
    """The exports container exists, or is created now (what the first export would do)."""
    try:
        await blobs.probe(container)
        return "exists"
    except ResourceNotFoundError:
        await blobs.ensure_container(container, retry_total=0)
        return "created"


async def _storage_settings(blobs: Any, control: Any, container: str) -> None:
    """What a deletion reads of what storage keeps: on the data plane, then versioning through ARM."""
    await blobs.retention([container])
    await control.call(control.blob_service)


def _probes(alias: str, workspace: WorkspaceConfig, doors: Doors) -> dict[str, tuple[str, Callable[[], Awaitable[Any]]]]:
    """read -> (what it reads, the read). A listing reads one item of its first page."""
    control = doors.control(alias)

    def first(listing: Callable[[], Iterable[Any]]) -> Callable[[], Awaitable[Any]]:
        return lambda: control.call(lambda: next(iter(listing()), None))

    def blobs() -> Any:
        return doors.get(alias)

    ml = control.ml
    rg = workspace.resource_group
    async def bound() -> str:
        door = await doors.bind(alias)
        return f"is {door.account_name}, the one the workspace names ({door.url})"

    return {
        "workspace": (f"workspace {workspace.workspace_name} in {rg}", lambda: control.call(ml().workspaces.get, workspace.workspace_name)),
        "storage account": ("the storage account", bound),
        "storage": (f"container {workspace.artifact_container}", lambda: blobs().probe(workspace.artifact_container)),
        "exports": (f"exports container {workspace.exports_container}", lambda: _exports(blobs(), workspace.exports_container)),
        "computes": ("the workspace's computes", first(lambda: ml().compute.list())),
        "endpoints": ("the workspace's online endpoints", first(lambda: ml().online_endpoints.list())),
        "jobs": ("the workspace's jobs", first(lambda: ml().jobs.list())),
        "models": ("the workspace's models", first(lambda: ml().models.list())),
        "resource group": (f"resource group {rg}", lambda: control.call(control.arm().resource_groups.get, rg)),
        "subscription": (
            f"the workspaces of subscription {workspace.subscription_id}",
            first(lambda: ml().workspaces.list(scope="subscription")),
        ),
        "storage settings": (
            f"the soft-delete, hold and versioning settings of container {workspace.artifact_container}",
            lambda: _storage_settings(blobs(), control, workspace.artifact_container),
        ),
    }


async def check_workspace(alias: str, config: AppConfig, doors: Doors) -> list[Check]:
    workspace = config.workspaces[alias]
    probes = _probes(alias, workspace, doors)
    allowed = policy.actions_on_workspace(config.policy, OPERATIONS, alias)
    checks = []
    for read, actions in [("workspace", ["every action"]), *reads_for(allowed).items()]:
        what, probe = probes[read]
        name = f"workspace {alias}: {read}"
        try:
            outcome = await probe()
        except Exception as error:  # every failure becomes a line with its fix; the doctor goes on
            checks.append(failed(name, *explain(error, read, what)))
            if read == "workspace":
                break  # the reads below would fail the same way
            continue
        done = f"{what} {outcome}" if isinstance(outcome, str) else f"{what} readable"
        checks.append(passed(name, f"{done} (for {', '.join(actions)})"))
    return checks


# ---- Microsoft Graph -----------------------------------------------------------------------------

PEOPLE_KINDS = (Kind.USER, Kind.NOTEBOOKS)
GRAPH_FIX = (
    f"grant amlbot's identity the Microsoft Graph application permission {PERMISSION}, with admin consent "
    "(Entra ID → Enterprise applications → amlbot's identity → Permissions). Without it people are matched only by "
    "the address or object id a command gives: run-history records without a UPN, and records that show only a "
    "display name, are missed"
)


async def check_graph(config: AppConfig, doors: Doors) -> list[Check]:
    """Microsoft Graph, when the policy allows an action on people somewhere."""
    actions = {a for alias in config.workspaces for a in policy.actions_on_workspace(config.policy, OPERATIONS, alias)}
    on_people = sorted(str(a) for a in actions if a.kind in PEOPLE_KINDS)
    if not on_people:
        return []
    directory = doors.directory()
    if directory is None:
        return [passed("microsoft graph", "not asked (graph_endpoint: null): people are matched only by what a command gives")]
    try:
        await asyncio.to_thread(directory.probe)
    except DirectoryError as error:
        fix = GRAPH_FIX if error.denied else f"let amlbot reach {directory.endpoint} and sign in ({SIGN_IN_FIX})"
        return [failed("microsoft graph", str(error), fix)]
    return [passed("microsoft graph", f"users readable ({PERMISSION}) at {directory.endpoint} (for {', '.join(on_people)})")]


def default_doors(config: AppConfig) -> Doors:
    return Doors(config.workspaces, client_kwargs=CLIENT_KWARGS, graph_endpoint=config.graph_endpoint)


async def diagnose(settings: Settings, doors_for: Callable[[AppConfig], Doors] = default_doors) -> list[Check]:
    config_check, config = check_config(settings)
    checks = [config_check, *await check_slack(settings), check_signing_secret(settings), *await check_app_token(settings)]
    checks += await asyncio.to_thread(check_database, settings)
    if config is None:
        return checks
    doors = doors_for(config)
    try:
        for alias in sorted(config.workspaces):
            checks += await check_workspace(alias, config, doors)
        checks += await check_graph(config, doors)
    finally:
        await doors.close()
    return checks


def report(checks: list[Check]) -> tuple[str, int]:
    """The printout, one line per check and a summary, and the exit status: 0 only when all passed."""
    failures = sum(not c.ok for c in checks)
    summary = f"{len(checks) - failures} of {len(checks)} checks passed" + (f"; fix the {failures} above" if failures else "")
    return "\n".join([*(c.line() for c in checks), summary]), 1 if failures else 0


def main(settings: Settings, verbose: bool = False) -> int:
    """The table first. Unless `verbose`, log lines below WARNING (the Azure SDK's request logs) are
    dropped, and warnings are held back until after the table."""
    if verbose:
        text, status = report(asyncio.run(diagnose(settings)))
        print(text)
        return status
    with quiet_logs() as held:
        text, status = report(asyncio.run(diagnose(settings)))
    print(text, flush=True)
    held.replay()
    return status


class _Held(logging.Handler):
    """Keeps log records to hand to the real handlers later (`replay`; `release` is the lock's)."""

    def __init__(self, targets: list[logging.Handler]) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.targets = targets

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def replay(self) -> None:
        for record in self.records:
            for target in self.targets:
                if record.levelno >= target.level:
                    target.handle(record)


@contextlib.contextmanager
def quiet_logs() -> Iterator[_Held]:
    root, azure = logging.getLogger(), logging.getLogger("azure")
    saved = (root.handlers[:], root.level, azure.level)
    held = _Held(saved[0])
    root.handlers = [held]
    root.setLevel(logging.WARNING)
    azure.setLevel(logging.WARNING)
    try:
        yield held
    finally:
        root.handlers = saved[0]
        root.setLevel(saved[1])
        azure.setLevel(saved[2])

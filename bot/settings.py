"""Configuration: the process environment (pydantic-settings) plus one YAML file (AMLBOT_CONFIG).

The environment says how to reach Slack, the database and the config file; the YAML file says
which workspaces the bot may touch and who may do what. Both are validated at start, and a bad
file fails with the key and the reason.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot import config_check
from commands.azure.config import USER_DELEGATION_LIMIT, WorkspaceConfig
from commands.azure.graph import PUBLIC_GRAPH
from commands.durations import format_duration, parse_duration
from commands.intents import DESTRUCTIVE_VERBS

ALIAS_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


def _duration(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


# "24h", "7d" in the file; a timedelta in the code.
Duration = Annotated[timedelta, BeforeValidator(_duration)]


class ConfigError(Exception):
    """The config file cannot be used; the message names the key and the reason."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    port: int = 3000
    # The interface `serve` listens on: loopback for a local run (a tunnel reaches it); the image sets 0.0.0.0.
    amlbot_host: str = "127.0.0.1"
    amlbot_database_url: str = "sqlite:///amlbot.db"
    amlbot_config: Path = Path("config.yml")
    amlbot_audit_key: str | None = None  # see bot/keys.py for the forms it takes
    amlbot_audit_previous_keys: str | None = None  # public keys of earlier audit keys, comma-separated
    amlbot_worker_concurrency: int = Field(default=2, ge=1, le=64)
    # How long a job (or the posting of its result) stays claimed without a renewal: a dead
    # worker's jobs are resumed elsewhere after this; renewed every third of it.
    amlbot_lease_seconds: float = Field(default=60.0, ge=1.0)
    # On SIGTERM: how long running jobs get to reach the end of a step before they are handed back.
    amlbot_shutdown_grace: float = Field(default=30.0, ge=0.0)
    amlbot_log_level: str = "INFO"
    # Where `amlbot serve` runs jobs: "process" (a child `amlbot worker`, so that no job shares the
    # event loop or the GIL with Slack's acks) or "inline" (in the serving process itself).
    amlbot_worker: Literal["inline", "process"] = "process"
    # How much lower than `serve` its worker process runs (niceness added, 0 to 19): on a busy
    # machine an export's CPU then waits for Slack's acks, never the other way round; on idle cores
    # the job runs as fast as before. Not more by default: at 10, other processes loading the
    # machine starved the worker past its shutdown grace.
    amlbot_worker_nice: int = Field(default=5, ge=0, le=19)

    def missing_for_slack(self, *, requests: bool = True) -> list[str]:
        """What is missing to talk to Slack: the token always; to take its requests (HTTP mode),
        the signing secret too. `amlbot worker` only posts."""
        missing = []
        if not self.slack_bot_token:
            missing.append("SLACK_BOT_TOKEN")
        if requests and not self.slack_app_token and not self.slack_signing_secret:
            missing.append("SLACK_SIGNING_SECRET")
        return missing


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    """Who may ask for one action (or a set of them), where."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # Slack user group ids (S…), resolved through the Web API
    channels: tuple[str, ...] = ()  # empty: any channel
    workspaces: tuple[str, ...] = ()  # empty: any workspace


class PolicyConfig(_Strict):
    admins: tuple[str, ...] = ()
    # action ("delete run", "export *", "*") -> who may request it
    requesters: dict[str, Rule] = Field(default_factory=dict)
    approvers: Rule = Rule()
    # action -> number of distinct approvals; the default for anything unlisted is 1
    approvals_required: dict[str, int] = Field(default_factory=dict)
    # actions whose requester may also approve (never a deletion)
    self_approval: tuple[str, ...] = ()
    oncall: Rule = Rule()
    oncall_self_approval_cap: int = Field(default=5, ge=0)
    approvers_channel: str | None = None  # also announce each request here, linking to its card
    expiry: Duration = timedelta(hours=24)
    reminder_before: Duration = timedelta(hours=2)
    cooling_off: Duration = timedelta(0)
    # actions ("delete user", "delete *") that wait `cooling_off` after approval, cancellable
    cooling_off_actions: tuple[str, ...] = ("delete user",)
    # Enterprise Grid: a request is seen and decided from every workspace of the org it was made in,
    # not only its own workspace (never from another org).
    org_wide: bool = False

    @field_validator("approvals_required")
    @classmethod
    def _at_least_one(cls, value: dict[str, int]) -> dict[str, int]:
        for action, count in value.items():
            if count < 1:
                raise ValueError(f"{action!r} needs at least 1 approval, not {count}")
        return value

    @field_validator("approvers", "oncall")
    @classmethod
    def _who_only(cls, value: Rule, info: ValidationInfo) -> Rule:
        # Approving happens on the card, wherever it is: a channel limit here would be ignored.
        if value.channels:
            raise ValueError(f"{info.field_name} cannot be limited to channels")
        if info.field_name == "oncall" and value.workspaces:
            raise ValueError("oncall names people (users, groups), not workspaces")
        return value

    @field_validator("self_approval")
    @classmethod
    def _no_self_approved_deletion(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for action in value:
            if action.split(" ", 1)[0] in DESTRUCTIVE_VERBS or action == "*":
                raise ValueError(
                    f"{action!r}: a deletion can never be approved by its requester (on-call cleanups: see `oncall`)"
                )
        return value


class AppConfig(_Strict):
    workspaces: dict[str, WorkspaceConfig]
    channel_defaults: dict[str, str] = Field(default_factory=dict)  # channel id -> alias
    policy: PolicyConfig = PolicyConfig()
    export_link_expiry: Duration = timedelta(days=7)
    # Exports planning more bytes than this run server-side: the storage service copies the files
    # into a container of the export's own and the link is to that container; 0: always a zip archive.
    server_export_over: int = Field(default=1024**3, ge=0)
    # Exports about a person (user, notebooks) always send their link to the requester privately;
    # true does the same for every export: the card's thread only says it was sent.
    private_export_links: bool = False
    # Microsoft Graph, where people are looked up (a national cloud's, or a stand-in's); null: not asked.
    graph_endpoint: str | None = PUBLIC_GRAPH

    @field_validator("workspaces")
    @classmethod
    def _aliases(cls, value: dict[str, WorkspaceConfig]) -> dict[str, WorkspaceConfig]:
        import re

        if not value:
            raise ValueError("at least one workspace is needed")
        for alias in value:
            if not re.match(ALIAS_PATTERN, alias):
                raise ValueError(f"alias {alias!r} must be lowercase letters, digits and dashes")
        return value

    @model_validator(mode="after")
    def _links_a_delegation_key_can_sign(self) -> AppConfig:
        # Without an account key, links are user-delegation SAS, whose key Azure issues for 7 days at most.
        by_entra = sorted(alias for alias, ws in self.workspaces.items() if not ws.storage_connection_string)
        if by_entra and self.export_link_expiry > USER_DELEGATION_LIMIT:
            raise ValueError(
                f"export_link_expiry: {format_duration(self.export_link_expiry)} is longer than "
                f"{USER_DELEGATION_LIMIT.days} days, the most a link signed with Entra ID (a user-delegation SAS) "
                f"lives; {', '.join(by_entra)} sign(s) links that way (no storage_connection_string)"
            )
        return self

    @model_validator(mode="after")
    def _known_aliases(self) -> AppConfig:
        for channel, alias in self.channel_defaults.items():
            if alias not in self.workspaces:
                raise ValueError(f"channel_defaults.{channel}: unknown workspace alias {alias!r}")
        return self

    def workspace_for(self, alias: str | None, channel_id: str) -> str | None:
        """The alias a command means: the one it names, else the channel's default, else the
        only workspace there is."""
        if alias:
            return alias
        if channel_id in self.channel_defaults:
            return self.channel_defaults[channel_id]
        if len(self.workspaces) == 1:
            return next(iter(self.workspaces))
        return None


def parse_config(data: Any, source: str = "config", root: yaml.Node | None = None) -> AppConfig:
    """The file's data as a config, or ConfigError naming every problem (with its line and column
    when `root`, the file's YAML nodes, is given)."""
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(config_check.report(source, root, config_check.validation_problems(error, AppConfig))) from None
    if problems := config_check.semantic_problems(config):
        raise ConfigError(config_check.report(source, root, problems))
    return config


def load_config(path: Path) -> AppConfig:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found (set AMLBOT_CONFIG; see config.example.yml)"
        ) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{where}: not valid YAML: {what}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1:1: the top level must be a mapping with a `workspaces` key")
    return parse_config(data, str(path), root)

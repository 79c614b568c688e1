"""`amlbot doctor` against the Slack and Azure stand-ins, Azurite and real databases: a good set-up
passes every check; each broken one fails exactly its check, with the fix that mends it."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.storage.blob import BlobServiceClient

from bot import doctor
from bot.doors import Doors
from bot.settings import AppConfig, Settings
from bot.store.store import Store
from commands.signing import Keyring, SigningKey
from sandbox.standins.azure.client import TEST_CLIENT_KWARGS, FakeCredential
from sandbox.standins.azure.server import AzureStandIn
from sandbox.standins.azurite import connection_string, free_port
from sandbox.standins.graph import GraphStandIn
from sandbox.standins.slack_api import DEFAULT_SCOPES, SlackWebApiStandIn
from tests.e2e.harness import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE

GOOD_TOKEN = "xoxb-good-token"
AUDIT_KEY = "doctor-audit-key"

Diagnose = Callable[..., Awaitable[list[doctor.Check]]]


def standin_doors(config: AppConfig) -> Doors:
    return Doors(config.workspaces, credential=FakeCredential(), client_kwargs=TEST_CLIENT_KWARGS,
                 graph_endpoint=config.graph_endpoint)


@pytest.fixture
async def slack() -> AsyncIterator[SlackWebApiStandIn]:
    async with SlackWebApiStandIn(invalid_tokens={"xoxb-revoked"}) as standin:
        yield standin


@pytest.fixture
def artifacts(azurite_connection: str) -> str:
    name = f"azureml-{uuid.uuid4().hex[:10]}"
    with BlobServiceClient.from_connection_string(azurite_connection) as service:
        service.create_container(name)
    return name


@pytest.fixture
def diagnose(
    tmp_path: Path, slack: SlackWebApiStandIn, azure: AzureStandIn, azurite_connection: str, artifacts: str,
    graph: GraphStandIn,
) -> Diagnose:
    """Runs the doctor on a set-up that works, changed by `workspace=` (keys of the workspace),
    `policy=`, `config_text=` (the whole file) and any Settings field."""
    database = tmp_path / "amlbot.db"
    Store.open(f"sqlite:///{database}", Keyring(SigningKey.parse(AUDIT_KEY))).close()

    async def run(
        *, workspace: dict[str, Any] | None = None, policy: dict[str, Any] | None = None, config_text: str | None = None,
        **settings: Any,
    ) -> list[doctor.Check]:
        raw = {
            "workspaces": {
                "dev": {
                    "subscription_id": SUBSCRIPTION,
                    "resource_group": RESOURCE_GROUP,
                    "workspace_name": WORKSPACE,
                    "arm_endpoint": azure.url,
                    "storage_connection_string": azurite_connection,
                    "artifact_container": artifacts,
                    "exports_container": f"exports-{artifacts}",
                    **(workspace or {}),
                }
            },
            "policy": policy or {"requesters": {"*": {"users": ["U1"]}}, "approvers": {"users": ["U2"]}},
            "graph_endpoint": graph.url,
        }
        path = tmp_path / f"config-{uuid.uuid4().hex[:6]}.yml"
        path.write_text(config_text if config_text is not None else yaml.safe_dump(raw))
        values = {
            "slack_bot_token": GOOD_TOKEN,
            "slack_signing_secret": "0123456789abcdef0123456789abcdef",
            "slack_api_url": slack.url,
            "amlbot_database_url": f"sqlite:///{database}",
            "amlbot_config": path,
            "amlbot_audit_key": AUDIT_KEY,
            **settings,
        }
        return await doctor.diagnose(Settings(**values), standin_doors)

    return run


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {check.name: check for check in checks}


def only_failure(checks: list[doctor.Check]) -> doctor.Check:
    failures = [c for c in checks if not c.ok]
    assert len(failures) == 1, doctor.report(checks)[0]
    return failures[0]


async def test_a_good_set_up_passes_every_check_and_exits_0(diagnose: Diagnose, azurite_connection: str, artifacts: str) -> None:
    checks = await diagnose()
    text, status = doctor.report(checks)
    assert status == 0, text
    names = [c.name for c in checks]
    assert names[:6] == ["config", "slack token", "slack scopes", "slack signing secret", "database", "audit key"]
    # Every harmless read the allowed actions ("*": all of them) need, on the one workspace; then Graph.
    assert set(names[6:-1]) == {f"workspace dev: {read}" for read in doctor.ROLES}
    assert names[-1] == "microsoft graph" and "users readable (User.Read.All)" in checks[-1].detail
    assert len(text.splitlines()) == len(checks) + 1 and text.endswith(f"{len(checks)} of {len(checks)} checks passed")
    checks_by_name = by_name(checks)
    assert "bot amlbot (U0BOT0001)" in checks_by_name["slack token"].detail
    assert checks_by_name["workspace dev: exports"].detail.startswith(f"exports container exports-{artifacts} created")
    assert "export run" in checks_by_name["workspace dev: exports"].detail
    with BlobServiceClient.from_connection_string(azurite_connection) as service:
        assert service.get_container_client(f"exports-{artifacts}").exists()
    assert "exists" in by_name(await diagnose())["workspace dev: exports"].detail  # created once, then found


async def test_only_the_reads_the_policy_allows_on_the_workspace_are_tried(diagnose: Diagnose) -> None:
    # (A rule limited to another workspace is refused unless the file defines it: this file has `dev` only.)
    requesters = {"delete compute": {"users": ["U1"]}}
    checks = await diagnose(policy={"requesters": requesters})
    assert [c.name for c in checks if c.name.startswith("workspace")] == ["workspace dev: workspace", "workspace dev: computes"]
    assert by_name(checks)["workspace dev: computes"].detail == "the workspace's computes readable (for delete compute)"


async def test_run_actions_also_read_the_workspace_jobs(diagnose: Diagnose) -> None:
    checks = await diagnose(policy={"requesters": {"delete run": {"users": ["U1"]}}})
    names = [c.name for c in checks if c.name.startswith("workspace")]
    assert "workspace dev: storage" in names and "workspace dev: jobs" in names
    assert by_name(checks)["workspace dev: jobs"].detail.endswith("(for delete run)")


async def test_a_revoked_token(diagnose: Diagnose) -> None:
    failure = only_failure(await diagnose(slack_bot_token="xoxb-revoked"))
    assert failure.name == "slack token" and failure.detail == "auth.test answered invalid_auth"
    assert "Bot User OAuth Token" in failure.fix and "OAuth & Permissions" in failure.fix


async def test_no_token_at_all(diagnose: Diagnose) -> None:
    failure = only_failure(await diagnose(slack_bot_token=None))
    assert (failure.name, failure.detail) == ("slack token", "SLACK_BOT_TOKEN is not set")


async def test_a_missing_scope(diagnose: Diagnose, slack: SlackWebApiStandIn) -> None:
    slack.scopes = [s for s in DEFAULT_SCOPES if s != "files:write"]
    failure = only_failure(await diagnose())
    assert failure.name == "slack scopes" and failure.detail == "the token lacks files:write"
    assert "Bot Token Scopes" in failure.fix and "reinstall the app" in failure.fix


async def test_a_missing_signing_secret(diagnose: Diagnose) -> None:
    failure = only_failure(await diagnose(slack_signing_secret=None))
    assert failure.name == "slack signing secret" and "Basic Information → App Credentials" in failure.fix
    assert by_name(await diagnose(slack_signing_secret=None, slack_app_token="xapp-1-A1-1-abc"))["slack signing secret"].ok


async def test_the_app_level_token_of_socket_mode(diagnose: Diagnose, slack: SlackWebApiStandIn) -> None:
    good = by_name(await diagnose(slack_app_token="xapp-1-A1-1-abc"))["slack app token"]
    assert good.ok and "apps.connections.open" in good.detail
    assert slack.calls_to("apps.connections.open")[-1].headers["Authorization"] == "Bearer xapp-1-A1-1-abc"
    assert "slack app token" not in by_name(await diagnose())  # HTTP mode: no app-level token to check

    wrong_kind = only_failure(await diagnose(slack_app_token=GOOD_TOKEN))  # a bot token where the xapp- one goes
    assert (wrong_kind.name, wrong_kind.detail) == ("slack app token", "apps.connections.open answered not_allowed_token_type")
    assert "App-Level Tokens" in wrong_kind.fix and "connections:write" in wrong_kind.fix
    slack.invalid_tokens.add("xapp-1-revoked")
    assert only_failure(await diagnose(slack_app_token="xapp-1-revoked")).detail == "apps.connections.open answered invalid_auth"


async def test_an_unknown_workspace(diagnose: Diagnose) -> None:
    checks = await diagnose(workspace={"workspace_name": "mlw-nope"})
    failure = only_failure(checks)
    assert failure.name == "workspace dev: workspace" and failure.detail == "workspace mlw-nope in rg-dev not found"
    assert "workspace_name must name an existing workspace" in failure.fix
    assert not [c for c in checks if c.name.startswith("workspace dev: ") and c.name != failure.name]  # nothing more to try


async def test_unreachable_storage(diagnose: Diagnose, artifacts: str) -> None:
    closed = connection_string(free_port())
    checks = await diagnose(workspace={"storage_connection_string": closed})
    failures = [c for c in checks if not c.ok]
    assert [c.name for c in failures] == ["workspace dev: storage", "workspace dev: storage settings", "workspace dev: exports"]
    assert failures[0].detail.startswith(f"cannot reach container {artifacts}")
    assert "storage_connection_string" in failures[0].fix and "firewall" in failures[0].fix


async def test_a_wrong_artifact_container(diagnose: Diagnose) -> None:
    failure = only_failure(await diagnose(workspace={"artifact_container": "not-there"}))
    assert failure.name == "workspace dev: storage" and failure.detail == "container not-there not found"
    assert "artifact_container must name" in failure.fix


async def test_an_identity_without_the_role(diagnose: Diagnose, azure: AzureStandIn) -> None:
    azure.fail_next("GET", r"/computes$", status=403, times=5, code="AuthorizationFailed")
    failure = only_failure(await diagnose())
    assert failure.name == "workspace dev: computes" and "may not read the workspace's computes" in failure.detail
    assert failure.fix == "grant the identity AzureML Compute Operator on the workspace"


async def test_an_identity_that_may_not_read_blob_versioning(diagnose: Diagnose, azure: AzureStandIn) -> None:
    azure.fail_next("GET", r"/blobServices/default$", status=403, times=5, code="AuthorizationFailed")
    failure = only_failure(await diagnose())
    assert failure.name == "workspace dev: storage settings" and "may not read the soft-delete, hold and versioning settings" in failure.detail
    assert "versioning" in failure.fix


async def test_graph_without_the_permission_says_what_amlbot_cannot_see(diagnose: Diagnose, graph: GraphStandIn) -> None:
    graph.deny = True
    failure = only_failure(await diagnose())
    assert failure.name == "microsoft graph" and "Authorization_RequestDenied" in failure.detail
    assert failure.fix.startswith("grant amlbot's identity the Microsoft Graph application permission User.Read.All")
    assert "records that show only a display name, are missed" in failure.fix


async def test_graph_is_not_checked_when_no_action_on_people_is_allowed(diagnose: Diagnose, graph: GraphStandIn) -> None:
    checks = await diagnose(policy={"requesters": {"delete compute": {"users": ["U1"]}}})
    assert "microsoft graph" not in by_name(checks) and graph.calls == []


async def test_a_database_that_is_not_migrated(diagnose: Diagnose, tmp_path: Path) -> None:
    bare = tmp_path / "bare.db"
    with sqlite3.connect(bare) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    checks = await diagnose(amlbot_database_url=f"sqlite:///{bare}")
    failure = only_failure(checks)
    assert failure.name == "database" and failure.detail.endswith("schema version 0, this amlbot needs " + str(_current()))
    assert "`amlbot serve`" in failure.fix and "migrates at start" in failure.fix
    assert "audit key" not in by_name(checks)  # no log to check the key against


async def test_a_database_file_that_does_not_exist(diagnose: Diagnose, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    failure = only_failure(await diagnose(amlbot_database_url=f"sqlite:///{missing}"))
    assert failure.detail.endswith("the file does not exist yet") and not missing.exists()  # the doctor creates nothing


async def test_an_unreachable_database(diagnose: Diagnose) -> None:
    url = f"postgresql://amlbot:s3cret-pass@127.0.0.1:{free_port()}/amlbot"
    failure = only_failure(await diagnose(amlbot_database_url=url))
    assert failure.name == "database" and "unreachable" in failure.detail and "s3cret-pass" not in failure.detail
    assert "AMLBOT_DATABASE_URL" in failure.fix and "server is up" in failure.fix


async def test_a_migrated_postgresql_database_passes(diagnose: Diagnose, postgres_url: str) -> None:
    Store.open(postgres_url, Keyring(SigningKey.parse(AUDIT_KEY))).close()
    assert by_name(await diagnose(amlbot_database_url=postgres_url))["database"].ok


async def test_a_wrong_audit_key(diagnose: Diagnose, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'amlbot.db'}", Keyring(SigningKey.parse(AUDIT_KEY)))
    store.audit(actor="U1", event="freeze", outcome="ok")
    store.close()
    failure = only_failure(await diagnose(amlbot_audit_key="another-key"))
    assert failure.name == "audit key" and "did not sign the head of the audit log (entry 1)" in failure.detail
    assert by_name(await diagnose())["audit key"].detail == "AMLBOT_AUDIT_KEY signs the head of the audit log"


async def test_a_config_that_does_not_parse_stops_there_with_exit_1(diagnose: Diagnose) -> None:
    checks = await diagnose(config_text="workspaces:\n  Prod: {}\n")
    failure = only_failure(checks)
    assert failure.name == "config" and "workspaces.Prod: `subscription_id` is required here" in failure.detail
    assert "README.md" in failure.fix
    assert doctor.report(checks)[1] == 1
    assert not [c for c in checks if c.name.startswith("workspace")]


def test_the_cli_prints_one_line_per_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "AMLBOT_AUDIT_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AMLBOT_CONFIG", str(tmp_path / "missing.yml"))
    monkeypatch.setenv("AMLBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    assert main(["doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "FAIL config", "FAIL slack token", "FAIL slack signing secret", "FAIL database",
    ]
    assert all(" — fix: " in line for line in lines[:-1]) and lines[-1] == "0 of 4 checks passed; fix the 4 above"


def _current() -> int:
    from bot.store.migrations import HEAD

    return HEAD


def _bind_elsewhere(azure: AzureStandIn) -> None:
    """The workspace names a storage account other than the Azurite one the config names."""
    with azure.state.lock:
        workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
        assert workspace is not None
        workspace.storage_account_id = azure.state.add_generic_resource(
            SUBSCRIPTION, RESOURCE_GROUP, "Microsoft.Storage/storageAccounts", "mlwdevelsewhere",
            kind="StorageV2", properties={"primaryEndpoints": {"blob": "https://mlwdevelsewhere.blob.core.windows.net/"}},
        )


async def test_a_storage_account_that_is_not_the_workspaces(diagnose: Diagnose, azure: AzureStandIn) -> None:
    assert by_name(await diagnose())["workspace dev: storage account"].detail.startswith(
        "the storage account is devstoreaccount1, the one the workspace names"
    )
    _bind_elsewhere(azure)

    failure = only_failure(await diagnose())

    assert failure.name == "workspace dev: storage account"
    assert "keeps its data in storage account `mlwdevelsewhere`" in failure.detail
    assert "`storage_connection_string` names `devstoreaccount1`" in failure.detail
    assert "only the storage account the workspace names" in failure.fix

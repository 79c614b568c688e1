"""Configuration: the shipped example parses; a bad file fails with the key and the reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.settings import ConfigError, Settings, load_config

ROOT = Path(__file__).resolve().parents[2]
DEV = "workspaces: {dev: {subscription_id: s, resource_group: r, workspace_name: w}}\n"  # one valid workspace, then the case


def test_example_config_parses() -> None:
    config = load_config(ROOT / "config.example.yml")
    assert set(config.workspaces) == {"prod", "dev"}
    assert config.policy.expiry == timedelta(hours=24)
    assert config.policy.approvals_required["delete workspace"] == 2
    assert config.workspace_for(None, "C0123456789") == "dev"
    assert config.workspace_for(None, "C0OTHER") is None


@pytest.mark.parametrize(
    "body, expected",
    [
        ("workspaces: {}", "1:13: workspaces: at least one workspace is needed"),
        ("workspaces: {Prod: {subscription_id: s, resource_group: r, workspace_name: w}}", "alias 'Prod'"),
        ("workspaces: {dev: {subscription_id: s, resource_group: r}}", "workspaces.dev: `workspace_name` is required here"),
        ("workspaces: {dev: {subscription_id: s, resource_group: r, workspace_name: w, colour: red}}", "workspaces.dev.colour: unknown key `colour`"),
        (DEV + "policy: {expiry: soon}", "policy.expiry"),
        (DEV + "policy: {self_approval: [delete run]}", "never be approved by its requester"),
        (DEV + "channel_defaults: {C1: prod}", "unknown workspace alias 'prod'"),
        ("workspaces: [", "not valid YAML"),
        ("- just a list", "top level must be a mapping"),
    ],
)
def test_bad_config_names_key_and_reason(tmp_path: Path, body: str, expected: str) -> None:
    path = tmp_path / "config.yml"
    path.write_text(body)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert expected in str(error.value) and str(path) in str(error.value)


def test_missing_config_file_says_where_to_look(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AMLBOT_CONFIG"):
        load_config(tmp_path / "nope.yml")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("PORT", "4000")
    settings = Settings()
    assert settings.port == 4000 and settings.missing_for_slack() == ["SLACK_SIGNING_SECRET"]
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    assert Settings().missing_for_slack() == []


ENTRA = "{subscription_id: s, resource_group: r, workspace_name: w}"
KEYED = "{subscription_id: s, resource_group: r, workspace_name: w2, storage_connection_string: 'AccountName=a;AccountKey=a2V5'}"


def test_link_expiry_past_seven_days_is_refused_where_links_are_user_delegation_sas(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(f"workspaces: {{prod: {ENTRA}, dev: {KEYED}}}\nexport_link_expiry: 8d")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "export_link_expiry: 8d is longer than 7 days" in str(error.value)
    assert "; prod sign(s) links that way" in str(error.value)  # dev signs with its account key


@pytest.mark.parametrize("body", [f"workspaces: {{prod: {ENTRA}}}\nexport_link_expiry: 7d", f"workspaces: {{dev: {KEYED}}}\nexport_link_expiry: 30d"])
def test_link_expiry_within_what_signs_the_links_is_accepted(tmp_path: Path, body: str) -> None:
    path = tmp_path / "config.yml"
    path.write_text(body)
    assert load_config(path).export_link_expiry in (timedelta(days=7), timedelta(days=30))

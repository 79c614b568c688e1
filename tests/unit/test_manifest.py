"""manifest.yml asks for exactly what the code uses: its command, the events it listens to, and the
scopes of the calls it makes — the scopes `amlbot doctor` checks the token for."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.doctor import MANIFEST_SCOPES
from bot.listeners.commands import COMMAND

ROOT = Path(__file__).resolve().parents[2]

# Web API method (as slack_sdk names it) -> the bot scope it needs.
SCOPE_OF = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "files_upload_v2": "files:write",
    "conversations_open": "im:write",  # a direct message to one person
    "usergroups_users_list": "usergroups:read",
    "users_info": "users:read users:read.email",  # the email that names a person in Azure
    "users_lookupByEmail": "users:read.email",
    "users_list": "users:read",  # a plain `@name` looked up
    "conversations_info": "channels:read",
    "views_publish": None,  # App Home needs no scope of its own
    "chat_getPermalink": None,
}


def _found_in_code(pattern: re.Pattern[str]) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        found |= set(pattern.findall(path.read_text()))
    return found


def _calls_in_code() -> set[str]:
    # A call, or a method handed on to be called (`partial(client.chat_postMessage, …)`).
    return _found_in_code(re.compile(r"\.(" + "|".join(SCOPE_OF) + r")[(,]"))


def test_manifest_matches_the_code() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert manifest["_metadata"]["major_version"] == 1
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == [COMMAND]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    calls = _calls_in_code()
    assert "chat_postMessage" in calls  # the scan itself works
    needed = {"commands"} | {scope for c in calls for scope in (SCOPE_OF[c] or "").split()}
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed == MANIFEST_SCOPES


def test_manifest_subscribes_to_the_events_the_app_listens_to() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    events = _found_in_code(re.compile(r"@app\.event\(\"(\w+)\"\)"))
    assert events == {"app_home_opened"}
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == events
    assert manifest["settings"]["event_subscriptions"]["request_url"] == manifest["settings"]["interactivity"]["request_url"]
    # The Home tab is published with views.publish, and only there.
    assert "views_publish" in _calls_in_code()
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True

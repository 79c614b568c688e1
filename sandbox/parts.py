"""The one place the sandbox takes its stand-ins from: Slack's Web API and request signing, the
Azure ML control plane, Microsoft Graph, and Azurite.
"""

from __future__ import annotations

from pathlib import Path

from sandbox.standins.azure.client import TEST_CLIENT_KWARGS as FAST_CLIENT_KWARGS
from sandbox.standins.azure.client import FakeCredential, standin_environment
from sandbox.standins.azure.server import AzureStandIn
from sandbox.standins.azure.state import AZURITE_ACCOUNT, AzureState, Identity, Workspace
from sandbox.standins.azurite import AzuriteUnavailable, azurite, free_port
from sandbox.standins.graph import GraphStandIn
from sandbox.standins.slack_api import SlackWebApiStandIn
from sandbox.standins.slack_signing import (
    SlackSender,
    app_home_opened_body,
    block_actions_body,
    home_click_body,
    slash_command_body,
    view_submission_body,
)

# The Slack app the console plays Slack for: the repository's manifest.yml, which the wheel carries
# in this package (sandbox/manifest.yml links to it).
MANIFEST = Path(__file__).with_name("manifest.yml")

__all__ = [
    "AZURITE_ACCOUNT",
    "FAST_CLIENT_KWARGS",
    "MANIFEST",
    "AzureStandIn",
    "AzureState",
    "AzuriteUnavailable",
    "FakeCredential",
    "GraphStandIn",
    "Identity",
    "SlackSender",
    "SlackWebApiStandIn",
    "Workspace",
    "app_home_opened_body",
    "azurite",
    "block_actions_body",
    "free_port",
    "home_click_body",
    "slash_command_body",
    "standin_environment",
    "view_submission_body",
]

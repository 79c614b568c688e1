"""The one place the sandbox takes its stand-ins from: Slack's Web API and request signing, the
Azure ML control plane, Microsoft Graph, and Azurite. When the stand-ins move to a runtime package, only the imports
below change.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Until the stand-ins live in an installed package, a repository checkout provides them: the
# console script `amlbot` does not have the checkout on its import path, `python -m sandbox` does.
_CHECKOUT = Path(__file__).resolve().parents[1]
MANIFEST = _CHECKOUT / "manifest.yml"  # the Slack app the console plays Slack for
if (_CHECKOUT / "tests" / "standins").is_dir() and str(_CHECKOUT) not in sys.path:
    sys.path.append(str(_CHECKOUT))

from tests.standins.azure.client import TEST_CLIENT_KWARGS as FAST_CLIENT_KWARGS  # noqa: E402
from tests.standins.azure.client import FakeCredential, standin_environment  # noqa: E402
from tests.standins.azure.server import AzureStandIn  # noqa: E402
from tests.standins.azure.state import AZURITE_ACCOUNT, AzureState, Identity, Workspace  # noqa: E402
from tests.standins.graph import GraphStandIn  # noqa: E402
from tests.standins.slack_api import SlackWebApiStandIn  # noqa: E402
from tests.standins.slack_signing import (  # noqa: E402
    SlackSender,
    app_home_opened_body,
    block_actions_body,
    home_click_body,
    slash_command_body,
    view_submission_body,
)
from tests.support.azurite import azurite, free_port  # noqa: E402

__all__ = [
    "AZURITE_ACCOUNT",
    "FAST_CLIENT_KWARGS",
    "AzureStandIn",
    "AzureState",
    "FakeCredential",
    "GraphStandIn",
    "MANIFEST",
    "Identity",
    "SlackSender",
    "SlackWebApiStandIn",
    "Workspace",
    "app_home_opened_body",
    "azurite",
    "block_actions_body",
    "home_click_body",
    "free_port",
    "slash_command_body",
    "standin_environment",
    "view_submission_body",
]

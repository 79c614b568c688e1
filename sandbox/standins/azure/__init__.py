"""A local stand-in for Azure Resource Manager and the Azure ML control plane, for the real SDKs.

``AzureStandIn`` (server.py) serves the REST API from an in-memory ``AzureState`` (state.py);
``ml_client``/``resource_client`` (client.py) build the real SDK clients against it.
"""

from sandbox.standins.azure.client import (
    FakeCredential,
    ml_client,
    resource_client,
    standin_environment,
)
from sandbox.standins.azure.server import AzureStandIn, Call, Exchange, LroSettings
from sandbox.standins.azure.state import AZURITE_ACCOUNT, AZURITE_KEY, AzureState, Identity, Workspace

__all__ = [
    "AZURITE_ACCOUNT",
    "AZURITE_KEY",
    "AzureStandIn",
    "AzureState",
    "Call",
    "Exchange",
    "FakeCredential",
    "Identity",
    "LroSettings",
    "Workspace",
    "ml_client",
    "resource_client",
    "standin_environment",
]

"""Build the REAL Azure SDK clients against the stand-in, the way production code builds them.

How production code should construct its clients
================================================
Production builds its clients in ``commands.azure.control.WorkspaceControl`` from three inputs:
a credential (``DefaultAzureCredential`` there, ``FakeCredential`` here), the resource-manager
endpoint (``arm_endpoint`` in the config; here ``standin.url``, reached through a custom cloud made
by ``commands.azure.control.cloud_kwargs``), and pass-through client options (retries, polling).
The helpers below build the same clients the same way, so the stand-in proves production's code.

What the test environment must also provide (``standin_environment``)
---------------------------------------------------------------------
* ``REQUESTS_CA_BUNDLE`` = ``standin.ca_bundle``: the stand-in serves HTTPS with its own CA, because
  azure-core refuses bearer tokens over http and azure-ai-ml builds some ARM clients internally
  (``workspaces.begin_delete(delete_dependent_resources=True)`` uses a private
  ``ResourceManagementClient`` whose pipeline we cannot reach). HTTPS makes every client work unchanged.
* ``AZUREML_CURRENT_CLOUD``: MLClient *writes* this process-wide variable to the cloud name, and those
  internal clients read it back to find the ARM endpoint; save/restore it around each test
  (``monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)`` does that).
* no ``AZUREML_DEV_URL_MFE``: it would override MLClient's ARM endpoint.
"""

from __future__ import annotations

import time
from typing import Any

from azure.ai.ml import MLClient
from azure.core.credentials import AccessToken
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.resource.resources import ResourceManagementClient

from commands.azure.control import cloud_kwargs
from sandbox.standins.azure.server import MANAGED_IDENTITY_PATH, AzureStandIn
from sandbox.standins.azure.state import DEFAULT_TENANT, unsigned_token

# Fast, bounded retries and polls for tests; production leaves these at the SDK defaults.
TEST_CLIENT_KWARGS: dict[str, Any] = {
    "retry_total": 3,
    "retry_backoff_factor": 0.01,
    "retry_backoff_max": 0.05,
    "polling_interval": 0,
}


class FakeCredential:
    """A ``TokenCredential`` whose token is an unsigned JWT with tenant/object id claims (the SDK
    decodes ``tid`` to decorate studio URLs). Records the scopes it was asked for."""

    def __init__(
        self, tenant_id: str = DEFAULT_TENANT, object_id: str = "0b07a000-0000-4000-8000-000000000001"
    ) -> None:
        self.tenant_id, self.object_id = tenant_id, object_id
        self.scopes: list[tuple[str, ...]] = []

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self.scopes.append(scopes)
        expires = int(time.time()) + 3600
        claims_body = {
            "aud": scopes[0] if scopes else "",
            "tid": tenant_id or self.tenant_id,
            "oid": self.object_id,
            "exp": expires,
        }
        return AccessToken(unsigned_token(claims_body), expires)


class AllowHttpBearerPolicy(SansIOHTTPPolicy[Any, Any]):
    """Only for ``AzureStandIn(tls=False)``: lets azure-core's bearer policy send a token over http.

    Must run before the authentication policy, so pass it as ``per_call_policies``. It cannot reach
    clients the SDK builds internally (the dependent-resource deletes of workspaces.begin_delete).
    """

    def on_request(self, request: PipelineRequest[Any]) -> None:
        request.context["enforce_https"] = False


def client_kwargs(standin: AzureStandIn) -> dict[str, Any]:
    kwargs = dict(TEST_CLIENT_KWARGS)
    if not standin.tls:
        kwargs["per_call_policies"] = [AllowHttpBearerPolicy()]
    return kwargs


def standin_environment(standin: AzureStandIn) -> dict[str, str | None]:
    """Environment for the test process (apply with monkeypatch; ``None`` means unset)."""
    return {"REQUESTS_CA_BUNDLE": standin.ca_bundle, "AZUREML_DEV_URL_MFE": None}


def ml_client(
    standin: AzureStandIn,
    subscription_id: str,
    resource_group: str,
    workspace: str | None,
    *,
    credential: Any | None = None,
    **kwargs: Any,
) -> MLClient:
    """The real ``MLClient``, pointed at the stand-in through a custom cloud."""
    return MLClient(
        credential or FakeCredential(),
        subscription_id,
        resource_group,
        workspace,
        enable_telemetry=False,
        show_progress=False,
        **cloud_kwargs(standin.url),
        **{**client_kwargs(standin), **kwargs},
    )


def resource_client(
    standin: AzureStandIn, subscription_id: str, *, credential: Any | None = None, **kwargs: Any
) -> ResourceManagementClient:
    """The real ``ResourceManagementClient`` with ``base_url`` at the stand-in."""
    return ResourceManagementClient(
        credential or FakeCredential(),
        subscription_id,
        base_url=standin.url,
        credential_scopes=[f"{standin.url}/.default"],
        **{**client_kwargs(standin), **kwargs},
    )


def managed_identity_environment(standin: AzureStandIn) -> dict[str, str]:
    """Environment for a bot in another process: DefaultAzureCredential signs in as an App Service
    managed identity whose token endpoint is the stand-in's, and trusts the stand-in's CA."""
    return {
        "REQUESTS_CA_BUNDLE": standin.ca_bundle,
        "IDENTITY_ENDPOINT": f"{standin.url}{MANAGED_IDENTITY_PATH}",
        "IDENTITY_HEADER": "stand-in-identity-secret",
    }

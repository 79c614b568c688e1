"""Where one workspace lives, as the config file names it by alias."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict

# A user delegation key, and so every link it signs, must expire within 7 days of its issue.
USER_DELEGATION_LIMIT = timedelta(days=7)


class WorkspaceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subscription_id: str
    resource_group: str
    workspace_name: str
    # Overrides for sovereign clouds, private endpoints and local stand-ins.
    arm_endpoint: str | None = None
    storage_account_url: str | None = None
    # A storage connection string (with an account key); without it the bot signs in with
    # Entra ID (DefaultAzureCredential) and links are user-delegation SAS.
    storage_connection_string: str | None = None
    artifact_container: str = "azureml"
    # The default datastore's container (`azureml-blobstore-<workspace-guid>`), where runs write
    # named outputs; when unset, the container of the datastore the workspace marks `isDefault`.
    blobstore_container: str | None = None
    exports_container: str = "amlbot-exports"

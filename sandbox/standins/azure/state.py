"""In-memory model of the Azure resources the stand-in serves.

Everything is stored in its REST (wire) shape, as the Azure ML control plane (2024-04-01 .. 2025-12-01
api-versions) and Azure Resource Manager return it, so the server only has to filter, page and
serialise. Tests seed it through the ``add_*`` methods and inspect it directly afterwards.

Names are matched case-insensitively, as ARM does. All access goes through ``AzureState.lock``: the
server answers from its own thread while tests seed and inspect from theirs.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from sandbox.standins.azurite import ACCOUNT as AZURITE_ACCOUNT
from sandbox.standins.azurite import KEY as AZURITE_KEY

Json = dict[str, Any]

ML = "Microsoft.MachineLearningServices"
WORKSPACE_TYPE = f"{ML}/workspaces"
# Datastores name the well-known Azurite account (AZURITE_ACCOUNT), so they can point at a local
# Azurite without extra setup.
# The share every workspace's `workspaceworkingdirectory` datastore names (Microsoft Learn, prompt flow FAQ).
NOTEBOOKS_SHARE = "code-391ff5ac-6576-460f-ba4d-7e03433c68b6"
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"

TERMINAL_JOB_STATES = frozenset({"Completed", "Failed", "Canceled", "NotResponding", "Paused"})


def iso(value: dt.datetime | str | None = None) -> str:
    """An ISO-8601 UTC timestamp as ARM writes them (``2024-05-01T10:00:00.123456Z``)."""
    if isinstance(value, str):
        return value
    value = value or dt.datetime.now(dt.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def unsigned_token(claims: Json) -> str:
    """A JWT with these claims and no signature: what the stand-ins hand out and accept."""
    parts = ({"alg": "none", "typ": "JWT"}, claims)
    return ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=") for part in parts) + "."


def _short_id(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Identity:
    """A principal, as it appears in ``systemData`` and in run-history ``createdBy`` records.

    The variants are the real ones: ``systemData.createdBy`` shows a person by display name (what
    Azure ML records for most people, ``shows="name"``) or by UPN (``shows="upn"``), and an
    application or managed identity by a GUID (``app_id``, else its object id) with
    ``createdByType`` "Application" / "ManagedIdentity". Run history's ``createdBy`` has the object
    id, PUID and name (an application's app id, as azure-ai-ml's ``User`` model documents), and a
    ``upn`` that is often null (recordings show ``upn: null`` with ``userIdp: "live.com"``)."""

    name: str = "Jane Doe"
    object_id: str = "4c1a9b52-1e45-4c7d-9b61-8a1f3f0e2d11"
    tenant_id: str = DEFAULT_TENANT
    upn: str | None = "jane.doe@contoso.com"
    puid: str = "10032001A2B3C4D5"
    kind: str = "User"  # systemData.createdByType: "User" | "Application" | "ManagedIdentity" | "Key"
    shows: str = "upn"  # a user's systemData.createdBy: "upn" or "name"
    upn_in_history: bool = True  # False: run history's `upn` is null
    idp: str | None = None  # run history's userIdp, e.g. "live.com" for a personal account
    app_id: str | None = None  # an application's client id, shown in place of a name

    @property
    def shown(self) -> str:
        if self.kind != "User":
            return self.app_id or self.object_id
        return self.upn if self.shows == "upn" and self.upn else self.name

    def system_data(self, created_at: str, modified_at: str | None = None) -> Json:
        return {
            "createdAt": created_at,
            "createdBy": self.shown,
            "createdByType": self.kind,
            "lastModifiedAt": modified_at or created_at,
            "lastModifiedBy": self.shown,
            "lastModifiedByType": self.kind,
        }

    def run_history_user(self) -> Json:
        """The eight-field ``createdBy`` object of a run-history record."""
        person = self.kind == "User"
        return {
            "userObjectId": self.object_id,
            "userPuId": self.puid if person else None,
            "userIdp": self.idp,
            "userAltSecId": f"1:{self.idp}:{self.puid}" if self.idp else None,
            "userIss": f"https://sts.windows.net/{self.tenant_id}/",
            "userTenantId": self.tenant_id,
            "userName": self.name if person else self.app_id or self.object_id,
            "upn": self.upn if person and self.upn_in_history else None,
        }


DEFAULT_USER = Identity()


def _endpoint_system_data(who: Identity, created_at: str) -> Json:
    """Online and batch endpoints carry a shorter ``systemData`` than other resources (recordings
    online_services/…test_online_endpoint_e2e, batch_services/…test_batch_endpoint_create)."""
    created_by = who.upn if who.kind == "User" and who.upn else who.name
    return {"createdAt": created_at, "createdBy": created_by, "lastModifiedAt": created_at}


def _identity(value: Identity | str | None) -> Identity:
    if value is None:
        return DEFAULT_USER
    if isinstance(value, str):
        return Identity(name=value, upn=value if "@" in value else None)
    return value


@dataclass
class GenericResource:
    """A resource of another provider (storage account, key vault, ...) reachable through ARM by id."""

    id: str
    type: str
    name: str
    location: str
    kind: str | None = None
    properties: Json = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    sku: Json | None = None
    # Storage accounts: the properties of their `blobServices/default` (as BlobServicesGet.json has them).
    blob_service: Json = field(default_factory=lambda: {
        "deleteRetentionPolicy": {"enabled": False},
        "containerDeleteRetentionPolicy": {"enabled": False},
        "isVersioningEnabled": False,
    })

    def blob_service_rest(self) -> Json:
        body: Json = {"id": f"{self.id}/blobServices/default", "name": "default",
                      "type": "Microsoft.Storage/storageAccounts/blobServices", "properties": dict(self.blob_service)}
        return {**body, "sku": dict(self.sku)} if self.sku is not None else body

    def to_rest(self) -> Json:
        body: Json = {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "location": self.location,
            "tags": dict(self.tags),
            "properties": dict(self.properties),
        }
        if self.kind is not None:
            body["kind"] = self.kind
        if self.sku is not None:
            body["sku"] = dict(self.sku)
        return body


@dataclass
class AssetContainer:
    """A versioned asset's container and its versions (models, data, environments, components, codes)."""

    container: Json
    versions: dict[str, Json] = field(default_factory=dict)  # keyed by version string


# The versioned-asset REST collections, each held in the Workspace attribute of the same name.
ASSET_COLLECTIONS = ("models", "data", "environments", "components", "codes")


@dataclass
class Workspace:
    subscription_id: str
    resource_group: str
    name: str
    location: str
    workspace_id: str
    kind: str
    friendly_name: str
    storage_account_id: str | None
    key_vault_id: str | None
    application_insights_id: str | None
    container_registry_id: str | None
    created_by: Identity
    created_at: str
    provisioning_state: str = "Succeeded"
    jobs: dict[str, Json] = field(default_factory=dict)
    models: dict[str, AssetContainer] = field(default_factory=dict)
    data: dict[str, AssetContainer] = field(default_factory=dict)
    environments: dict[str, AssetContainer] = field(default_factory=dict)
    components: dict[str, AssetContainer] = field(default_factory=dict)
    codes: dict[str, AssetContainer] = field(default_factory=dict)
    schedules: dict[str, Json] = field(default_factory=dict)
    computes: dict[str, Json] = field(default_factory=dict)
    online_endpoints: dict[str, Json] = field(default_factory=dict)
    batch_endpoints: dict[str, Json] = field(default_factory=dict)
    datastores: dict[str, Json] = field(default_factory=dict)
    datastore_secrets: dict[str, Json] = field(default_factory=dict)
    # Run-history records (the data plane behind discoveryUrl), keyed by run id.
    runs: dict[str, Json] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{WORKSPACE_TYPE}/{self.name}"
        )

    @property
    def blob_container(self) -> str:
        """Container of the default datastore ``workspaceblobstore``."""
        return f"azureml-blobstore-{self.workspace_id}"

    def child_id(self, collection: str, name: str) -> str:
        return f"{self.id}/{collection}/{name}"

    def to_rest(self, base_url: str) -> Json:
        host = base_url.split("://", 1)[-1]
        return {
            "id": self.id,
            "name": self.name,
            "type": WORKSPACE_TYPE,
            "location": self.location,
            "kind": self.kind,
            "tags": {},
            "etag": None,
            "identity": {
                "type": "SystemAssigned",
                "principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, self.id)),
                "tenantId": self.created_by.tenant_id,
            },
            "sku": {"name": "Basic", "tier": "Basic"},
            "properties": {
                "friendlyName": self.friendly_name,
                "description": "",
                "storageAccount": self.storage_account_id,
                "keyVault": self.key_vault_id,
                "applicationInsights": self.application_insights_id,
                "containerRegistry": self.container_registry_id,
                # The SDK GETs this document to find the data-plane services (run history, ...).
                "discoveryUrl": f"{base_url}/discovery",
                "workspaceId": self.workspace_id,
                "provisioningState": self.provisioning_state,
                "mlFlowTrackingUri": (
                    f"azureml://{host}/mlflow/v1.0/subscriptions/{self.subscription_id}"
                    f"/resourceGroups/{self.resource_group}/providers/{WORKSPACE_TYPE}/{self.name}"
                ),
                "hbiWorkspace": False,
                "publicNetworkAccess": "Enabled",
                "v1LegacyMode": False,
                "softDeleteRetentionInDays": 14,
                "systemDatastoresAuthMode": "accesskey",
                "storageHnsEnabled": False,
                # The rest of what every recorded workspace GET carries (workspace/…create_and_delete,
                # online_services/…online_endpoint_e2e).
                "tenantId": self.created_by.tenant_id,
                "creationTime": self.created_at,
                "imageBuildCompute": None,
                "managedNetwork": {"changeableIsolationModes": ["AllowInternetOutbound", "AllowOnlyApprovedOutbound"],
                                   "isolationMode": "Disabled"},
                "softDeleteEnabled": False,
                "notebookInfo": {"resourceId": self.workspace_id.replace("-", ""),
                                 "fqdn": f"ml-{self.name}-{self.location}-{self.workspace_id}.{self.location}.notebooks.azure.net",
                                 "isPrivateLinkEnabled": False, "notebookPreparationError": None},
                "linkedModelInventoryArmId": None,
                "privateLinkCount": 0,
                "ipAllowlist": [],
                "enableDataIsolation": False,
            },
            "systemData": self.created_by.system_data(self.created_at),
        }

    # ----------------------------------------------------------------------------------- jobs
    def add_job(
        self,
        name: str | None = None,
        *,
        experiment_name: str = "Default",
        status: str = "Completed",
        job_type: str = "Command",
        created_by: Identity | str | None = None,
        created_at: dt.datetime | str | None = None,
        display_name: str | None = None,
        compute: str | None = "cpu-cluster",
        outputs: dict[str, Json] | None = None,
        parent_job_name: str | None = None,
        inputs: dict[str, Json] | None = None,
        is_archived: bool = False,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        run_type: str | None = None,
    ) -> Json:
        """Seed a job. ``parent_job_name`` makes it a child run (a pipeline step, a sweep trial, an
        AutoML child, at any depth): visible only through run history, under its parent."""
        name = name or f"job_{uuid.uuid4().hex[:10]}"
        who = _identity(created_by)
        created = iso(created_at)
        if outputs is None:
            # A v2 job's default output lives in the artifact store under ExperimentRun/dcid.<name>.
            outputs = {
                "default": {
                    "jobOutputType": "uri_folder",
                    "uri": f"azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.{name}",
                    "mode": "ReadWriteMount",
                }
            }
        props: Json = {
            "jobType": job_type,
            "status": status,
            "experimentName": experiment_name,
            "displayName": display_name or name,
            "description": None,
            "tags": dict(tags or {}),
            "properties": dict(properties or {}),
            "isArchived": is_archived,
            "computeId": self.child_id("computes", compute) if compute else None,
            "inputs": dict(inputs or {}),
            "outputs": outputs,
            "services": {
                "Tracking": {
                    "jobServiceType": "Tracking",
                    "endpoint": f"azureml://{self.location}.api.azureml.ms/mlflow/v1.0{self.id}",
                },
                "Studio": {"jobServiceType": "Studio", "endpoint": f"https://ml.azure.com/runs/{name}?wsid={self.id}"},
            },
        }
        if job_type == "Command":
            props.update(
                {
                    "command": "python train.py",
                    "environmentId": "azureml://registries/azureml/environments/sklearn-1.5/versions/1",
                    "codeId": None,
                    "environmentVariables": {},
                    "parameters": {},
                    "resources": {"instanceCount": 1, "shmSize": "2g"},
                    "limits": {"jobLimitsType": "Command"},
                    "queueSettings": {"jobTier": "Null"},
                }
            )
        elif job_type == "Pipeline":
            props.update({"jobs": {}, "settings": {}})
        elif job_type == "Sweep":  # as a sweep job's GET answers (recordings: sweep_job/test_sweep_job_submit_minimal)
            props.update(
                {
                    "searchSpace": {"lr": ["uniform", [0.001, 0.1]]},
                    "samplingAlgorithm": {"samplingAlgorithmType": "Random", "seed": None, "logbase": None, "rule": "Random"},
                    "limits": {"jobLimitsType": "Sweep", "maxTotalTrials": 4, "maxConcurrentTrials": 2, "timeout": "PT1H"},
                    "earlyTermination": None,
                    "objective": {"primaryMetric": "accuracy", "goal": "Maximize"},
                    "trial": {
                        "command": "python sweep.py --lr ${{search_space.lr}}",
                        "environmentId": "azureml://registries/azureml/environments/sklearn-1.5/versions/1",
                        "environmentVariables": {},
                        "resources": {"instanceCount": 1, "shmSize": "2g"},
                    },
                    "queueSettings": {"jobTier": "Null"},
                }
            )
        elif job_type == "AutoML":
            props.update(
                {
                    "environmentVariables": {},
                    "resources": {"instanceCount": 1, "shmSize": "2g"},
                    "taskDetails": {
                        "taskType": "Classification",
                        "targetColumnName": "y",
                        "primaryMetric": "Accuracy",
                        "trainingData": {"jobInputType": "mltable", "uri": "azureml:churn-train:1", "mode": "ReadOnlyMount"},
                        "limitSettings": {"maxTrials": 4, "timeout": "PT1H"},
                        "logVerbosity": "Info",
                    },
                    "queueSettings": {"jobTier": "Null"},
                }
            )
        job: Json = {
            "id": self.child_id("jobs", name),
            "name": name,
            "type": f"{WORKSPACE_TYPE}/jobs",
            "properties": props,
            "systemData": who.system_data(created),
        }
        # Every job has a run-history record; pipeline steps have only that.
        self.runs[name] = self._run_record(name, job, who, parent_job_name, run_type)
        if parent_job_name is None:
            self.jobs[name.lower()] = job
        return job

    def _run_record(self, name: str, job: Json, who: Identity, parent: str | None, run_type: str | None) -> Json:
        """A run-history record, with the fields run history answers for a pipeline step (recording
        pipeline_job/test_pipeline_job_get_child_run: its `children` answer)."""
        props = job["properties"]
        user = who.run_history_user()
        above = self.runs.get(parent) if parent else None
        kind = run_type or ("azureml.StepRun" if parent else "azureml.scriptrun")
        return {
            "runId": name,
            "runUuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.id}/runs/{name}")),
            "parentRunId": parent,
            "rootRunId": above["rootRunId"] if above else name,
            "parentRunUuid": above["runUuid"] if above else None,
            "rootRunUuid": above["rootRunUuid"] if above else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.id}/runs/{name}")),
            "dataContainerId": f"dcid.{name}",
            "runNumber": len(self.runs) + 1,
            "experimentId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.id}/{props['experimentName']}")),
            "name": props["displayName"],
            "displayName": props["displayName"],
            "status": props["status"],
            "runType": kind,
            "createdUtc": job["systemData"]["createdAt"],
            "startTimeUtc": job["systemData"]["createdAt"],
            "endTimeUtc": job["systemData"]["createdAt"] if props["status"] in TERMINAL_JOB_STATES else None,
            "createdBy": user,
            "lastModifiedBy": user,
            "userId": who.object_id,
            "target": (props.get("computeId") or "").rsplit("/", 1)[-1] or None,
            "properties": {"azureml.runsource": kind},
            "tags": dict(props.get("tags") or {}),
            "hidden": False,
        }

    # ------------------------------------------------------------------------ versioned assets
    def collection(self, name: str) -> dict[str, AssetContainer]:
        """The containers of one versioned-asset collection (``models``, ``data``, ``codes``, …)."""
        assert name in ASSET_COLLECTIONS, name
        containers: dict[str, AssetContainer] = getattr(self, name)
        return containers

    def _add_version(
        self,
        collection: str,
        name: str,
        version: str,
        properties: Json,
        *,
        is_archived: bool,
        created_by: Identity | str | None,
        created_at: dt.datetime | str | None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Json:
        """Seed one version (and its container on first use), in the REST shape of ``collection``."""
        who = _identity(created_by)
        created = iso(created_at)
        containers = self.collection(collection)
        entry = containers.get(name.lower())
        if entry is None:
            entry = AssetContainer(
                container={
                    "id": self.child_id(collection, name),
                    "name": name,
                    "type": f"{WORKSPACE_TYPE}/{collection}",
                    "properties": {
                        "description": None,
                        "tags": {},
                        "properties": {},
                        "isArchived": False,
                        "latestVersion": version,
                        "nextVersion": None,
                        "provisioningState": "Succeeded",
                    },
                    "systemData": who.system_data(created),
                }
            )
            containers[name.lower()] = entry
        entry.versions[version] = {
            "id": f"{self.child_id(collection, name)}/versions/{version}",
            "name": version,
            "type": f"{WORKSPACE_TYPE}/{collection}/versions",
            "properties": {
                "description": description,
                "tags": dict(tags or {}),
                "properties": {},
                "isArchived": is_archived,
                "isAnonymous": False,
                "provisioningState": "Succeeded",
                **properties,
            },
            "systemData": who.system_data(created),
        }
        self.refresh_container(collection, name)
        return entry.versions[version]

    def refresh_container(self, collection: str, name: str) -> None:
        """Keep latestVersion/nextVersion in step with the versions, as the service does."""
        entry = self.collection(collection)[name.lower()]
        numeric = sorted((int(v) for v in entry.versions if v.isdigit()), reverse=True)
        props = entry.container["properties"]
        props["latestVersion"] = str(numeric[0]) if numeric else (max(entry.versions) if entry.versions else None)
        props["nextVersion"] = str(numeric[0] + 1) if numeric else "1"

    def datastore_uri(self, store: str, path: str) -> str:
        """The long-form ``azureml://`` URI the service writes for a datastore path."""
        return (
            f"azureml://subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/workspaces/{self.name}/datastores/{store}/paths/{path}"
        )

    def upload_url(self, path: str) -> str:
        """An https URL in the default datastore's container, as the SDK records a local upload
        (an environment's build context, a code asset)."""
        props = self.datastores["workspaceblobstore"]["properties"]
        return f"https://{props['accountName']}.blob.{props['endpoint']}/{props['containerName']}/{path}"

    def add_model_version(
        self,
        name: str,
        version: str = "1",
        *,
        model_uri: str | None = None,
        job_name: str | None = None,
        is_archived: bool = False,
        model_type: str = "custom_model",
        created_by: Identity | str | None = None,
        created_at: dt.datetime | str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Json:
        if model_uri is None:
            model_uri = (
                self.datastore_uri("workspaceartifactstore", f"ExperimentRun/dcid.{job_name}/outputs/model")
                if job_name
                else self.datastore_uri("workspaceblobstore", f"LocalUpload/{_short_id(self.id, name, version)}/{name}")
            )
        properties = {"flavors": {}, "jobName": job_name, "modelType": model_type, "modelUri": model_uri,
                      "stage": "Development", "autoDeleteSetting": None, "intellectualProperty": None}
        return self._add_version("models", name, version, properties, is_archived=is_archived, created_by=created_by,
                                 created_at=created_at, description=description, tags=tags)

    def add_data_version(
        self,
        name: str,
        version: str = "1",
        *,
        path: str | None = None,
        data_type: str = "uri_folder",
        is_archived: bool = False,
        created_by: Identity | str | None = None,
        created_at: dt.datetime | str | None = None,
    ) -> Json:
        """Seed a data asset version; by default its files are a local upload to workspaceblobstore."""
        if path is None:
            leaf = f"{name}.csv" if data_type == "uri_file" else f"{name}/"
            path = self.datastore_uri("workspaceblobstore", f"LocalUpload/{_short_id(self.id, name, version)}/{leaf}")
        properties = {"dataType": data_type, "dataUri": path, "stage": "Development"}
        return self._add_version("data", name, version, properties, is_archived=is_archived, created_by=created_by,
                                 created_at=created_at)

    def add_environment_version(
        self,
        name: str,
        version: str = "1",
        *,
        context_uri: str | None = None,
        image: str | None = None,
        is_archived: bool = False,
        created_by: Identity | str | None = None,
        created_at: dt.datetime | str | None = None,
    ) -> Json:
        """Seed an environment version: built from an uploaded context (the SDK's https URL with a
        trailing slash) unless an ``image`` is given."""
        properties: Json = {"osType": "Linux", "environmentType": "UserCreated", "autoRebuild": "Disabled",
                            "condaFile": None, "image": image, "build": None, "stage": "Development"}
        if image is None:
            context = context_uri or self.upload_url(f"LocalUpload/{_short_id(self.id, name, version)}/{name}/")
            properties["build"] = {"contextUri": context, "dockerfilePath": "Dockerfile"}
        return self._add_version("environments", name, version, properties, is_archived=is_archived,
                                 created_by=created_by, created_at=created_at)

    def add_code_version(self, name: str, version: str = "1", *, code_uri: str | None = None,
                         created_by: Identity | str | None = None) -> Json:
        """Seed a code asset (a snapshot of a component's or job's source), as the SDK uploads it."""
        uri = code_uri or self.upload_url(f"LocalUpload/{_short_id(self.id, name, version)}/src")
        return self._add_version("codes", name, version, {"codeUri": uri}, is_archived=False, created_by=created_by,
                                 created_at=None)

    def add_component_version(
        self,
        name: str,
        version: str = "1",
        *,
        code: str | None = None,
        is_archived: bool = False,
        created_by: Identity | str | None = None,
        created_at: dt.datetime | str | None = None,
    ) -> Json:
        """Seed a command component; ``code`` is the ARM id of its code asset version."""
        spec: Json = {
            "$schema": "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json",
            "name": name,
            "version": version,
            "display_name": name,
            "type": "command",
            "is_deterministic": True,
            "command": "python run.py",
            "environment": "azureml://registries/azureml/environments/sklearn-1.5/versions/1",
            "inputs": {},
            "outputs": {},
        }
        if code is not None:
            spec["code"] = f"azureml:{code}"  # how the service keeps a code reference
        return self._add_version("components", name, version, {"componentSpec": spec}, is_archived=is_archived,
                                 created_by=created_by, created_at=created_at)

    # ------------------------------------------------------------------------------ schedules
    def add_schedule(
        self,
        name: str,
        *,
        experiment_name: str = "Default",
        cron: str = "0 3 * * *",
        enabled: bool = True,
        created_by: Identity | str | None = None,
        created_at: dt.datetime | str | None = None,
    ) -> Json:
        """Seed a schedule that creates a pipeline job on a cron trigger (what the SDK can create)."""
        who = _identity(created_by)
        schedule = {
            "id": self.child_id("schedules", name),
            "name": name,
            "type": f"{WORKSPACE_TYPE}/schedules",
            "properties": {
                "displayName": name,
                "description": None,
                "tags": {},
                "properties": {},
                "isEnabled": enabled,
                "provisioningState": "Succeeded",
                "trigger": {"triggerType": "Cron", "expression": cron, "timeZone": "UTC", "startTime": None, "endTime": None},
                "action": {
                    "actionType": "CreateJob",
                    "jobDefinition": {
                        "jobType": "Pipeline",
                        "experimentName": experiment_name,
                        "displayName": f"{name} run",
                        "isArchived": False,
                        "inputs": {},
                        "outputs": {},
                        "jobs": {},
                        "settings": {},
                        "tags": {},
                        "properties": {},
                    },
                },
            },
            "systemData": who.system_data(iso(created_at)),
        }
        self.schedules[name.lower()] = schedule
        return schedule

    # ------------------------------------------------------------------------------- computes
    def add_compute(
        self,
        name: str,
        *,
        vm_size: str = "STANDARD_DS3_V2",
        min_nodes: int = 0,
        max_nodes: int = 4,
        current_nodes: int = 0,
        running_nodes: int = 0,
        preparing_nodes: int = 0,
        allocation_state: str = "Steady",
        allocation_changed: dt.datetime | str | None = None,
        idle_before_scale_down: str = "PT2M",
        provisioning_state: str = "Succeeded",
        created_on: dt.datetime | str | None = None,
        modified_on: dt.datetime | str | None = None,
    ) -> Json:
        """Seed an AmlCompute cluster. Of its ``current_nodes``, ``running_nodes`` run jobs and
        ``preparing_nodes`` get ready for one; the rest are idle. ``allocation_changed`` is when it
        last scaled (``allocationStateTransitionTime``), by default when it was created. The service
        sends no ``systemData`` for computes: who made one is not on the wire."""
        assert running_nodes + preparing_nodes <= current_nodes, "busy nodes are among the current ones"
        created = iso(created_on)
        inner = {
            "vmSize": vm_size,
            "vmPriority": "Dedicated",
            "scaleSettings": {
                "maxNodeCount": max_nodes,
                "minNodeCount": min_nodes,
                "nodeIdleTimeBeforeScaleDown": idle_before_scale_down,
            },
            "subnet": None,
            "currentNodeCount": current_nodes,
            "targetNodeCount": current_nodes,
            "nodeStateCounts": {
                "idleNodeCount": current_nodes - running_nodes - preparing_nodes,
                "runningNodeCount": running_nodes,
                "preparingNodeCount": preparing_nodes,
                "unusableNodeCount": 0,
                "leavingNodeCount": 0,
                "preemptedNodeCount": 0,
            },
            "allocationState": allocation_state,
            "allocationStateTransitionTime": iso(allocation_changed) if allocation_changed else created,
            "errors": None,
            "remoteLoginPortPublicAccess": "Enabled",
            "osType": "Linux",
            "virtualMachineImage": None,
            "isolatedNetwork": False,
            "enableNodePublicIp": True,
            "enableBatchPrivateLink": False,
            "propertyBag": {},
        }
        compute = self._compute(name, "AmlCompute", inner, created, iso(modified_on) if modified_on else created)
        compute["properties"]["provisioningState"] = provisioning_state
        return compute

    def add_attached_compute(
        self, name: str, resource_id: str, *, compute_type: str = "VirtualMachine", created_on: dt.datetime | str | None = None
    ) -> Json:
        """Seed a compute attached from elsewhere (a VM, a Kubernetes cluster): ``resourceId`` names
        the resource behind it, which a DELETE with ``underlyingResourceAction=Delete`` removes too."""
        created = iso(created_on)
        return self._compute(name, compute_type, {}, created, created, attached_to=resource_id)

    def _compute(
        self, name: str, compute_type: str, inner: Json, created: str, modified: str, *, attached_to: str | None = None
    ) -> Json:
        compute = {
            "id": self.child_id("computes", name),
            "name": name,
            "type": f"{WORKSPACE_TYPE}/computes",
            "location": self.location,
            "tags": {},
            "properties": {
                "computeType": compute_type,
                "computeLocation": self.location,
                "provisioningState": "Succeeded",
                "description": None,
                "createdOn": created,
                "modifiedOn": modified,
                "resourceId": attached_to,
                "provisioningErrors": None,
                "provisioningWarnings": {},
                "isAttachedCompute": attached_to is not None,
                "disableLocalAuth": True,
                "properties": inner,
            },
        }
        self.computes[name.lower()] = compute
        return compute

    # ------------------------------------------------------------------------------ endpoints
    def add_online_endpoint(
        self,
        name: str,
        *,
        auth_mode: str = "Key",
        traffic: dict[str, int] | None = None,
        provisioning_state: str = "Succeeded",
        created_by: Identity | str | None = None,
        created_at: dt.datetime | str | None = None,
    ) -> Json:
        who = _identity(created_by)
        endpoint = {
            "id": self.child_id("onlineEndpoints", name),
            "name": name,
            "type": f"{WORKSPACE_TYPE}/onlineEndpoints",
            "location": self.location,
            "kind": "Managed",
            "tags": {},
            "identity": {
                "type": "SystemAssigned",
                "principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, self.child_id("onlineEndpoints", name))),
                "tenantId": who.tenant_id,
            },
            "properties": {
                "authMode": auth_mode,
                "description": None,
                "properties": {},
                "scoringUri": f"https://{name}.{self.location}.inference.ml.azure.com/score",
                "swaggerUri": f"https://{name}.{self.location}.inference.ml.azure.com/swagger.json",
                "provisioningState": provisioning_state,
                "traffic": dict(traffic or {}),
                "mirrorTraffic": {},
                "compute": None,
                "publicNetworkAccess": "Enabled",
            },
            "systemData": _endpoint_system_data(who, iso(created_at)),
        }
        self.online_endpoints[name.lower()] = endpoint
        return endpoint

    def add_batch_endpoint(
        self,
        name: str,
        *,
        default_deployment: str | None = None,
        provisioning_state: str = "Succeeded",
        created_by: Identity | str | None = None,
        created_at: dt.datetime | str | None = None,
    ) -> Json:
        who = _identity(created_by)
        endpoint = {
            "id": self.child_id("batchEndpoints", name),
            "name": name,
            "type": f"{WORKSPACE_TYPE}/batchEndpoints",
            "location": self.location,
            "tags": {},
            "properties": {
                "authMode": "AADToken",
                "description": None,
                "properties": {},
                "scoringUri": f"https://{name}.{self.location}.inference.ml.azure.com/jobs",
                "swaggerUri": None,
                "provisioningState": provisioning_state,
                "defaults": {"deploymentName": default_deployment},
            },
            "systemData": _endpoint_system_data(who, iso(created_at)),
        }
        self.batch_endpoints[name.lower()] = endpoint
        return endpoint

    # ----------------------------------------------------------------------------- datastores
    def make_default_datastore(self, name: str) -> None:
        """Make another datastore the workspace's default, as `datastores.set_default` does."""
        for key, datastore in self.datastores.items():
            datastore["properties"]["isDefault"] = key == name.lower()

    def add_datastore(
        self,
        name: str,
        *,
        account_name: str,
        container_name: str | None = None,
        file_share_name: str | None = None,
        account_key: str | None = None,
        endpoint: str = "core.windows.net",
        is_default: bool = False,
    ) -> Json:
        """Seed an AzureBlob datastore (or AzureFile when ``file_share_name`` is given)."""
        props: Json = {
            "description": None,
            "tags": None,
            "properties": None,
            "isDefault": is_default,
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "accountName": account_name,
            "endpoint": endpoint,
            "protocol": "https",
            # Without a key the datastore reaches storage with an identity and has no secrets.
            "credentials": {"credentialsType": "AccountKey" if account_key is not None else "None"},
            "serviceDataAccessAuthIdentity": "WorkspaceSystemAssignedIdentity",
        }
        if file_share_name is not None:
            props.update({"datastoreType": "AzureFile", "fileShareName": file_share_name})
        else:
            props.update({"datastoreType": "AzureBlob", "containerName": container_name or name})
        datastore = {
            "id": self.child_id("datastores", name),
            "name": name,
            "type": f"{WORKSPACE_TYPE}/datastores",
            "properties": props,
            # The service creates these itself: no createdBy (model/…archive_restore_version recording).
            "systemData": {"createdAt": self.created_at, "lastModifiedAt": self.created_at},
        }
        self.datastores[name.lower()] = datastore
        if account_key is not None:
            self.datastore_secrets[name.lower()] = {"secretsType": "AccountKey", "key": account_key}
        return datastore


@dataclass
class ResourceGroup:
    subscription_id: str
    name: str
    location: str
    resources: dict[str, GenericResource] = field(default_factory=dict)  # keyed by lower-case id
    workspaces: dict[str, Workspace] = field(default_factory=dict)  # keyed by lower-case name

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.name}"

    def to_rest(self) -> Json:
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": self.location,
            "properties": {"provisioningState": "Succeeded"},
            "tags": {},
        }


class AzureState:
    """Subscriptions -> resource groups -> workspaces and generic resources."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.subscriptions: dict[str, dict[str, ResourceGroup]] = {}
        # ARM ids (as first stored) of everything removed, in order: tests assert on it.
        self.deleted: list[str] = []
        # Soft-deleted workspaces (DELETE without forceToPurge) are kept here, invisible to GET.
        self.soft_deleted_workspaces: dict[str, Workspace] = {}

    # -------------------------------------------------------------------------------- seeding
    def add_resource_group(self, subscription_id: str, name: str, location: str = "eastus") -> ResourceGroup:
        with self.lock:
            groups = self.subscriptions.setdefault(subscription_id.lower(), {})
            group = groups.get(name.lower())
            if group is None:
                group = groups[name.lower()] = ResourceGroup(subscription_id, name, location)
            return group

    def add_generic_resource(
        self,
        subscription_id: str,
        resource_group: str,
        resource_type: str,
        name: str,
        *,
        location: str = "eastus",
        kind: str | None = None,
        properties: Json | None = None,
        sku: Json | None = None,
    ) -> str:
        """Seed e.g. ``Microsoft.Storage/storageAccounts``; returns its ARM id."""
        with self.lock:
            group = self.add_resource_group(subscription_id, resource_group, location)
            arm_id = f"/subscriptions/{subscription_id}/resourceGroups/{group.name}/providers/{resource_type}/{name}"
            group.resources[arm_id.lower()] = GenericResource(
                id=arm_id,
                type=resource_type,
                name=name,
                location=location,
                kind=kind,
                properties=dict(properties or {}),
                sku=sku,
            )
            return arm_id

    def add_workspace(
        self,
        subscription_id: str,
        resource_group: str,
        name: str,
        *,
        location: str = "eastus",
        kind: str = "Default",
        workspace_id: str | None = None,
        friendly_name: str | None = None,
        storage_account_name: str | None = None,
        storage_account_key: str | None = None,
        storage_endpoint: str = "core.windows.net",
        with_dependents: bool = True,
        created_by: Identity | str | None = None,
        created_at: dt.datetime | str | None = None,
    ) -> Workspace:
        """Seed a workspace with its dependent resources and default datastores.

        ``storage_account_name``/``storage_account_key`` default to a generated name and key; pass
        ``AZURITE_ACCOUNT``/``AZURITE_KEY`` to make the datastores name a local Azurite account.
        """
        with self.lock:
            group = self.add_resource_group(subscription_id, resource_group, location)
            suffix = _short_id(subscription_id, resource_group, name)
            account = storage_account_name or f"{''.join(c for c in name.lower() if c.isalnum())[:12]}{suffix}"
            ids: dict[str, str | None] = dict.fromkeys(("storage", "vault", "insights", "registry"))
            if with_dependents:
                ids["storage"] = self.add_generic_resource(
                    subscription_id,
                    resource_group,
                    "Microsoft.Storage/storageAccounts",
                    account,
                    location=location,
                    kind="StorageV2",
                    sku={"name": "Standard_LRS", "tier": "Standard"},
                    properties={
                        "primaryEndpoints": {"blob": f"https://{account}.blob.{storage_endpoint}/"},
                        "provisioningState": "Succeeded",
                    },
                )
                ids["vault"] = self.add_generic_resource(
                    subscription_id,
                    resource_group,
                    "Microsoft.KeyVault/vaults",
                    f"kv{suffix}",
                    location=location,
                    # Soft delete is always on for new vaults; purge protection is off unless enabled.
                    properties={
                        "vaultUri": f"https://kv{suffix}.vault.azure.net/",
                        "tenantId": DEFAULT_TENANT,
                        "sku": {"family": "A", "name": "standard"},
                        "enableSoftDelete": True,
                        "softDeleteRetentionInDays": 90,
                        "enableRbacAuthorization": False,
                    },
                )
                logs = self.add_generic_resource(
                    subscription_id,
                    resource_group,
                    "Microsoft.OperationalInsights/workspaces",
                    f"log{suffix}",
                    location=location,
                    properties={"customerId": str(uuid.uuid4())},
                )
                # Workspace-based Application Insights names its Log Analytics workspace; the SDK's
                # dependent-resource deletion reads this to delete that one too.
                ids["insights"] = self.add_generic_resource(
                    subscription_id,
                    resource_group,
                    "Microsoft.Insights/components",
                    f"appi{suffix}",
                    location=location,
                    kind="web",
                    properties={"WorkspaceResourceId": logs, "ApplicationId": f"appi{suffix}"},
                )
                ids["registry"] = self.add_generic_resource(
                    subscription_id,
                    resource_group,
                    "Microsoft.ContainerRegistry/registries",
                    f"cr{suffix}",
                    location=location,
                    sku={"name": "Basic", "tier": "Basic"},
                    properties={"loginServer": f"cr{suffix}.azurecr.io"},
                )
            created = iso(created_at)
            workspace = Workspace(
                subscription_id=subscription_id,
                resource_group=group.name,
                name=name,
                location=location,
                workspace_id=workspace_id or str(uuid.uuid4()),
                kind=kind,
                friendly_name=friendly_name or name,
                storage_account_id=ids["storage"],
                key_vault_id=ids["vault"],
                application_insights_id=ids["insights"],
                container_registry_id=ids["registry"],
                created_by=_identity(created_by),
                created_at=created,
            )
            key = storage_account_key or (AZURITE_KEY if account == AZURITE_ACCOUNT else "ZmFrZS1hY2NvdW50LWtleQ==")
            workspace.add_datastore(
                "workspaceblobstore",
                account_name=account,
                container_name=workspace.blob_container,
                account_key=key,
                endpoint=storage_endpoint,
                is_default=True,
            )
            workspace.add_datastore(
                "workspaceartifactstore",
                account_name=account,
                container_name="azureml",
                account_key=key,
                endpoint=storage_endpoint,
            )
            # Studio keeps notebooks and user files in this share, one `Users/<alias>/` folder each.
            workspace.add_datastore(
                "workspaceworkingdirectory",
                account_name=account,
                account_key=key,
                endpoint=storage_endpoint,
                file_share_name=NOTEBOOKS_SHARE,
            )
            workspace.add_datastore(
                "workspacefilestore",
                account_name=account,
                account_key=key,
                endpoint=storage_endpoint,
                file_share_name=f"azureml-filestore-{workspace.workspace_id}",
            )
            group.workspaces[name.lower()] = workspace
            return workspace

    # -------------------------------------------------------------------------------- lookups
    def resource_group(self, subscription_id: str, name: str) -> ResourceGroup | None:
        return self.subscriptions.get(subscription_id.lower(), {}).get(name.lower())

    def workspace(self, subscription_id: str, resource_group: str, name: str) -> Workspace | None:
        group = self.resource_group(subscription_id, resource_group)
        return group.workspaces.get(name.lower()) if group else None

    def generic_resource(self, arm_id: str) -> GenericResource | None:
        parts = arm_id.strip("/").split("/")
        if len(parts) < 4:
            return None
        group = self.resource_group(parts[1], parts[3])
        return group.resources.get(arm_id.lower()) if group else None

    def remove_generic_resource(self, arm_id: str) -> bool:
        parts = arm_id.strip("/").split("/")
        group = self.resource_group(parts[1], parts[3]) if len(parts) >= 4 else None
        resource = group.resources.pop(arm_id.lower(), None) if group else None
        if resource is not None:
            self.deleted.append(resource.id)
        return resource is not None

    def remove_workspace(self, workspace: Workspace, *, purge: bool) -> None:
        group = self.resource_group(workspace.subscription_id, workspace.resource_group)
        if group is not None:
            group.workspaces.pop(workspace.name.lower(), None)
        # Computes, endpoints and queued/running jobs go at once; the rest is kept for a soft delete.
        active_jobs = {k: j for k, j in workspace.jobs.items() if j["properties"]["status"] not in TERMINAL_JOB_STATES}
        for collection in (workspace.computes, workspace.online_endpoints, workspace.batch_endpoints, active_jobs):
            self.deleted.extend(item["id"] for item in collection.values())
        for key in active_jobs:
            del workspace.jobs[key]
        workspace.computes.clear()
        workspace.online_endpoints.clear()
        workspace.batch_endpoints.clear()
        if purge:
            self.soft_deleted_workspaces.pop(workspace.id.lower(), None)
        else:
            workspace.provisioning_state = "SoftDeleted"
            self.soft_deleted_workspaces[workspace.id.lower()] = workspace
        self.deleted.append(workspace.id)

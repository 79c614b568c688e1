"""The demo: a channel, five people with roles, a policy, and a workspace with data in it.

The control plane gets its records through the Azure stand-in's seeding methods; the files behind
them (run history, logs, outputs, model files) go into Azurite, where the real storage SDK finds
them. Everything is small and made here, the same on every start.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from azure.storage.blob import BlobServiceClient

from sandbox.parts import AZURITE_ACCOUNT, AzureState, GraphStandIn, Identity, Workspace

TEAM = "T0SANDBOX1"
TEAM_DOMAIN = "amlbot-sandbox"
CHANNEL = "C0SBMLOPS1"
APPROVALS_CHANNEL = "C0SBAPPRV1"
CHANNELS = {CHANNEL: "ml-ops", APPROVALS_CHANNEL: "ml-approvals"}

SUBSCRIPTION = "5a4d0b0e-0000-4000-8000-000000000de0"
RESOURCE_GROUP = "rg-ml-demo"
WORKSPACE = "mlw-demo"
WORKSPACE_ID = "3f2a1c4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"
ALIAS = "demo"
ARTIFACTS = "azureml"
EXPORTS = "amlbot-exports"
# Not a secret: the sandbox's receipts are signed with it so `amlbot audit verify-receipt` can check them.
AUDIT_KEY = "amlbot-sandbox"


@dataclass(frozen=True)
class Person:
    id: str
    name: str  # Slack handle, typed as @name in the console
    real_name: str
    role: str  # what the switcher says they are
    email: str
    switchable: bool = True  # offered in the console's "acting as" list


REQUESTER = Person("U0SBREQ001", "riley", "Riley Requester", "requester", "riley@contoso.com")
APPROVER_1 = Person("U0SBAPP001", "avery", "Avery Approver", "approver", "avery@contoso.com")
APPROVER_2 = Person("U0SBAPP002", "blake", "Blake Approver", "approver", "blake@contoso.com")
ONCALL = Person("U0SBONC001", "casey", "Casey On-call", "on-call", "casey@contoso.com")
ADMIN = Person("U0SBADM001", "drew", "Drew Admin", "admin", "drew@contoso.com")
# People whose runs are in the workspace: mention them in `/aml export user @alice`.
ALICE = Person("U0SBALICE1", "alice", "Alice Chen", "data scientist", "alice@contoso.com", switchable=False)
BOB = Person("U0SBBOB001", "bob", "Bob Okafor", "data scientist", "bob@contoso.com", switchable=False)
PEOPLE = (REQUESTER, APPROVER_1, APPROVER_2, ONCALL, ADMIN, ALICE, BOB)

# Offered above the message box: a click fills it in.
SUGGESTIONS = (
    "/aml help",
    "/aml export run churn-train-01",
    "/aml delete experiment fraud",
    "/aml export model churn:2",
    "/aml export user @alice",
    "/aml delete compute gpu-a100",
    "/aml cleanup computes --idle 7d",
    "/aml list pending",
)


def _identity(person: Person, number: int) -> Identity:
    """As Azure ML shows most people: by display name on the control plane."""
    return Identity(
        name=person.real_name,
        object_id=f"{number:08x}-0000-4000-8000-{hashlib.sha1(person.id.encode()).hexdigest()[:12]}",
        upn=person.email,
        shows="name",
    )


AZURE_IDENTITY = {p.id: _identity(p, i + 1) for i, p in enumerate(PEOPLE)}
# A pipeline an application submitted: the control plane shows its client id.
NIGHTLY = Identity(name="nightly-retrain", object_id="0e1a7000-0000-4000-8000-000000000001", upn=None,
                   kind="Application", app_id="a9910000-0000-4000-8000-000000000001")


def seed_directory(graph: GraphStandIn) -> None:
    """Microsoft Graph's directory: everyone in the demo, by the same object id, UPN and name."""
    for person in PEOPLE:
        identity = AZURE_IDENTITY[person.id]
        graph.add_user(identity.name, person.email, object_id=identity.object_id, mail=person.email)


def policy() -> dict[str, Any]:
    everyone = [p.id for p in (REQUESTER, APPROVER_1, APPROVER_2, ONCALL, ADMIN)]
    return {
        "admins": [ADMIN.id],
        "requesters": {
            "export *": {"users": everyone},
            "delete *": {"users": [REQUESTER.id, APPROVER_1.id, APPROVER_2.id, ADMIN.id]},
            "cleanup *": {"users": [ONCALL.id, ADMIN.id]},
        },
        "approvers": {"users": [APPROVER_1.id, APPROVER_2.id, ADMIN.id]},
        "approvals_required": {"delete *": 1, "delete experiment": 2, "delete user": 2, "delete workspace": 2},
        "self_approval": ["export model"],
        "oncall": {"users": [ONCALL.id]},
        "oncall_self_approval_cap": 5,
        "approvers_channel": APPROVALS_CHANNEL,
        "expiry": "24h",
        "reminder_before": "2h",
        "cooling_off": "2m",
        "cooling_off_actions": ["delete user"],
    }


def config(storage_connection_string: str, arm_endpoint: str, graph_endpoint: str) -> dict[str, Any]:
    """The config file the bot would read, as data."""
    return {
        "graph_endpoint": graph_endpoint,
        "workspaces": {
            ALIAS: {
                "subscription_id": SUBSCRIPTION,
                "resource_group": RESOURCE_GROUP,
                "workspace_name": WORKSPACE,
                "storage_connection_string": storage_connection_string,
                "arm_endpoint": arm_endpoint,
                "artifact_container": ARTIFACTS,
                "exports_container": EXPORTS,
            }
        },
        "channel_defaults": {CHANNEL: ALIAS, APPROVALS_CHANNEL: ALIAS},
        "export_link_expiry": "1d",
        "policy": policy(),
    }


# ---- the workspace -------------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoRun:
    name: str
    experiment: str
    by: Identity
    days_ago: int
    status: str = "Completed"
    job_type: str = "Command"
    parent: str | None = None


def _runs() -> list[DemoRun]:
    alice, bob, riley = AZURE_IDENTITY[ALICE.id], AZURE_IDENTITY[BOB.id], AZURE_IDENTITY[REQUESTER.id]
    return [
        DemoRun("churn-train-01", "churn", alice, 20),
        DemoRun("churn-train-02", "churn", alice, 12),
        DemoRun("churn-pipeline-01", "churn", NIGHTLY, 5, job_type="Pipeline"),
        DemoRun("churn-prep-01", "churn", alice, 5, parent="churn-pipeline-01"),
        DemoRun("churn-train-03", "churn", alice, 0, status="Running"),
        DemoRun("fraud-train-01", "fraud", bob, 30),
        DemoRun("fraud-train-02", "fraud", bob, 9),
        DemoRun("fraud-eval-01", "fraud", riley, 2),
        DemoRun("forecast-train-01", "forecast", riley, 15),
    ]


def _noise(seed: str, size: int) -> bytes:
    """Incompressible bytes that are the same on every start."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def _run_files(run: DemoRun, when: dt.datetime) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(artifact store files, default datastore files) of one run."""
    stamp = when.strftime("%Y-%m-%d %H:%M:%S")
    root = f"ExperimentRun/dcid.{run.name}/"
    log_lines = "".join(f"[{stamp}] {run.name} step {i}: loss={1 / (i + 2):.4f}\n" for i in range(200))
    artifacts = {
        f"{root}azureml-logs/70_driver_log.txt": log_lines.encode(),
        f"{root}user_logs/std_log.txt": f"Starting {run.name} on cpu-cluster\n{log_lines}Done.\n".encode(),
        f"{root}logs/azureml/executionlogs.txt": f"[{stamp}] Run {run.name} is {run.status}\n".encode(),
        f"{root}outputs/metrics.json": json.dumps(
            {"run": run.name, "experiment": run.experiment, "auc": 0.81 + (len(run.name) % 7) / 100}, indent=2
        ).encode(),
    }
    outputs: dict[str, bytes] = {}
    if "train" in run.name:
        artifacts[f"{root}outputs/model/model.pkl"] = _noise(run.name, 384 * 1024)
        artifacts[f"{root}outputs/model/MLmodel"] = b"flavors:\n  sklearn:\n    pickled_model: model.pkl\n"
        outputs[f"azureml/{run.name}/predictions/predictions.csv"] = (
            "id,score\n" + "".join(f"{i},{(i * 37 % 100) / 100:.2f}\n" for i in range(2000))
        ).encode()
    if run.parent:
        outputs[f"dataset/{run.name}/prepared/train.parquet"] = _noise(f"{run.name}-data", 128 * 1024)
    return artifacts, outputs


def seed_workspace(state: AzureState) -> Workspace:
    """The demo workspace on the control plane; its datastores name the local Azurite account."""
    now = dt.datetime.now(dt.UTC)
    workspace = state.add_workspace(
        SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, workspace_id=WORKSPACE_ID, friendly_name="ML demo",
        storage_account_name=AZURITE_ACCOUNT, created_by=AZURE_IDENTITY[ADMIN.id],
        created_at=now - dt.timedelta(days=90),
    )
    with state.lock:
        for run in _runs():
            workspace.add_job(
                run.name, experiment_name=run.experiment, status=run.status, job_type=run.job_type,
                created_by=run.by, created_at=now - dt.timedelta(days=run.days_ago, hours=3),
                parent_job_name=run.parent,
            )
        alice, bob = AZURE_IDENTITY[ALICE.id], AZURE_IDENTITY[BOB.id]
        workspace.add_model_version("churn", "1", job_name="churn-train-01", created_by=alice,
                                    created_at=now - dt.timedelta(days=19))
        workspace.add_model_version("churn", "2", job_name="churn-train-02", created_by=alice,
                                    created_at=now - dt.timedelta(days=11))
        workspace.add_model_version("fraud", "1", created_by=bob, created_at=now - dt.timedelta(days=8))
        workspace.add_compute("cpu-cluster", created_on=now - dt.timedelta(days=60), allocation_changed=now - dt.timedelta(days=21))
        workspace.add_compute("gpu-a100", vm_size="STANDARD_NC24ADS_A100_V4", max_nodes=2, created_on=now - dt.timedelta(days=60),
                              allocation_changed=now - dt.timedelta(days=9))
        workspace.add_compute("cpu-busy", min_nodes=1, current_nodes=2, running_nodes=2, created_on=now - dt.timedelta(days=60),
                              allocation_changed=now - dt.timedelta(hours=6))
        workspace.add_online_endpoint("churn-online", traffic={"blue": 100}, created_by=alice)
        workspace.add_batch_endpoint("fraud-batch", default_deployment="nightly", created_by=bob)
    return workspace


def seed_storage(state: AzureState, workspace: Workspace, connection_string: str) -> int:
    """The files behind the workspace's records, in Azurite; returns how many."""
    now = dt.datetime.now(dt.UTC)
    by_container: dict[str, dict[str, bytes]] = {ARTIFACTS: {}, workspace.blob_container: {}, EXPORTS: {}}
    for run in _runs():
        artifacts, outputs = _run_files(run, now - dt.timedelta(days=run.days_ago))
        by_container[ARTIFACTS] |= artifacts
        by_container[workspace.blob_container] |= outputs
    with state.lock:
        upload = workspace.models["fraud"].versions["1"]["properties"]["modelUri"].split("/paths/", 1)[1]
    by_container[workspace.blob_container] |= {
        f"{upload}/model.pkl": _noise("fraud-model", 96 * 1024),
        f"{upload}/MLmodel": b"flavors:\n  python_function:\n    loader_module: fraud\n",
    }
    count = 0
    with BlobServiceClient.from_connection_string(connection_string) as service:
        for container, files in by_container.items():
            client = service.get_container_client(container)
            if not client.exists():
                client.create_container()
            for name, data in files.items():
                client.upload_blob(name, data, overwrite=True)
                count += 1
    return count


def seed(state: AzureState, connection_string: str) -> Workspace:
    """The demo workspace: records on the control plane, files in Azurite."""
    workspace = seed_workspace(state)
    seed_storage(state, workspace, connection_string)
    return workspace

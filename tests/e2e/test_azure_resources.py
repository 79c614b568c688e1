"""Deleting computes, endpoints and the workspace through the real Azure SDK clients and the stand-in."""

from __future__ import annotations

from bot import cards
from bot.lifecycle import State
from sandbox.standins.azure.server import AzureStandIn
from tests.e2e.harness import APPROVER_1, APPROVER_2, RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, Harness, Submitted


async def test_delete_compute_end_to_end(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    workspace.add_compute("gpu-old")
    workspace.add_compute("cpu-keep")
    request = await azure_harness.submit("delete compute gpu-old")
    assert request.plan["items"][0]["ref"].endswith("/computes/gpu-old")
    await azure_harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await azure_harness.wait_state(request.id, State.SUCCEEDED)
    receipt = await azure_harness.receipt(request.id)
    assert [item["status"] for item in receipt["items"]] == ["deleted"]
    assert any(path.endswith("/computes/gpu-old") for path in azure.state.deleted)
    assert not any(path.endswith("/computes/cpu-keep") for path in azure.state.deleted)


async def test_unknown_compute_is_a_clear_private_error(azure_harness: Harness) -> None:
    await azure_harness.command("delete compute nope")
    await azure_harness.wait_reply(containing="No compute `nope` in workspace `dev`")
    assert azure_harness.store.list_requests() == []


async def test_delete_endpoint_end_to_end(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    workspace.add_online_endpoint("churn-scoring")
    request = await azure_harness.submit("delete endpoint churn-scoring")
    await azure_harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await azure_harness.wait_state(request.id, State.SUCCEEDED)
    assert any(path.endswith("/onlineEndpoints/churn-scoring") for path in azure.state.deleted)


async def _approved_twice(harness: Harness, text: str) -> Submitted:
    request = await harness.submit(text)
    assert request.approvals_required == 2
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    assert harness.request(request.id).state is State.PENDING
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_2)
    return request


def _outcomes(receipt: dict) -> dict[str, tuple[str, str]]:
    """Receipt outcomes by the resource's type (`Microsoft.KeyVault/vaults`, …)."""
    return {item["ref"].split("/providers/")[-1].rsplit("/", 1)[0]: (item["status"], item["reason"]) for item in receipt["items"]}


ML_WORKSPACE, VAULT, LOGS = "Microsoft.MachineLearningServices/workspaces", "Microsoft.KeyVault/vaults", "Microsoft.OperationalInsights/workspaces"


async def test_delete_workspace_needs_two_approvers_and_deletes_each_dependent_waiting_for_it(azure_harness: Harness, azure: AzureStandIn) -> None:
    from datetime import UTC, datetime, timedelta

    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    dependents = [workspace.storage_account_id, workspace.key_vault_id, workspace.application_insights_id, workspace.container_registry_id]
    logs = azure.state.generic_resource(workspace.application_insights_id).properties["WorkspaceResourceId"]
    # Deletes of other providers that are still running when first polled.
    azure.lro.other_providers, azure.lro.in_progress_polls = "async", 2

    request = await _approved_twice(azure_harness, "delete workspace dev --with-dependents --purge")

    # The plan names everything that goes, the Log Analytics workspace behind Application Insights included.
    assert {item["ref"] for item in request.plan["items"]} == {workspace.id, *dependents, logs}
    warnings = " ".join(request.plan["warnings"])
    assert "it and its secrets stay recoverable for 90 days (purge protection is off" in warnings
    assert "cannot be recovered" not in warnings.replace("the workspace itself cannot be recovered", "")
    await azure_harness.wait_state(request.id, State.SUCCEEDED)
    deletes = [call for call in azure.calls if call.method == "DELETE" and call.path.endswith("/workspaces/mlw-dev")]
    assert [call.query.get("forceToPurge") for call in deletes] == ["true"]
    assert all(azure.state.generic_resource(d) is None for d in (*dependents, logs))
    outcome = _outcomes(await azure_harness.receipt(request.id))
    today = datetime.now(UTC).date()
    assert outcome[ML_WORKSPACE] == outcome["Microsoft.Insights/components"] == ("deleted", "")
    assert outcome[VAULT][0] == "soft_deleted" and f"recoverable until {today + timedelta(days=90)}" in outcome[VAULT][1]
    assert outcome["Microsoft.Storage/storageAccounts"][0] == outcome["Microsoft.ContainerRegistry/registries"][0] == "deleted"
    assert outcome[LOGS] == ("soft_deleted", f"soft-deleted: recoverable until {today + timedelta(days=14)}")
    # Each dependent's delete answered 202 and was polled to its end: twice in progress, then done.
    polls = [c for c in azure.calls if "/operationResults/" in c.path]
    assert len(polls) == 3 * (len(dependents) + 1)


async def test_a_key_vault_another_workspace_uses_is_kept_and_listed(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    other = azure.state.add_workspace(SUBSCRIPTION, "rg-other", "mlw-other")
    other.key_vault_id = workspace.key_vault_id
    vault = azure.state.generic_resource(workspace.key_vault_id)

    request = await _approved_twice(azure_harness, "delete workspace dev --with-dependents")

    name = vault.name
    assert f"Kept: Key Vault `{name}`, also used by workspace `mlw-other`." in request.plan["warnings"]
    await azure_harness.wait_state(request.id, State.PARTIALLY_SUCCEEDED)  # something was kept
    assert azure.state.generic_resource(workspace.key_vault_id) is not None
    assert azure.state.generic_resource(workspace.storage_account_id) is None
    outcome = _outcomes(await azure_harness.receipt(request.id))
    assert outcome[VAULT] == ("retained", "also used by workspace `mlw-other`")
    assert outcome[ML_WORKSPACE] == ("soft_deleted", "recoverable for 14 days")


async def test_a_log_analytics_workspace_another_application_insights_writes_to_is_kept(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    logs = azure.state.generic_resource(workspace.application_insights_id).properties["WorkspaceResourceId"]
    azure.state.add_generic_resource(
        SUBSCRIPTION, "rg-web", "Microsoft.Insights/components", "appi-web", kind="web",
        properties={"WorkspaceResourceId": logs, "ApplicationId": "appi-web"},
    )
    azure.state.generic_resource(workspace.key_vault_id).properties["enablePurgeProtection"] = True
    request = await _approved_twice(azure_harness, "delete workspace dev --with-dependents --purge")
    assert any("also used by Application Insights `appi-web`" in w for w in request.plan["warnings"])
    assert any("stay recoverable for 90 days (purge protection is on: nobody can purge it sooner)" in w for w in request.plan["warnings"])
    await azure_harness.wait_state(request.id, State.PARTIALLY_SUCCEEDED)
    assert azure.state.generic_resource(logs) is not None
    assert azure.state.generic_resource(workspace.application_insights_id) is None


async def test_dependents_stay_when_the_workspace_deletion_fails(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    azure.fail_next_operation("DELETE", r"/workspaces/mlw-dev$", code="Conflict", message="Workspace is busy.")
    request = await _approved_twice(azure_harness, "delete workspace dev --with-dependents --purge")
    await azure_harness.wait_state(request.id, State.FAILED, State.PARTIALLY_SUCCEEDED)
    assert azure.state.generic_resource(workspace.storage_account_id) is not None
    assert azure.state.generic_resource(workspace.key_vault_id) is not None
    outcome = _outcomes(await azure_harness.receipt(request.id))
    assert outcome[ML_WORKSPACE][0] == outcome[VAULT][0] == "failed"


async def test_oncall_cleans_up_computes_idle_by_their_allocation_not_their_settings(azure_harness: Harness, azure: AzureStandIn) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.e2e.harness import ONCALL

    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    now = datetime.now(UTC)
    long_ago, yesterday = now - timedelta(days=30), now - timedelta(days=1)
    created = now - timedelta(days=60)
    # At zero nodes for 30 days; someone edited its settings yesterday (modifiedOn): still idle.
    workspace.add_compute("idle-cluster", created_on=created, allocation_changed=long_ago, modified_on=yesterday)
    # Settings untouched for 30 days, but it scaled down from a job yesterday: not idle.
    workspace.add_compute("ran-yesterday", created_on=created, allocation_changed=yesterday, modified_on=long_ago)
    workspace.add_compute("busy-cluster", created_on=created, current_nodes=2, running_nodes=1, allocation_changed=long_ago)
    # Idle nodes kept warm (minNodeCount 1) say nothing about when it last ran a job.
    workspace.add_compute("warm-cluster", created_on=created, min_nodes=1, current_nodes=1, allocation_changed=long_ago)
    workspace.add_compute("scaling-up", created_on=created, allocation_state="Resizing", allocation_changed=long_ago)
    request = await azure_harness.submit("cleanup computes --idle 7d", user=ONCALL)
    assert [item["ref"].rsplit("/", 1)[1] for item in request.plan["items"]] == ["idle-cluster"]
    await azure_harness.click(cards.ActionId.APPROVE, request.id, ONCALL)  # on-call, within the cap
    await azure_harness.wait_state(request.id, State.SUCCEEDED)
    gone = {path.rsplit("/", 1)[1] for path in azure.state.deleted if "/computes/" in path}
    assert gone == {"idle-cluster"}


async def test_busy_compute_deletion_warns_from_the_node_states(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    workspace.add_compute("gpu-busy", current_nodes=3, running_nodes=2, preparing_nodes=1)
    workspace.add_compute("gpu-warm", min_nodes=2, current_nodes=2)  # two idle nodes: nothing to stop
    busy = await azure_harness.submit("delete compute gpu-busy")
    assert busy.plan["warnings"] == ["3 node(s) are running or preparing jobs: those jobs will be stopped."]
    warm = await azure_harness.submit("delete compute gpu-warm")
    assert warm.plan["warnings"] == []


async def test_attached_compute_is_detached_and_the_machine_behind_it_kept(azure_harness: Harness, azure: AzureStandIn) -> None:
    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    vm = azure.state.add_generic_resource(SUBSCRIPTION, RESOURCE_GROUP, "Microsoft.Compute/virtualMachines", "dsvm-team")
    workspace.add_attached_compute("team-vm", vm)
    request = await azure_harness.submit("delete compute team-vm")
    assert "it is detached from the workspace; the resource behind it is kept" in " ".join(request.plan["warnings"])
    await azure_harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await azure_harness.wait_state(request.id, State.SUCCEEDED)
    (delete,) = [c for c in azure.calls if c.method == "DELETE" and c.path.endswith("/computes/team-vm")]
    assert delete.query["underlyingResourceAction"] == "Detach"
    assert azure.state.generic_resource(vm) is not None
    receipt = await azure_harness.receipt(request.id)
    assert [(i["status"], i["reason"]) for i in receipt["items"]] == [("deleted", "detached from the workspace; the resource behind it is kept")]


async def test_delete_run_reaches_its_outputs_on_the_default_datastore(azure_harness: Harness, azure: AzureStandIn) -> None:
    import uuid

    run = f"train-{uuid.uuid4().hex[:8]}"
    blobstore = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE).blob_container
    await azure_harness.seed({f"ExperimentRun/dcid.{run}/user_logs/std_log.txt": b"log"})
    await azure_harness.seed(
        {f"azureml/{run}/model_output/model.pkl": b"m", f"dataset/{run}/prepared/part-0": b"d", "azureml/other-run/x": b"keep"},
        container_name=blobstore,
    )
    request = await azure_harness.submit(f"delete run {run}")
    assert {(i["container"], i["ref"]) for i in request.plan["items"]} == {
        (azure_harness.container, f"ExperimentRun/dcid.{run}/user_logs/std_log.txt"),
        (blobstore, f"azureml/{run}/model_output/model.pkl"),
        (blobstore, f"dataset/{run}/prepared/part-0"),
    }
    await azure_harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await azure_harness.wait_state(request.id, State.SUCCEEDED)
    assert await azure_harness.blob_names("", container_name=blobstore) == {"azureml/other-run/x"}

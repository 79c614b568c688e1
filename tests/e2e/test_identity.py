"""Who a person is, end to end: signed Slack requests, the real Azure SDK clients against the
control-plane stand-in, Microsoft Graph's stand-in through azure-core, blobs in Azurite.

Records name their creator in every form Azure ML uses: run history by object id (its `upn` often
null), the control plane by display name, UPN, mail, or an application's GUID."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY

from bot import cards
from bot.lifecycle import State
from sandbox.standins.azure.server import AzureStandIn
from sandbox.standins.azure.state import Identity
from sandbox.standins.graph import GraphStandIn
from tests.e2e.harness import APPROVER_1, Harness
from tests.e2e.test_azure_data import _run_files, _workspace

DANA_OID = "da1a0000-0000-4000-8000-00000000000d"
DANA_UPN = "d.kowalski@contoso.onmicrosoft.com"  # a tenant where mail is not the UPN
DANA_MAIL = "dana.kowalski@contoso.com"
DANA = Identity(name="Dana Kowalski", object_id=DANA_OID, upn=DANA_UPN, shows="name", upn_in_history=False)
DANA_BY_UPN = Identity(name=DANA.name, object_id=DANA_OID, upn=DANA_UPN, shows="upn")
DANA_BY_MAIL = Identity(name=DANA.name, object_id=DANA_OID, upn=DANA_MAIL, shows="upn")  # a record that shows her mail
# Someone else with her name, and an application.
NAMESAKE = Identity(name="Dana Kowalski", object_id="da1a0000-0000-4000-8000-0000000000ff", upn="dana.k@fabrikam.com",
                    shows="name", upn_in_history=False)
PIPELINE_APP = Identity(name="retrain-app", object_id="5e1f0000-0000-4000-8000-000000000001", upn=None,
                        kind="Application", app_id="a44c0000-0000-4000-8000-000000000001")
ROBOT = Identity(name="mi-retrain", object_id="0b1d0000-0000-4000-8000-000000000001", upn=None, kind="ManagedIdentity")
GUEST_OID = "9e570000-0000-4000-8000-000000000001"
GUEST_MAIL = "jane@fabrikam.com"
GUEST_UPN = "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com"


def _dana_in_graph(graph: GraphStandIn, *, namesake: bool = True) -> None:
    graph.add_user(DANA.name, DANA_UPN, object_id=DANA_OID, mail=DANA_MAIL, other_mails=("dana@old.contoso.com",))
    if namesake:
        graph.add_user(NAMESAKE.name, "dana.k_fabrikam.com#EXT#@contoso.onmicrosoft.com", object_id=NAMESAKE.object_id,
                       mail="dana.k@fabrikam.com", user_type="Guest")


async def _seed_dana(harness: Harness, azure: AzureStandIn) -> None:
    workspace = _workspace(azure)
    workspace.add_job("dana-1", created_by=DANA)  # shown by display name; run history: object id, no UPN
    workspace.add_job("dana-2", created_by=DANA_BY_UPN)  # shown by UPN
    workspace.add_job("namesake-1", created_by=NAMESAKE)  # the same display name, another object id
    workspace.add_job("app-1", created_by=PIPELINE_APP)  # a GUID, createdByType Application
    workspace.add_job("robot-1", created_by=ROBOT)  # a GUID, createdByType ManagedIdentity
    workspace.add_data_version("dana-data", "1", created_by=DANA_BY_UPN)
    workspace.add_environment_version("dana-env", "1", created_by=DANA_BY_MAIL)
    workspace.add_data_version("dana-named", "1", created_by=DANA)  # display name only: ambiguous
    workspace.add_schedule("dana-nightly", created_by=DANA)  # display name only: ambiguous
    workspace.add_data_version("app-data", "1", created_by=PIPELINE_APP)
    files: dict[str, bytes] = {}
    for run in ("dana-1", "dana-2", "namesake-1", "app-1", "robot-1"):
        files |= _run_files(run)
    await harness.seed(files)


def _runs(plan: dict[str, Any]) -> set[str]:
    return {item["ref"].rsplit("/", 1)[-1] for item in plan["items"] if item["kind"] == "job"}


async def test_an_erasure_finds_every_form_of_their_name_and_flags_display_name_only_matches(
    azure_harness: Harness, azure: AzureStandIn, graph: GraphStandIn
) -> None:
    _dana_in_graph(graph, namesake=False)
    await _seed_dana(azure_harness, azure)
    # Named by mention: Slack shares her mail, which is not her UPN.
    azure_harness.slack.add_user("U0DANA001", "dana", email=DANA_MAIL)
    graph_tries = REGISTRY.get_sample_value("amlbot_azure_call_seconds_count", {"service": "graph", "method": "GET"}) or 0

    request = await azure_harness.submit("delete user <@U0DANA001|dana>")

    # The namesake's run shows her name too, but run history gives another object id.
    assert _runs(request.plan) == {"dana-1", "dana-2"}
    identity = request.plan["notes"]["identity"]
    assert (identity["object_id"], identity["upn"], identity["display_name"]) == (DANA_OID, DANA_UPN, DANA.name)
    assert identity["resolved_through_graph"] is True and identity["impossible"] == []
    assert identity["matches"] == {
        "object id": ["run dana-1", "run dana-2"],
        "UPN": ["data dana-data:1"],
        "mail": ["environment dana-env:1"],
        "display name only (ambiguous)": ["data dana-named:1", "schedule dana-nightly"],
    }
    card = str(azure_harness.card(request.id)["blocks"])
    assert "Matched by display name only, so possibly someone else of the same name — check before approving: " \
           "data dana-named:1, schedule dana-nightly." in card
    # Graph was asked for her UPN first (her mail is none), then by mail and other mails, then who bears her name.
    assert [(c.path, c.query.get("$filter")) for c in graph.calls] == [
        (f"/v1.0/users/{DANA_MAIL}", None),
        ("/v1.0/users", f"mail eq '{DANA_MAIL}' or otherMails/any(m:m eq '{DANA_MAIL}')"),
        ("/v1.0/users", f"displayName eq '{DANA.name}'"),
    ]
    assert REGISTRY.get_sample_value("amlbot_azure_call_seconds_count", {"service": "graph", "method": "GET"}) == graph_tries + 3

    await azure_harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await azure_harness.wait_state(request.id, State.SUCCEEDED, State.PARTIALLY_SUCCEEDED)
    for gone in ("dana-1", "dana-2"):
        assert await azure_harness.blob_names(f"ExperimentRun/dcid.{gone}/") == set()
    for kept in ("namesake-1", "app-1", "robot-1"):
        assert await azure_harness.blob_names(f"ExperimentRun/dcid.{kept}/")
    with azure.state.lock:
        assert "dana-nightly" not in _workspace(azure).schedules  # approved as listed, ambiguous or not


async def test_an_erasure_leaves_out_display_name_matches_when_the_directory_shares_the_name(
    azure_harness: Harness, azure: AzureStandIn, graph: GraphStandIn
) -> None:
    _dana_in_graph(graph)  # with a guest of the same name
    await _seed_dana(azure_harness, azure)

    request = await azure_harness.submit(f"delete user {DANA_OID}")

    matches = request.plan["notes"]["identity"]["matches"]
    assert "display name only (ambiguous)" not in matches
    assert matches["display name only, shared in the directory: left out"] == ["data dana-named:1", "schedule dana-nightly"]
    refs = {item["ref"] for item in request.plan["items"]}
    assert not any("dana-named" in ref or "dana-nightly" in ref for ref in refs)
    assert "Left out: matched by display name only, and 2 people in the directory are called Dana Kowalski" in str(
        azure_harness.card(request.id)["blocks"])


async def test_without_graph_permission_the_plan_says_which_matches_were_impossible(
    azure_harness: Harness, azure: AzureStandIn, graph: GraphStandIn
) -> None:
    _dana_in_graph(graph)
    graph.deny = True
    await _seed_dana(azure_harness, azure)

    request = await azure_harness.submit(f"export user {DANA_MAIL}")

    identity = request.plan["notes"]["identity"]
    assert identity["resolved_through_graph"] is False
    # Only the record showing the address she was named by is found (as a UPN: amlbot cannot tell);
    # her object id, UPN and name were never learned, and the plan says what that made impossible.
    assert identity["matches"] == {"UPN": ["environment dana-env:1"]}
    assert [line.split(":")[0] for line in identity["impossible"]] == [
        "by object id (run history often records no UPN)", "by display name (how the control plane shows people on most records)"]
    assert "User.Read.All (Authorization_RequestDenied: Insufficient privileges" in identity["impossible"][0]
    assert "Not resolved through Microsoft Graph" in str(azure_harness.card(request.id)["blocks"])


async def test_a_guest_is_found_by_the_address_they_were_invited_with(
    azure_harness: Harness, azure: AzureStandIn, graph: GraphStandIn
) -> None:
    graph.add_guest("Jane Guest", GUEST_MAIL, object_id=GUEST_OID)
    guest = Identity(name="Jane Guest", object_id=GUEST_OID, upn=GUEST_UPN, shows="upn", upn_in_history=False, idp="live.com")
    workspace = _workspace(azure)
    workspace.add_job("guest-1", created_by=guest)
    workspace.add_data_version("guest-data", "1", created_by=guest)
    await azure_harness.seed(_run_files("guest-1"))

    request = await azure_harness.submit(f"export user {GUEST_MAIL}")

    identity = request.plan["notes"]["identity"]
    assert identity["upn"] == GUEST_UPN.lower() and identity["object_id"] == GUEST_OID
    assert identity["matches"] == {"object id": ["run guest-1"], "UPN": ["data guest-data:1"]}

    # Named by their guest UPN: its `#` reaches Graph encoded, so Graph reads the whole UPN.
    by_upn = await azure_harness.submit(f"export user {GUEST_UPN}")

    assert graph.calls[-1].path == f"/v1.0/users/{GUEST_UPN.lower()}"
    assert by_upn.plan["notes"]["identity"]["matches"] == identity["matches"]


async def test_a_person_named_by_object_id_is_looked_up_by_it(
    azure_harness: Harness, azure: AzureStandIn, graph: GraphStandIn
) -> None:
    _dana_in_graph(graph)
    await _seed_dana(azure_harness, azure)

    request = await azure_harness.submit(f"export user {DANA_OID}")

    assert [c.path for c in graph.calls] == [f"/v1.0/users/{DANA_OID}"]
    assert request.plan["notes"]["identity"]["matches"]["mail"] == ["environment dana-env:1"]
    assert _runs(request.plan) == {"dana-1", "dana-2"}

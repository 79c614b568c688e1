"""Fuzzing the interaction payloads the running app accepts (signed, so they reach the listeners).

Malformed and mistyped fields, unknown action ids, huge values, another team's or channel's ids,
request ids that do not exist or live in another channel: the app answers 200 (refusing privately,
audited) or 404 (Bolt's "unhandled request"), never a 500, and never changes a request.

No storage is needed: a click never reaches Azure, and the requests are written straight to the
store. The app listens on loopback with the Slack Web API stand-in, as in the end-to-end tests.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import cards
from bot.lifecycle import State
from commands.intents import Action
from sandbox.standins.azurite import connection_string
from sandbox.standins.slack_signing import SlackSender, block_actions_payload
from tests.e2e.harness import (
    APPROVER_1,
    APPROVER_2,
    CHANNEL,
    REQUESTER,
    SIGNING_SECRET,
    STRANGER,
    TEAM,
    Harness,
    start_harness,
    stop_harness,
)

OTHER_CHANNEL = "C0ELSEWHR1"
OTHER_TEAM = "T0OTHER01"
REFUSALS = {"click.refused", "approve.refused", "reject.refused", "cancel.refused", "run_now.refused"}
# Bolt answers 404 to what no listener claims; 200 once a listener acked. Nothing else is fine.
ALLOWED = {200, 404}


@dataclass
class World:
    harness: Harness
    closed: str  # a request in CHANNEL that is already decided: no click can move it
    elsewhere: str  # a pending request in OTHER_CHANNEL: clicks from CHANNEL must not reach it
    sender: SlackSender  # patient: on a busy machine an answer may take a while, which is not the point here


def _create(harness: Harness, channel: str, requester: str) -> str:
    record = harness.store.create_request(
        team_id=TEAM, channel_id=channel, requester=requester, text="delete run fuzz_run", action=Action.parse("delete run"),
        workspace="dev", intent={"text": "delete run fuzz_run --workspace dev"},
        plan={"action": "delete run", "workspace": "dev", "target": "fuzz_run", "items": []},
        plan_hash="sha256:" + "0" * 64, approvals_required=1, expires_in=timedelta(hours=24),
    )
    harness.store.set_card(record.id, "1700000000.000100")
    return record.id


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    # Storage is never reached by a click: the connection string names a closed port.
    harness = await start_harness(tmp_path_factory.mktemp("fuzz"), connection_string(1))
    closed = _create(harness, CHANNEL, REQUESTER)
    harness.store.transition(closed, State.CANCELLED, actor=REQUESTER, event="request.cancelled")
    elsewhere = _create(harness, OTHER_CHANNEL, REQUESTER)
    sender = SlackSender(harness.sender.events_url, SIGNING_SECRET, timeout=60)
    yield World(harness, closed, elsewhere, sender)
    await sender.close()
    await stop_harness(harness)


def _state(world: World) -> Any:
    store = world.harness.store
    return (
        [(r.id, r.state, r.approvers, r.card_ts, r.decided_by) for r in store.list_requests(limit=None)],
        store.count_jobs(),
        len(world.harness.slack.calls_to("chat.postMessage")),
        len(world.harness.slack.calls_to("chat.update")),
    )


# ---- what the fuzzer sends ---------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False),
    st.text(max_size=30),
)
wrong_types = st.one_of(json_scalars, st.lists(json_scalars, max_size=3), st.dictionaries(st.text(max_size=8), json_scalars, max_size=3))
huge_text = st.integers(min_value=2_000, max_value=50_000).map(lambda n: "R-" + "A" * n)  # Slack caps values at 2000
request_ids = st.sampled_from(["closed", "elsewhere", "R-AAAAAAAA", "R-ZZZZZZZZ", "r-aaaaaaaa", "R-AAAAAAA", "R-AAAAAAAA "])
action_ids = st.one_of(st.sampled_from(cards.ACTION_IDS), st.sampled_from(["amlbot.delete", "amlbot.approve2", "approve", ""]), st.text(max_size=40))
# Ids are strings here: ids of other JSON types are the tests at the end.
users = st.one_of(st.sampled_from([APPROVER_1, APPROVER_2, REQUESTER, STRANGER, "", "U" + "9" * 300]), st.text(max_size=20))
channels = st.one_of(st.sampled_from([CHANNEL, "C0NOWHERE1", "", "D0DIRECT01"]), st.text(max_size=20))
teams = st.one_of(st.sampled_from([TEAM, OTHER_TEAM, ""]), st.text(max_size=20))


@st.composite
def payloads(draw: st.DrawFn, world_ids: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    """A block_actions payload, and the top-level keys the fuzzer replaced."""
    value = draw(st.one_of(request_ids, huge_text, wrong_types))
    value = world_ids.get(value, value) if isinstance(value, str) else value
    user, channel, team = draw(users), draw(channels), draw(teams)
    payload = block_actions_payload(draw(action_ids), "placeholder", "U0", CHANNEL, "1700000000.000100")
    payload["actions"][0]["value"] = value
    # The ids inside the user, channel and team objects: strings from anywhere, or any JSON type.
    payload["user"]["id"] = user
    payload["channel"]["id"] = channel
    payload["container"]["channel_id"] = channel
    payload["team"]["id"] = team
    payload["user"]["team_id"] = team
    # Now and then an object missing, or a field of the wrong type (at the top, or in the action).
    for key in draw(st.lists(st.sampled_from(["user", "channel", "team", "container", "message"]), max_size=2, unique=True)):
        payload.pop(key, None)
    names = ["response_url", "trigger_id", "state", "message", "token", "api_app_id"]
    replaced = set(draw(st.lists(st.sampled_from(names), max_size=2, unique=True)))
    for key in replaced:
        payload[key] = draw(wrong_types)
    for key in draw(st.lists(st.sampled_from(["block_id", "type", "text", "action_ts"]), max_size=1)):
        payload["actions"][0][key] = draw(wrong_types)
    if draw(st.integers(0, 9)) == 0:
        payload["type"] = draw(st.sampled_from(["block_actions", "interactive_message", "view_submission", "shortcut", "zzz"]))
    return payload, replaced


def _body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


async def _send_and_check(world: World, body: bytes, *, expect_refusal: bool) -> int:
    harness = world.harness
    before_state = _state(world)
    before_audit = len(harness.store.audit_entries())
    status, _ = await world.sender.send(body)
    assert status in ALLOWED, status
    if status == 200 and expect_refusal:
        # Acked: the listener then refuses (audited, privately answered) without changing anything.
        await harness.slack.wait_for(
            lambda: len(harness.store.audit_entries()) > before_audit, timeout=5, description="the refusal's audit entry"
        )
    new = [e.event for e in harness.store.audit_entries()[before_audit:]]
    assert set(new) <= REFUSALS, new
    assert _state(world) == before_state
    return status


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_fuzzed_clicks_are_refused_or_ignored_never_a_500_never_a_change(world: World, data: st.DataObject) -> None:
    payload, replaced = data.draw(payloads({"closed": world.closed, "elsewhere": world.elsewhere}))
    harness = world.harness
    # A response_url the app can answer on (Slack's own, unless the fuzzer broke the field).
    if isinstance(payload.get("response_url"), str):
        payload["response_url"] = harness.slack.response_url_for(CHANNEL, user="fuzz")
    action_id = payload["actions"][0]["action_id"]
    # A click on a card button, delivered once (a fuzzed trigger_id may repeat: a "retry", acked and ignored).
    fresh = "trigger_id" not in replaced
    expect_refusal = fresh and payload.get("type") == "block_actions" and action_id in cards.ACTION_IDS
    status = await _send_and_check(world, _body(payload), expect_refusal=expect_refusal)
    if action_id not in cards.ACTION_IDS and fresh:
        assert status == 404  # unknown action ids are nobody's (a repeated delivery is acked as seen)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(request_ids, huge_text, wrong_types), user=users, channel=channels, team=teams)
async def test_every_refusal_is_a_clear_private_answer(world: World, value: Any, user: str, channel: str, team: str) -> None:
    """Well-formed clicks on the card buttons from anyone, anywhere, about anything: each one
    gets a private `:no_entry:` answer that says why."""
    value = {"closed": world.closed, "elsewhere": world.elsewhere}.get(value, value) if isinstance(value, str) else value
    harness = world.harness
    url = harness.slack.response_url_for(CHANNEL, user=f"fuzz-{len(harness.slack.response_posts)}")
    for action_id in cards.ACTION_IDS:
        payload = block_actions_payload(action_id, "x", user, channel, "1700000000.000100", team_id=team, response_url=url)
        payload["actions"][0]["value"] = value
        before = len(harness.slack.response_posts)
        await _send_and_check(world, _body(payload), expect_refusal=True)
        reply = await harness.slack.wait_for(
            lambda b=before: harness.slack.response_posts[b:] and harness.slack.response_posts[b].body, timeout=5,
            description="a private answer",
        )
        assert reply["response_type"] == "ephemeral" and reply["text"].startswith(":no_entry:"), reply
        assert len(reply["text"]) < 400  # a sentence, not the payload echoed back


async def test_the_pending_request_elsewhere_is_untouched(world: World) -> None:
    record = world.harness.request(world.elsewhere)
    assert record.state is State.PENDING and record.approvers == ()
    assert world.harness.store.verify_audit().ok


# ---- malformed shapes: 400 (or 404), never a 500 -----------------------------------------------


@pytest.mark.parametrize("raw", [b"payload=%7Bnot-json", b"payload=%FF%FE", b"payload=", b"payload=%5B1%2C2%5D", b"payload=%22x%22"])
async def test_signed_malformed_payloads_are_a_400(world: World, raw: bytes) -> None:
    status, _ = await world.sender.send(raw)
    assert status == 400


@pytest.mark.parametrize("actions", [[], {"0": {}}, "amlbot.approve", 7, [{"value": "R-AAAAAAAA"}]])
async def test_signed_payloads_with_actions_of_the_wrong_type_are_refused_without_a_500(world: World, actions: Any) -> None:
    payload = block_actions_payload(cards.ActionId.APPROVE, world.closed, APPROVER_1, CHANNEL, "1700000000.000100")
    payload["actions"] = actions
    status, _ = await world.sender.send(_body(payload))
    assert status in (400, 404)


@pytest.mark.parametrize(
    ("key", "wrong"),
    [("user", False), ("user", 7), ("channel", False), ("channel", 7), ("team", False), ("team", 7),
     ("container", False), ("container", "C0AMLBOT1"), ("container", [1])],
)
async def test_signed_payloads_with_objects_of_the_wrong_type_are_refused_without_a_500(world: World, key: str, wrong: Any) -> None:
    payload = block_actions_payload(cards.ActionId.APPROVE, world.closed, APPROVER_1, CHANNEL, "1700000000.000100")
    payload[key] = wrong
    status, _ = await world.sender.send(_body(payload))
    assert status in (400, 404)


async def test_foreign_action_ids_are_ignored(world: World) -> None:
    for actions in ([{"action_id": "someone.else", "value": world.closed}], [{"action_id": "x", "value": 1}, {"action_id": cards.ActionId.APPROVE}]):
        payload = block_actions_payload(cards.ActionId.APPROVE, world.closed, APPROVER_1, CHANNEL, "1700000000.000100")
        payload["actions"] = actions
        # Bolt matches the first action: 404 when no listener takes it, so none ran.
        assert await _send_and_check(world, _body(payload), expect_refusal=False) == 404


async def test_a_huge_body_is_refused_before_anything_runs(world: World) -> None:
    payload = block_actions_payload(cards.ActionId.APPROVE, "R-" + "A" * (2 * 1024 * 1024), APPROVER_1, CHANNEL, "1700000000.000100")
    status, _ = await world.sender.send(_body(payload))
    assert status == 413


@pytest.fixture
async def fresh(tmp_path: Any) -> AsyncIterator[Harness]:
    """A harness of its own: these clicks may break the audit chain, which the module's is checked on."""
    harness = await start_harness(tmp_path, connection_string(1))
    yield harness
    await stop_harness(harness)


@pytest.mark.parametrize(("key", "wrong"), [("user", 5), ("user", 1.5), ("user", True), ("channel", 5)])
async def test_a_click_with_a_non_string_id_keeps_the_audit_chain_verifiable(fresh: Harness, key: str, wrong: Any) -> None:
    payload = block_actions_payload(cards.ActionId.APPROVE, "R-AAAAAAAA", APPROVER_1, CHANNEL, "1700000000.000100",
                                    response_url=fresh.slack.response_url_for(CHANNEL, user="fuzz"))
    payload[key]["id"] = wrong
    status, _ = await fresh.sender.send(_body(payload))
    assert status == 200
    await fresh.slack.wait_for(lambda: fresh.store.audit_entries(), timeout=5, description="the refusal's audit entry")
    assert fresh.store.verify_audit().ok


async def test_a_click_with_a_null_user_id_is_refused_clearly(fresh: Harness) -> None:
    payload = block_actions_payload(cards.ActionId.APPROVE, "R-AAAAAAAA", APPROVER_1, CHANNEL, "1700000000.000100",
                                    response_url=fresh.slack.response_url_for(CHANNEL, user="fuzz"))
    payload["user"]["id"] = None
    status, _ = await fresh.sender.send(_body(payload))
    assert status == 200
    reply = await fresh.slack.wait_for(lambda: fresh.slack.response_posts, timeout=3, description="a private answer")
    assert reply[0].body["text"].startswith(":no_entry:")

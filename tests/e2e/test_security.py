"""Trust end to end: who may reach the bot, who may decide, what a name may reach, what a link allows.

Forged, stale and replayed deliveries; clicks by people outside the policy and on other requests'
buttons; names that try to leave the run's prefix; and the export link's SAS terms (the link builder
is also checked offline, for an HTTPS account, with both an account key and a user-delegation key).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import cards
from bot.lifecycle import State
from commands import grammar
from commands.azure.blobs import WorkspaceBlobs
from commands.azure.config import WorkspaceConfig
from commands.intents import Intent
from commands.operations.run_data import run_prefixes_of
from sandbox.standins.slack_signing import sign
from tests.e2e.harness import (
    APPROVER_1,
    APPROVER_2,
    CHANNEL,
    REQUESTER,
    SIGNING_SECRET,
    STRANGER,
    TEAM,
    Harness,
)

RUN = "churn_train_1700000000_secure01"
PREFIX = f"ExperimentRun/dcid.{RUN}/"
REFUSALS = {"signature.rejected", "click.refused", "approve.refused", "reject.refused", "cancel.refused",
            "run_now.refused", "request.refused"}


def _snapshot(harness: Harness) -> dict[str, Any]:
    """Everything a delivery could change: requests, approvals, jobs, posts."""
    store = harness.store
    return {
        "requests": [(r.id, r.state, r.approvers, r.card_ts) for r in store.list_requests(limit=None)],
        "jobs": store.count_jobs(),
        "posts": len(harness.slack.calls_to("chat.postMessage")) + len(harness.slack.calls_to("chat.update")),
    }


def _new_events(harness: Harness, before: int) -> list[str]:
    return [e.event for e in harness.store.audit_entries()][before:]


# ---- signatures ---------------------------------------------------------------------------------


def _forgeries(body: bytes) -> dict[str, dict[str, str]]:
    # Rounded up, and made just before each post: "301 s off" stays more than 300 s off on arrival.
    now = math.ceil(time.time())
    return {
        "wrong secret": {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": sign("not-the-secret", body, now)},
        "body changed after signing": {
            "X-Slack-Request-Timestamp": str(now),
            "X-Slack-Signature": sign(SIGNING_SECRET, body + b"&extra=1", now),
        },
        "no headers": {},
        "no timestamp": {"X-Slack-Signature": sign(SIGNING_SECRET, body, now)},
        "no signature": {"X-Slack-Request-Timestamp": str(now)},
        "other scheme": {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": "v1=" + sign(SIGNING_SECRET, body, now)[3:]},
        "empty signature": {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": ""},
        "stale (301 s)": {"X-Slack-Request-Timestamp": str(now - 301), "X-Slack-Signature": sign(SIGNING_SECRET, body, now - 301)},
        "from the future (301 s)": {"X-Slack-Request-Timestamp": str(now + 301), "X-Slack-Signature": sign(SIGNING_SECRET, body, now + 301)},
        "timestamp from another signature": {
            "X-Slack-Request-Timestamp": str(now - 10), "X-Slack-Signature": sign(SIGNING_SECRET, body, now),
        },
    }


async def _post(harness: Harness, body: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.post(
        harness.sender.events_url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded", **headers}
    ) as response:
        return response.status


async def test_forged_stale_and_future_deliveries_get_401_change_nothing_and_are_recorded(harness: Harness) -> None:
    await harness.seed({f"{PREFIX}a.txt": b"a"})
    request = await harness.submit(f"delete run {RUN}")
    before, audit_before, replies_before = _snapshot(harness), len(harness.store.audit_entries()), len(harness.replies())
    command = harness.command_body("help")
    click = harness.click_body(cards.ActionId.APPROVE, request.id, APPROVER_1, card_ts=request.card_ts or "")
    forgeries = [(f"{what}: {kind}", body, kind) for what, body in (("command", command), ("click", click)) for kind in _forgeries(body)]
    for name, body, kind in forgeries:
        assert await _post(harness, body, _forgeries(body)[kind]) == 401, name
    # A 401 is answered before anything is dispatched: nothing of these runs later.
    assert _snapshot(harness) == before
    assert _new_events(harness, audit_before) == []  # no database write each: audited in aggregate
    await harness.bot.rejections.flush()
    assert _new_events(harness, audit_before) == ["signature.rejected"]
    assert json.loads(harness.store.audit_entries()[-1].detail)["count"] == len(forgeries)
    assert len(harness.replies()) == replies_before
    assert harness.store.verify_audit().ok


async def test_a_non_numeric_timestamp_is_a_401(harness: Harness) -> None:
    body = harness.command_body("help")
    status = await _post(harness, body, {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=" + "0" * 64})
    assert status == 401


async def test_unsigned_garbage_is_a_401_not_a_500(harness: Harness) -> None:
    before = len(harness.store.audit_entries())
    for body in (b"payload=%7Bnot-json", b"payload=%FF%FE", b"payload=%5B1%5D"):
        assert await _post(harness, body, {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"}) == 401
    await harness.bot.rejections.flush()
    assert _new_events(harness, before) == ["signature.rejected"]
    assert json.loads(harness.store.audit_entries()[-1].detail)["reasons"] == {"bad signature": 3}


async def test_a_replayed_command_creates_one_request(harness: Harness, duplicates_ignored: Callable[[int], Awaitable[int]]) -> None:
    await harness.seed({f"{PREFIX}a.txt": b"a"})
    body = harness.command_body(f"delete run {RUN}")
    now = int(time.time())
    signature = sign(SIGNING_SECRET, body, now)
    first, again = await asyncio.gather(
        harness.sender.send(body, timestamp=now, signature=signature),
        harness.sender.send(body, timestamp=now, signature=signature),
    )
    assert (first[0], again[0]) == (200, 200)
    await harness.slack.wait_for(lambda: [r for r in harness.store.list_requests() if r.card_ts])
    # Later, the same bytes once more (an attacker's replay within the window, or Slack's retry).
    assert (await harness.sender.send(body, timestamp=now, signature=signature))[0] == 200
    assert (await harness.sender.send(body, retry_num=1, retry_reason="http_timeout"))[0] == 200
    assert await duplicates_ignored(3) == 3  # each copy dropped once its claim commits: none runs later
    assert len(harness.store.list_requests()) == 1
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    assert [e.event for e in harness.store.audit_entries()].count("request.created") == 1


async def test_a_replayed_click_is_acted_on_once(harness: Harness, duplicates_ignored: Callable[[int], Awaitable[int]]) -> None:
    await harness.seed({f"{PREFIX}a.txt": b"a"})
    request = await harness.submit(f"delete run {RUN}")
    body = harness.click_body(cards.ActionId.REJECT, request.id, APPROVER_1, card_ts=request.card_ts or "")
    now = int(time.time())
    signature = sign(SIGNING_SECRET, body, now)
    for _ in range(3):
        assert (await harness.sender.send(body, timestamp=now, signature=signature))[0] == 200
    form = await harness.slack.wait_for(lambda: harness.slack.modals and harness.slack.modals[0])
    sent = harness.form_body(form, APPROVER_1, "no")
    for _ in range(3):  # the form's submission, replayed too
        assert (await harness.sender.send(sent, timestamp=now, signature=sign(SIGNING_SECRET, sent, now)))[0] == 200
    await harness.wait_state(request.id, State.REJECTED)
    assert await duplicates_ignored(4) == 4  # the click's and the form's copies, dropped once claimed: none runs later
    events = harness.events(request.id)
    # Had the copies been acted on, each would have been refused ("already rejected") and audited.
    assert events.count("request.rejected") == 1 and "reject.refused" not in events
    assert len(harness.slack.modals) == 1  # one click, one form
    assert not [r for r in harness.replies(APPROVER_1) if r.startswith(":no_entry:")]


def _hold_claims(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Delivery claims wait for the returned event before they commit: every copy sent meanwhile
    has its 200 while no claim is recorded yet."""
    gate = threading.Event()
    claim = harness.store.claim_deliveries

    def held(keys: list[str]) -> list[bool]:  # runs in a thread of its own
        assert gate.wait(10), "the test never let the claims commit"
        return claim(keys)

    monkeypatch.setattr(harness.store, "claim_deliveries", held)
    return gate


async def test_copies_of_a_command_acked_before_any_claim_commits_create_one_request(
    harness: Harness, duplicates_ignored: Callable[[int], Awaitable[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command is acked before its delivery is claimed: copies of the same signed bytes, two one
    after the other and three at once, all answered while the first copy's claim is uncommitted."""
    await harness.seed({f"{PREFIX}a.txt": b"a"})
    gate = _hold_claims(harness, monkeypatch)
    body = harness.command_body(f"delete run {RUN}")
    now = int(time.time())
    signature = sign(SIGNING_SECRET, body, now)
    statuses = [(await harness.sender.send(body, timestamp=now, signature=signature))[0] for _ in range(2)]
    statuses += [s for s, _ in await asyncio.gather(*(harness.sender.send(body, timestamp=now, signature=signature) for _ in range(3)))]
    assert statuses == [200] * 5
    assert harness.store.list_requests() == []  # all acked, none acted on yet
    gate.set()
    await harness.slack.wait_for(lambda: [r for r in harness.store.list_requests() if r.card_ts])
    assert await duplicates_ignored(4) == 4
    assert len(harness.store.list_requests()) == 1
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    assert [e.event for e in harness.store.audit_entries()].count("request.created") == 1


async def test_copies_of_an_approval_acked_before_any_claim_commits_approve_once(
    harness: Harness, duplicates_ignored: Callable[[int], Awaitable[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.seed({f"{PREFIX}a.txt": b"a"})
    request = await harness.submit(f"delete run {RUN}")
    gate = _hold_claims(harness, monkeypatch)
    body = harness.click_body(cards.ActionId.APPROVE, request.id, APPROVER_1, card_ts=request.card_ts or "")
    now = int(time.time())
    signature = sign(SIGNING_SECRET, body, now)
    statuses = [(await harness.sender.send(body, timestamp=now, signature=signature))[0] for _ in range(2)]
    statuses += [s for s, _ in await asyncio.gather(*(harness.sender.send(body, timestamp=now, signature=signature) for _ in range(2)))]
    assert statuses == [200] * 4
    assert harness.request(request.id).approvers == ()  # all acked, none acted on yet
    gate.set()
    assert await duplicates_ignored(3) == 3
    await harness.wait_state(request.id, State.SUCCEEDED)
    assert harness.events(request.id).count("request.approval") == 1
    assert "approve.refused" not in harness.events(request.id)  # a copy acted on would have been refused, audited
    assert not [r for r in harness.replies(APPROVER_1) if r.startswith(":no_entry:")]


# ---- clicks: who, and on what -------------------------------------------------------------------


async def test_clicks_by_people_outside_the_policy_change_nothing(harness: Harness) -> None:
    await harness.seed({f"{PREFIX}a.txt": b"a"})
    request = await harness.submit(f"delete run {RUN}")
    before, audit_before = _snapshot(harness), len(harness.store.audit_entries())
    for action in (cards.ActionId.APPROVE, cards.ActionId.REJECT, cards.ActionId.CANCEL, cards.ActionId.RUN_NOW):
        assert (await harness.click(action, request.id, STRANGER))[0] == 200
    assert (await harness.click(cards.ActionId.APPROVE, request.id, REQUESTER))[0] == 200  # never one's own deletion
    def refusals() -> list[str]:
        return [r for r in harness.replies() if r.startswith(":no_entry:")]

    await harness.slack.wait_for(lambda: len(refusals()) == 5, description="five private refusals")
    assert _snapshot(harness) == before and harness.slack.modals == []  # no reject form for a stranger
    events = _new_events(harness, audit_before)
    assert len(events) == 5 and set(events) <= REFUSALS
    assert harness.request(request.id).state is State.PENDING


async def test_a_burst_of_refused_clicks_audits_every_one_before_its_refusal_in_one_intact_chain(harness: Harness) -> None:
    """Refusals that come together are audited together (one transaction): none may be lost, none
    answered before it is recorded, and the chain must still verify."""
    await harness.seed({f"{PREFIX}a.txt": b"a"})
    request = await harness.submit(f"delete run {RUN}")
    before, audit_before = _snapshot(harness), len(harness.store.audit_entries())
    clicks = 12
    statuses = await asyncio.gather(*(harness.click(cards.ActionId.APPROVE, request.id, STRANGER) for _ in range(clicks)))
    assert [s for s, _ in statuses] == [200] * clicks

    def refusals() -> list[str]:
        return [r for r in harness.replies(STRANGER) if r.startswith(":no_entry:")]

    await harness.slack.wait_for(lambda: len(refusals()) == clicks, description=f"{clicks} private refusals")
    # Every refusal said is recorded (each waits for its commit before it is said).
    assert _new_events(harness, audit_before) == ["approve.refused"] * clicks
    entries = harness.store.audit_entries()[audit_before:]
    assert [e.seq for e in entries] == list(range(entries[0].seq, entries[0].seq + clicks))
    assert harness.store.verify_audit().ok
    assert _snapshot(harness) == before


async def test_a_click_decides_only_the_request_its_card_names(harness: Harness) -> None:
    await harness.seed({f"{PREFIX}a.txt": b"a", "ExperimentRun/dcid.other_run/b.txt": b"b"})
    mine = await harness.submit(f"delete run {RUN}")
    other = await harness.submit("delete run other_run")
    await harness.reject(mine.id, APPROVER_1)
    # The card is re-rendered before the requester is told: after this post nothing is in flight.
    await harness.wait_thread(mine.id, "was rejected")
    fresh = harness.request(other.id)
    assert fresh.state is State.PENDING and fresh.approvers == ()
    assert "request.rejected" not in harness.events(other.id)

    # A stale card: a second decision on `mine` is refused and touches neither request.
    before = _snapshot(harness)
    await harness.click(cards.ActionId.APPROVE, mine.id, APPROVER_2)
    await harness.wait_reply(APPROVER_2, "already rejected")
    assert _snapshot(harness) == before


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("another channel", "same id"),
        ("another team", "same id"),
        ("this channel", "R-AAAAAAAA"),  # no such request
        ("this channel", "r-lowercase"),
        ("this channel", "R-ABCDEFGH; DROP TABLE requests"),
    ],
)
async def test_clicks_naming_a_request_elsewhere_or_nowhere_are_refused(harness: Harness, where: str, value: str) -> None:
    await harness.seed({f"{PREFIX}a.txt": b"a"})
    request = await harness.submit(f"delete run {RUN}")
    value = request.id if value == "same id" else value
    channel = "C0ELSEWHERE" if where == "another channel" else CHANNEL
    team = "T0OTHER01" if where == "another team" else TEAM
    before, audit_before = _snapshot(harness), len(harness.store.audit_entries())
    url = harness.slack.response_url_for(channel, request.card_ts, user=APPROVER_1)
    status, _ = await harness.sender.click(
        cards.ActionId.APPROVE, value, APPROVER_1, channel, request.card_ts or "", team_id=team, response_url=url
    )
    assert status == 200
    reply = await harness.wait_reply(APPROVER_1, ":no_entry:")
    assert "this channel" in reply or "does not name a request" in reply
    assert _snapshot(harness) == before
    assert _new_events(harness, audit_before) == ["click.refused"]


# ---- names that try to leave the workspace ------------------------------------------------------

ESCAPES = [
    "../other_run",
    "..%2Fother_run",
    "%2E%2E%2Fother_run",
    "other_run/../../models",
    "a/b",
    "*",
    "churn*",
    "?",
    "[a-z]*",
    "..\\other_run",
    "\u2215etc",  # division slash
    "\uff0fetc",  # fullwidth solidus
    "dcid.x/../../azureml-other",
    "https://evil.example/x",
    "azureml-other:run",
]


@pytest.mark.parametrize("name", ESCAPES)
def test_the_grammar_refuses_names_that_could_leave_the_run_prefix(name: str) -> None:
    for action in ("delete run", "export run", "delete experiment", "export experiment"):
        with pytest.raises(grammar.GrammarError):
            grammar.parse(f"{action} {name}")
    with pytest.raises(grammar.GrammarError):
        grammar.parse(f"delete run x --workspace {name}")


def _ctx() -> Any:
    config = WorkspaceConfig(
        subscription_id="s", resource_group="r", workspace_name="w",
        artifact_container="azureml", blobstore_container="azureml-blobstore-0001",
    )
    return SimpleNamespace(config=config, alias="dev")


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from("./\\*?%2Fa-_:~[]$\u2215\uff0f"), min_size=1, max_size=12))
async def test_any_run_the_grammar_accepts_stays_under_its_own_prefixes(name: str) -> None:
    try:
        intent = grammar.parse(f"delete run {name}")
    except grammar.GrammarError:
        return
    assert isinstance(intent, Intent) and intent.target
    assert set(intent.target).isdisjoint("/\\*?%\u2215\uff0f")  # no separator, wildcard or escape
    prefixes = await run_prefixes_of(_ctx(), [intent.target])
    assert prefixes == [
        ("azureml", f"ExperimentRun/dcid.{intent.target}/"),
        ("azureml-blobstore-0001", f"azureml/{intent.target}/"),
        ("azureml-blobstore-0001", f"dataset/{intent.target}/"),
    ]  # containers from the config; one segment from the command, closed by `/`


async def test_names_that_try_to_escape_are_refused_end_to_end(harness: Harness) -> None:
    await harness.seed({"ExperimentRun/dcid.other_run/secret.txt": b"not yours"})
    for name in ("../other_run", "*", "..%2Fother_run", "ExperimentRun/dcid.other_run"):
        status, _ = await harness.command(f"export run {name}")
        assert status == 200
        await harness.wait_reply(REQUESTER, "isn't a run id")
    assert harness.store.list_requests() == []
    assert harness.slack.calls_to("chat.postMessage") == []


async def test_dot_names_and_prefix_neighbours_plan_only_their_own_blobs(harness: Harness) -> None:
    await harness.seed(
        {
            "ExperimentRun/dcid.abc/mine.txt": b"1",
            "ExperimentRun/dcid.abcd/neighbour.txt": b"2",  # shares the text `abc`, not the prefix
            "ExperimentRun/dcid.ab/short.txt": b"3",
            "ExperimentRun/other.txt": b"4",
        }
    )
    request = await harness.submit("export run abc")
    assert [item["ref"] for item in request.plan["items"]] == ["ExperimentRun/dcid.abc/mine.txt"]
    for name in ("..", ".", "..."):  # grammatical, but they name no run here: nothing is planned
        await harness.command(f"delete run {name}")
        await harness.wait_reply(REQUESTER, f"Nothing found for run `{name}`")
    assert len(harness.store.list_requests()) == 1


# ---- export links ------------------------------------------------------------------------------

HTTPS_KEY = "a2V5LWZvci10ZXN0cy1vbmx5LW5vdC1hLXNlY3JldC1hdC1hbGw="  # base64 of a test phrase: not a secret


def _terms(link: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return f"{parts.scheme}://{parts.netloc}{parts.path}", query


def _check_read_only_link(link: str, *, container: str, name: str, expiry: timedelta, https_only: bool) -> None:
    base, terms = _terms(link)
    assert base.endswith(f"/{container}/{name}")
    assert terms["sp"] == "r"  # read, nothing else
    assert terms["sr"] == "b"  # one blob, not the container
    assert terms["spr"] == ("https" if https_only else "https,http")
    expires = datetime.fromisoformat(terms["se"].replace("Z", "+00:00"))
    assert timedelta(0) < expires - datetime.now(UTC) <= expiry + timedelta(seconds=5)
    assert terms["sig"]


@pytest.mark.parametrize("expiry", [timedelta(hours=1), timedelta(days=7)])
async def test_links_on_an_https_account_are_read_only_https_only_one_blob_and_expire(expiry: timedelta) -> None:
    config = WorkspaceConfig(
        subscription_id="s", resource_group="r", workspace_name="w",
        storage_connection_string=f"DefaultEndpointsProtocol=https;AccountName=amlbotsa;AccountKey={HTTPS_KEY};EndpointSuffix=core.windows.net",
    )
    blobs = WorkspaceBlobs(config)
    try:
        link = await blobs.read_link("amlbot-exports", "exports/R-ABCDEFGH/R-ABCDEFGH.zip", expiry)
    finally:
        await blobs.close()
    assert link.startswith("https://amlbotsa.blob.core.windows.net/amlbot-exports/exports/R-ABCDEFGH/R-ABCDEFGH.zip?")
    _check_read_only_link(
        link, container="amlbot-exports", name="exports/R-ABCDEFGH/R-ABCDEFGH.zip", expiry=expiry, https_only=True
    )


async def test_user_delegation_links_have_the_same_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.storage.blob import UserDelegationKey

    config = WorkspaceConfig(
        subscription_id="s", resource_group="r", workspace_name="w",
        storage_account_url="https://amlbotsa.blob.core.windows.net",
    )
    blobs = WorkspaceBlobs(config)
    asked: list[tuple[datetime, datetime]] = []

    def delegation_key(start: datetime, end: datetime) -> UserDelegationKey:
        asked.append((start, end))
        key = UserDelegationKey()
        key.signed_oid, key.signed_tid = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"
        key.signed_start, key.signed_expiry = start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service, key.signed_version, key.value = "b", "2025-01-05", HTTPS_KEY
        return key

    monkeypatch.setattr(blobs._sync, "get_user_delegation_key", delegation_key)  # no network, no sign-in
    try:
        link = await blobs.read_link("amlbot-exports", "exports/R-ABCDEFGH/R-ABCDEFGH.zip", timedelta(days=7))
    finally:
        await blobs.close()
    _check_read_only_link(
        link, container="amlbot-exports", name="exports/R-ABCDEFGH/R-ABCDEFGH.zip", expiry=timedelta(days=7), https_only=True
    )
    # The delegation key itself lapses with the link: it cannot sign anything that outlives it.
    [(start, end)] = asked
    assert end - start <= timedelta(days=7, minutes=6)
    # Azure issues no delegation key for longer than 7 days: a longer link is refused before asking.
    blobs = WorkspaceBlobs(config)
    monkeypatch.setattr(blobs._sync, "get_user_delegation_key", delegation_key)
    try:
        with pytest.raises(ValueError, match="at most 7 days"):
            await blobs.read_link("amlbot-exports", "exports/R-ABCDEFGH/R-ABCDEFGH.zip", timedelta(days=8))
    finally:
        await blobs.close()
    assert len(asked) == 1


async def test_the_posted_export_link_reads_that_archive_and_nothing_else(harness: Harness) -> None:
    await harness.seed({f"{PREFIX}a.txt": b"a" * 100, "ExperimentRun/dcid.other_run/b.txt": b"b"})
    request = await harness.submit(f"export run {RUN}")
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.SUCCEEDED)
    message = await harness.slack.wait_for(
        lambda: next((m for m in harness.thread(request.id) if "Export ready" in str(m.get("blocks"))), None)
    )
    link = str(message["blocks"][0]["text"]["text"]).split("<", 1)[1].split("|", 1)[0]
    container = f"exports-{harness.container}"
    name = f"exports/{request.id}/{request.id}.zip"
    expiry = harness.bot.services.config.export_link_expiry
    # Azurite serves plain HTTP, so the link allows both; on an HTTPS account it is HTTPS-only (above).
    _check_read_only_link(link, container=container, name=name, expiry=expiry, https_only=False)
    base, query = link.split("?", 1)
    async with aiohttp.ClientSession() as session:
        async with session.get(link) as response:
            assert response.status == 200
        async with session.put(link, data=b"overwritten", headers={"x-ms-blob-type": "BlockBlob"}) as response:
            assert response.status == 403
        async with session.delete(link) as response:
            assert response.status == 403
        other = base.rsplit("/", 1)[0] + f"/other.zip?{query}"
        async with session.get(other) as response:
            assert response.status == 403  # the signature names one blob
        listing = base.split(f"/{container}/", 1)[0] + f"/{container}?restype=container&comp=list&{query}"
        async with session.get(listing) as response:
            assert response.status == 403
    # Still there, unchanged.
    async with aiohttp.ClientSession() as session, session.get(link) as response:
        assert response.status == 200 and (await response.read())[:2] == b"PK"

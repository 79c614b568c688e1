"""Attacks on what people see and when: deadlines, lost notices, other teams' requests, personal
data in channels, and Slack text that leaks internals.

Each test drives the running bot with Slack-signed requests and checks the effect where it lands:
the Slack stand-in, the store, and storage (Azurite).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from bot import cards
from bot.lifecycle import State
from bot.store.store import RequestRecord, now
from sandbox.standins.azure.server import AzureStandIn
from sandbox.standins.azure.state import Identity
from tests.e2e.harness import (
    APPROVER_1,
    APPROVER_2,
    ONCALL,
    REQUESTER,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    WORKSPACE,
    Harness,
    start_harness,
    stop_harness,
)
from tests.e2e.test_home import open_home, text_of
from tests.support.storage_proxy import StorageFaultProxy

RUN = "visibility_train_1700000000_abcd1234"
PREFIX = f"ExperimentRun/dcid.{RUN}/"
FILES = {f"{PREFIX}logs/part-{i}.txt": f"line {i}\n".encode() for i in range(3)}


async def stop_timers(h: Harness) -> None:
    """No sweep runs from here on: what follows is decided by the click's own compare-and-set."""
    h.bot.worker.stop()
    assert h.bot.worker_task is not None
    await h.bot.worker_task


def set_columns(h: Harness, request_id: str, **values: object) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    with h.store.engine.begin() as conn:
        conn.execute(text(f"UPDATE requests SET {assignments} WHERE id = :id"), {"id": request_id, **values})


# ---- 8: an expired request is neither approved nor started --------------------------------------


async def test_a_request_past_its_deadline_cannot_be_approved_before_the_sweep_runs(harness: Harness) -> None:
    await harness.seed(FILES)
    request = await harness.submit(f"delete run {RUN}")
    await stop_timers(harness)
    set_columns(harness, request.id, expires_at=now() - timedelta(minutes=1))

    status, _ = await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    assert status == 200
    reply = await harness.wait_reply(APPROVER_1, request.id)
    assert reply.startswith(":no_entry:") and f"{request.id} expired at" in reply and "nothing will run" in reply
    # The click itself expired it: the card and thread say so though no sweep ran.
    assert harness.request(request.id).state is State.EXPIRED
    assert harness.request(request.id).approvers == ()
    await harness.wait_thread(request.id, f"{request.id} expired — nothing was run.")
    assert "Expired" in harness.card(request.id)["text"] or "expired" in harness.card(request.id)["text"]
    assert harness.store.count_jobs() == 0
    assert "request.approval" not in harness.events(request.id)
    assert await harness.blob_names(PREFIX) == set(FILES)


async def test_a_request_approved_after_its_deadline_is_never_started(harness: Harness) -> None:
    """A replica that did not check the deadline (an older version in a rolling deploy) queued it."""
    await harness.seed(FILES)
    request = await harness.submit(f"delete run {RUN}")
    late = now()
    with harness.store.engine.begin() as conn:
        conn.execute(
            text("UPDATE requests SET state = 'queued', decided_by = :who, decided_at = :late, expires_at = :deadline "
                 "WHERE id = :id"),
            {"id": request.id, "who": APPROVER_1, "late": late, "deadline": late - timedelta(minutes=1)},
        )
        conn.execute(text("INSERT INTO jobs (request_id, attempts, cancel_requested) VALUES (:id, 0, false)"), {"id": request.id})
    harness.bot.services.wake_worker.set()

    await harness.wait_state(request.id, State.EXPIRED)
    await harness.wait_thread(request.id, f"{request.id} expired — nothing was run.")
    assert "job.started" not in harness.events(request.id)
    assert await harness.blob_names(PREFIX) == set(FILES)


# ---- 13: a failed plan-file upload silences nobody ----------------------------------------------

APPROVERS_CHANNEL = "C0APPROVE1"


@pytest.fixture
async def announcing(tmp_path: Path, azurite_connection: str) -> AsyncIterator[Harness]:
    """A bot whose policy also announces each request in the approvers' channel."""
    running = await start_harness(tmp_path, azurite_connection, approvers_channel=APPROVERS_CHANNEL)
    yield running
    await stop_harness(running)


async def test_a_refused_plan_file_still_confirms_to_the_requester_and_notifies_approvers(announcing: Harness) -> None:
    h = announcing
    many = {f"{PREFIX}outputs/file-{i:03}.bin": b"x" for i in range(40)}  # more than the card lists
    await h.seed(many)
    h.slack.fail("files.completeUploadExternal", "fatal_error")

    request = await h.submit(f"delete run {RUN}")  # waits for the requester's confirmation
    assert len(request.plan["items"]) == 40 and request.state is State.PENDING
    notice = await h.slack.wait_for(
        lambda: [m for m in h.slack.messages(APPROVERS_CHANNEL) if request.id in m["text"]],
        description="the approvers' notice",
    )
    assert len(notice) == 1
    await h.wait_thread(request.id, f"The full plan of {request.id} could not be attached here")
    assert not [f for f in h.slack.files if f.filename == f"{request.id}-plan.json"]
    # The request goes on as if the file were there.
    await h.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await h.wait_state(request.id, State.SUCCEEDED)
    assert await h.blob_names(PREFIX) == set()


# ---- 14: status, list and cancel stay within the asker's reach ----------------------------------

OTHER_TEAM = "T0OTHER01"
OTHER_CHANNEL = "C0ELSEWHERE"


async def ask(h: Harness, text: str, user: str, **where: str) -> str:
    """A command and its private answer (the first one naming the command's request or list)."""
    before = len(h.replies(user))
    status, _ = await h.command(text, user=user, **where)
    assert status == 200
    return await h.slack.wait_for(lambda: len(h.replies(user)) > before and h.replies(user)[before], description=text)


async def test_another_team_never_hears_of_a_request_nor_cancels_it(harness: Harness) -> None:
    await harness.seed(FILES)
    request = await harness.submit(f"delete run {RUN}")
    # The same user id, from another team's workspace: an approver there is nobody here.
    for command in (f"status {request.id}", f"cancel {request.id}"):
        reply = await ask(harness, command, APPROVER_1, team_id=OTHER_TEAM)
        assert f"No request `{request.id}`" in reply and RUN not in reply
    listed = await ask(harness, "list pending", APPROVER_1, team_id=OTHER_TEAM)
    assert request.id not in listed and listed == "Nothing to show."
    assert harness.request(request.id).state is State.PENDING
    assert "cancel.refused" in harness.events(request.id) and "status.refused" in harness.events(request.id)


async def test_status_and_list_answer_only_in_the_requests_channel_or_to_its_approvers(harness: Harness) -> None:
    await harness.seed(FILES)
    request = await harness.submit(f"delete run {RUN}")

    # On-call may request, not approve: from another channel, the request does not exist for them.
    reply = await ask(harness, f"status {request.id}", ONCALL, channel=OTHER_CHANNEL)
    assert f"No request `{request.id}`" in reply and RUN not in reply
    assert request.id not in await ask(harness, "list pending", ONCALL, channel=OTHER_CHANNEL)
    cancel = await ask(harness, f"cancel {request.id}", ONCALL, channel=OTHER_CHANNEL)
    assert f"No request `{request.id}`" in cancel

    # In the request's own channel they may see it; an approver may from anywhere; so may its requester.
    assert RUN in await ask(harness, f"status {request.id}", ONCALL)
    assert request.id in await ask(harness, "list pending", APPROVER_2, channel=OTHER_CHANNEL)
    assert RUN in await ask(harness, f"status {request.id}", APPROVER_2, channel=OTHER_CHANNEL)
    assert request.id in await ask(harness, "list mine", REQUESTER, channel=OTHER_CHANNEL)
    assert harness.request(request.id).state is State.PENDING


# ---- 15: personal data is delivered privately; a link can be revoked --------------------------------

ALICE = Identity(name="Alice Example", object_id="a11ce000-0000-4000-8000-0000000000a1", upn="alice@contoso.com")


def export_message(messages: list[dict[str, Any]], request_id: str) -> dict[str, Any] | None:
    return next((m for m in messages if "Export ready" in str(m.get("blocks")) and request_id in str(m["blocks"])), None)


def link_in(message: dict[str, Any]) -> str:
    return str(message["blocks"][0]["text"]["text"]).split("<", 1)[1].split("|", 1)[0]


def channel_leaks(h: Harness, request_id: str, link: str) -> list[dict[str, Any]]:
    """Messages anywhere but the requester's DM that carry the link or the export card."""
    dm = h.slack.dm_channel(REQUESTER)
    return [
        m for m in h.slack.messages()
        if m["channel"] != dm and (link in json.dumps(m) or "Export ready" in json.dumps(m) or "Download the archive" in json.dumps(m))
    ]


async def test_an_export_about_a_person_sends_its_link_to_the_requester_alone(azure_harness: Harness, azure: AzureStandIn) -> None:
    h = azure_harness
    workspace = azure.state.workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE)
    assert workspace is not None
    workspace.add_job("alice-private-1", experiment_name="churn", created_by=ALICE)
    await h.seed({"ExperimentRun/dcid.alice-private-1/logs/out.txt": b"hers"})

    request = await h.submit(f"export user {ALICE.object_id}")
    await h.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await h.wait_state(request.id, State.SUCCEEDED)

    private = await h.slack.wait_for(lambda: export_message(h.direct_messages(REQUESTER), request.id), description="the DM")
    note = await h.wait_thread(request.id, "sent privately to")
    assert f"{request.id} is ready: its download link was sent privately to <@{REQUESTER}>" in note
    link = link_in(private)
    async with aiohttp.ClientSession() as session, session.get(link) as response:
        assert response.status == 200
    assert channel_leaks(h, request.id, link) == []
    assert h.slack.calls_to("conversations.open")[0].args["users"] == REQUESTER
    # Nor does the approver's Home tab show it; the requester's does.
    assert link not in text_of(await open_home(h, APPROVER_1))
    assert link in text_of(await open_home(h, REQUESTER))


@pytest.fixture
async def private_links(tmp_path: Path, azurite_connection: str) -> AsyncIterator[Harness]:
    running = await start_harness(tmp_path, azurite_connection, config={"private_export_links": True})
    yield running
    await stop_harness(running)


async def test_private_export_links_sends_every_exports_link_privately(private_links: Harness) -> None:
    h = private_links
    await h.seed(FILES)
    request = await h.submit(f"export run {RUN}")
    await h.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    private = await h.slack.wait_for(lambda: export_message(h.direct_messages(REQUESTER), request.id), description="the DM")
    await h.wait_thread(request.id, f"sent privately to <@{REQUESTER}>")
    assert channel_leaks(h, request.id, link_in(private)) == []


async def exported(h: Harness) -> tuple[RequestRecord, str]:
    await h.seed(FILES)
    request = await h.submit(f"export run {RUN}")
    await h.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    message = await h.slack.wait_for(lambda: export_message(h.thread(request.id), request.id), description="the link")
    return h.request(request.id), link_in(message)


async def status_of(link: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(link) as response:
        return response.status


async def test_revoke_deletes_the_archive_kills_the_link_and_is_audited(harness: Harness) -> None:
    request, link = await exported(harness)
    archive = request.result["extras"]["archive"]
    container, name = archive.split("/", 1)
    assert await status_of(link) == 200

    # Nobody outside its reach may revoke it: another team, or someone in another channel who may not approve.
    for user, where in ((APPROVER_1, {"team_id": OTHER_TEAM}), (ONCALL, {"channel": OTHER_CHANNEL})):
        assert f"No request `{request.id}`" in await ask(harness, f"revoke {request.id}", user, **where)
    refused = await ask(harness, f"revoke {request.id}", ONCALL)  # in its channel, but neither requester nor approver
    assert "Only the requester or an approver may revoke" in refused
    assert await harness.blob_names(name, container) == {name} and await status_of(link) == 200

    reply = await ask(harness, f"revoke {request.id}", REQUESTER, channel=OTHER_CHANNEL)
    assert reply == f"The archive of {request.id} is deleted: its download link no longer works."
    assert await harness.blob_names(name, container) == set()
    assert await status_of(link) == 404
    await harness.wait_thread(request.id, f"<@{REQUESTER}> revoked the export of {request.id}")
    entry = next(e for e in harness.store.audit_entries(request.id) if e.event == "export.revoked")
    assert entry.actor == REQUESTER and archive in entry.detail
    assert harness.request(request.id).result["revoked"]["by"] == REQUESTER
    home = text_of(await open_home(harness, REQUESTER))
    assert link not in home and "deleted with `/aml revoke`" in home
    assert harness.store.verify_audit().ok


async def test_revoke_of_a_request_without_an_archive_deletes_nothing(harness: Harness) -> None:
    await harness.seed(FILES)
    request = await harness.submit(f"delete run {RUN}")
    reply = await ask(harness, f"revoke {request.id}", REQUESTER)
    assert "made no export archive" in reply
    assert await harness.blob_names(PREFIX) == set(FILES) and "export.revoked" not in harness.events(request.id)


# ---- 16: plain words, never internals -------------------------------------------------------------


async def test_a_click_on_a_decided_card_says_who_decided_in_plain_words(harness: Harness) -> None:
    await harness.seed(FILES)
    request = await harness.submit(f"delete run {RUN}")
    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await harness.wait_state(request.id, State.QUEUED, State.RUNNING, State.SUCCEEDED)

    await harness.click(cards.ActionId.APPROVE, request.id, APPROVER_2)
    reply = await harness.wait_reply(APPROVER_2, request.id)
    assert f"{request.id} was already approved by <@{APPROVER_1}>" in reply
    assert "cannot become" not in reply and "is already" not in reply
    status = await ask(harness, f"status {request.id}", APPROVER_2)
    assert f"approved by <@{APPROVER_1}>" in status and "*queued*" not in status and "*succeeded*" not in status


@pytest.fixture
async def proxied(tmp_path: Path, azurite_connection: str) -> AsyncIterator[tuple[Harness, StorageFaultProxy]]:
    async with StorageFaultProxy(azurite_connection) as proxy:
        running = await start_harness(tmp_path, proxy.connection_string)
        yield running, proxy
        await stop_harness(running)


async def test_a_failed_job_posts_a_short_reason_and_never_azures_error_body(
    proxied: tuple[Harness, StorageFaultProxy],
) -> None:
    h, proxy = proxied
    await h.seed(FILES)
    request = await h.submit(f"export run {RUN}")
    proxy.fail_next("PUT", r"/exports/R-", status=403, times=100, code="AuthorizationFailure")
    await h.click(cards.ActionId.APPROVE, request.id, APPROVER_1)
    await h.wait_state(request.id, State.FAILED)

    posted = await h.wait_thread(request.id, f"{request.id} failed")
    assert f"<@{REQUESTER}>" in posted
    assert "Azure refused a call (HTTP 403, AuthorizationFailure)" in posted
    assert f"The details are in amlbot's log under {request.id}" in posted
    everything = " ".join(h.thread_texts(request.id) + h.replies())
    for leak in ("?xml", "Injected by the test proxy", "RequestId", "Traceback", "HttpResponseError", "Content:"):
        assert leak not in everything
    assert "Azure refused a call" in (h.request(request.id).result or {})["error"]


async def test_azure_refusing_the_preview_is_told_in_plain_words_and_nothing_is_requested(
    proxied: tuple[Harness, StorageFaultProxy],
) -> None:
    h, proxy = proxied
    await h.seed(FILES)
    proxy.fail_next("GET", r"comp=list", status=403, times=100, code="AuthorizationPermissionMismatch")
    await h.command(f"delete run {RUN}")
    reply = await h.wait_reply(REQUESTER, "Could not plan")
    assert "`delete run` on `dev`: Azure refused a call (HTTP 403, AuthorizationPermissionMismatch)" in reply
    for leak in ("?xml", "Injected by the test proxy", "RequestId", "Traceback", "Content:"):
        assert leak not in reply
    assert h.store.list_requests() == [] and h.slack.messages() == []

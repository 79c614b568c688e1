"""Enterprise Grid: people have org-wide ids (W…), the same in every workspace of the org; payloads
carry `enterprise` beside the workspace's `team`. A request lives in the workspace it was made in:
from another workspace of the same org it is neither visible nor actionable, unless the policy says
`org_wide`; from another org, never."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import cards
from bot.lifecycle import State
from bot.store.store import RequestRecord
from sandbox.standins.slack_api import ApiCall
from sandbox.standins.slack_signing import app_home_opened_body
from tests.e2e.harness import TEAM, Harness, Mode, start_harness, stop_harness

ORG = "E0ORG0001"
OTHER_WORKSPACE = "T0002"  # another workspace of the same org
GRID_REQUESTER = "W0REQ0001"
GRID_APPROVER = "W0APP0001"
RUN = "grid_train_1700000000_abcd1234"
PREFIX = f"ExperimentRun/dcid.{RUN}/"


pytestmark = pytest.mark.both_modes


async def start_grid(tmp_path: Path, azurite_connection: str, slack_mode: Mode, **policy: Any) -> Harness:
    running = await start_harness(
        tmp_path, azurite_connection, mode=slack_mode,
        requesters={"*": {"users": [GRID_REQUESTER]}}, approvers={"users": [GRID_APPROVER]}, **policy,
    )
    running.slack.enterprise_id = ORG  # installed org-wide: auth.test says so, before the bot's first call
    running.slack.add_user(GRID_REQUESTER, "gwen")
    running.slack.add_user(GRID_APPROVER, "otto")
    return running


@pytest.fixture
async def grid(tmp_path: Path, azurite_connection: str, slack_mode: Mode) -> AsyncIterator[Harness]:
    running = await start_grid(tmp_path, azurite_connection, slack_mode)
    yield running
    await stop_harness(running)


@pytest.fixture
async def org_wide(tmp_path: Path, azurite_connection: str, slack_mode: Mode) -> AsyncIterator[Harness]:
    """The org shares its requests across its workspaces: the policy says `org_wide: true`."""
    running = await start_grid(tmp_path, azurite_connection, slack_mode, org_wide=True)
    yield running
    await stop_harness(running)


def in_org(team: str, org: str = ORG) -> dict[str, Any]:
    """What a delivery from workspace `team` of `org` carries, the app being installed org-wide."""
    return {"team_id": team, "enterprise_id": org, "is_enterprise_install": True}


async def submit_in(h: Harness, team: str) -> RequestRecord:
    status, _ = await h.command(f"delete run {RUN}", GRID_REQUESTER, **in_org(team))
    assert status == 200
    await h.wait_reply(GRID_REQUESTER, "is waiting for approval")
    [record] = h.store.list_requests()
    return record


async def click_from(h: Harness, record: RequestRecord, team: str, org: str = ORG) -> None:
    await h.click(cards.ActionId.APPROVE, record.id, GRID_APPROVER, **in_org(team, org))


async def test_grid_ids_request_and_approve_in_their_workspace(grid: Harness) -> None:
    await grid.seed({f"{PREFIX}logs/a.txt": b"a", f"{PREFIX}logs/b.txt": b"b"})
    record = await submit_in(grid, TEAM)
    assert (record.requester, record.team_id, record.state) == (GRID_REQUESTER, TEAM, State.PENDING)
    assert f"<@{GRID_REQUESTER}>" in str(grid.card(record.id)["blocks"])

    await click_from(grid, record, TEAM)
    done = await grid.wait_state(record.id, State.SUCCEEDED)
    assert done.approvers == (GRID_APPROVER,)
    assert [c.response["enterprise_id"] for c in grid.slack.calls_to("auth.test")] == [ORG]  # Bolt's one look
    assert await grid.blob_names(PREFIX) == set()
    assert {e.actor for e in grid.store.audit_entries(record.id)} >= {GRID_REQUESTER, GRID_APPROVER}


async def test_from_another_workspace_of_the_org_a_request_is_neither_seen_nor_approved(grid: Harness) -> None:
    await grid.seed({f"{PREFIX}logs/a.txt": b"a"})
    record = await submit_in(grid, TEAM)

    await click_from(grid, record, OTHER_WORKSPACE)  # the same person, the same card, another workspace
    assert "does not exist" in await grid.wait_reply(GRID_APPROVER, "does not exist")
    before = len(grid.replies(GRID_APPROVER))
    await grid.command(f"status {record.id}", GRID_APPROVER, **in_org(OTHER_WORKSPACE))
    await grid.command("list pending", GRID_APPROVER, **in_org(OTHER_WORKSPACE))
    answers = await grid.slack.wait_for(lambda: grid.replies(GRID_APPROVER)[before:][1:] and grid.replies(GRID_APPROVER)[before:])
    assert sorted(answer.splitlines()[0] for answer in answers) == [f":warning: No request `{record.id}`.", "Nothing to show."]
    after = grid.request(record.id)
    assert after.state is State.PENDING and after.approvers == ()

    await click_from(grid, record, TEAM)  # in its own workspace, the same approver may
    assert (await grid.wait_state(record.id, State.SUCCEEDED)).approvers == (GRID_APPROVER,)


async def open_home(h: Harness, user: str, team: str, org: str = ORG) -> str:
    """The Home tab `user` is shown on opening it in workspace `team`, as JSON text."""
    def publishes() -> list[ApiCall]:
        return [c for c in h.slack.calls_to("views.publish") if c.args.get("user_id") == user and c.ok]

    seen = len(publishes())
    status, _ = await h.sender.send(app_home_opened_body(user, team, enterprise_id=org), content_type="application/json")
    assert status == 200
    calls = await h.slack.wait_for(lambda: publishes()[seen:], description=f"the Home tab of {user} in {team}")
    return json.dumps(calls[0].args["view"])


async def test_the_home_tab_in_another_workspace_of_the_org_shows_none_of_its_requests(grid: Harness) -> None:
    await grid.seed({f"{PREFIX}logs/a.txt": b"a"})
    record = await submit_in(grid, TEAM)
    assert record.id in await open_home(grid, GRID_APPROVER, TEAM)  # waiting for them, with its buttons
    assert record.id in await open_home(grid, GRID_REQUESTER, TEAM)  # their own
    assert record.id not in await open_home(grid, GRID_APPROVER, OTHER_WORKSPACE)
    assert record.id not in await open_home(grid, GRID_REQUESTER, OTHER_WORKSPACE)


async def test_org_wide_a_request_is_seen_and_approved_from_another_workspace_of_its_org(org_wide: Harness) -> None:
    await org_wide.seed({f"{PREFIX}logs/a.txt": b"a"})
    record = await submit_in(org_wide, TEAM)
    assert org_wide.request(record.id).enterprise_id == ORG  # stored with the request

    await org_wide.command(f"status {record.id}", GRID_APPROVER, **in_org(OTHER_WORKSPACE))
    assert "Waiting for approval" in await org_wide.wait_reply(GRID_APPROVER, f"*{record.id}*")
    await org_wide.command("list pending", GRID_APPROVER, **in_org(OTHER_WORKSPACE))
    assert record.id in await org_wide.wait_reply(GRID_APPROVER, f"• *{record.id}*")
    assert record.id in await open_home(org_wide, GRID_APPROVER, OTHER_WORKSPACE)  # waiting for them there too
    await click_from(org_wide, record, OTHER_WORKSPACE)
    done = await org_wide.wait_state(record.id, State.SUCCEEDED)
    assert done.approvers == (GRID_APPROVER,) and done.team_id == TEAM


async def test_org_wide_never_reaches_another_org(org_wide: Harness) -> None:
    await org_wide.seed({f"{PREFIX}logs/a.txt": b"a"})
    record = await submit_in(org_wide, TEAM)

    assert record.id not in await open_home(org_wide, GRID_APPROVER, "T0009", org="E0ELSE001")
    await click_from(org_wide, record, "T0009", org="E0ELSE001")  # the same ids, from another org
    assert "does not exist" in await org_wide.wait_reply(GRID_APPROVER, "does not exist")
    await org_wide.command(f"status {record.id}", GRID_APPROVER, **in_org("T0009", "E0ELSE001"))
    assert await org_wide.wait_reply(GRID_APPROVER, f"No request `{record.id}`")
    after = org_wide.request(record.id)
    assert after.state is State.PENDING and after.approvers == ()

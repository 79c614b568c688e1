"""The App Home tab: a pure rendering that stays within Slack's limits however much there is to show."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

from slack_sdk.models.views import View

from bot import cards
from bot.home import MAX_RESULTS, MAX_WAITING, HomeContent, home_view
from bot.lifecycle import State
from commands.intents import Action
from tests.unit.test_cards import AT, REQUESTER, record

EXPORT = {"link": "https://acct.blob.core.windows.net/exports/x.zip?sp=r&sig=abc", "size": 2048, "expires_at": (AT + timedelta(days=7)).isoformat()}


def texts(view: dict[str, object]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def test_much_waiting_stays_within_the_tabs_100_blocks() -> None:
    waiting = [dataclasses.replace(record(), id=f"R-AAAA{i:04}", text="delete run " + "x" * 3000) for i in range(50)]
    finished = [record(State.SUCCEEDED, result={"summary": {"exported": 1}, "extras": EXPORT}) for _ in range(30)]
    view = home_view(HomeContent("UAPP1", waiting, finished[:10], finished), AT)
    View(**view).validate_json()
    assert len(view["blocks"]) <= 100
    assert len([b for b in view["blocks"] if b["type"] == "actions"]) == MAX_WAITING
    assert f"…and {50 - MAX_WAITING} more: `/aml list pending`" in texts(view)
    assert texts(view).count("Download the archive") == MAX_RESULTS


def test_an_expired_link_is_not_offered_and_a_receipt_says_where_it_is() -> None:
    export = record(State.SUCCEEDED, action=Action.parse("export run"), result={"summary": {"exported": 3}, "extras": EXPORT})
    deletion = record(State.PARTIALLY_SUCCEEDED, result={"summary": {"deleted": 2, "failed": 1}, "receipt_sha256": "sha256:x"})
    view = home_view(HomeContent(REQUESTER, [], [], [export, deletion]), AT + timedelta(days=8))
    assert "Download the archive" not in texts(view) and "the download link has expired" in texts(view)
    assert "partially succeeded: 2 deleted, 1 failed" in texts(view)
    assert "receipt in the thread of its card in <#C1> · `amlbot audit show R-ABCD2345`" in texts(view)


def test_an_empty_tab_says_so_and_a_notice_goes_on_top() -> None:
    view = home_view(HomeContent(REQUESTER, [], [], [], frozen=True, notice=":no_entry: You are not an approver."), AT)
    assert view["blocks"][1] == cards.section(":no_entry: You are not an approver.")
    assert "amlbot is frozen" in texts(view)
    for empty in ("Nothing waits for you.", "You have asked for nothing yet.", "No export or receipt of yours yet."):
        assert empty in texts(view)


def test_user_text_cannot_become_a_mention_on_the_tab() -> None:
    sneaky = record(text="delete run <!channel> <@U0BOSS>")
    assert "<!channel>" not in texts(home_view(HomeContent("UAPP1", [sneaky], [sneaky], []), AT))


def test_a_waiting_request_shows_the_cards_headline_warnings_and_a_link_to_it() -> None:
    from commands.plan import ItemKind, PlanItem
    from tests.unit.test_cards import SUB, _request, summary

    purge = _request("delete workspace", "delete workspace prod --purge", [PlanItem(ItemKind.RESOURCE, SUB)])
    link = "https://amlbot-test.slack.com/archives/C1/p1000"
    words = summary(purge)
    view = home_view(HomeContent("UAPP1", [purge], [], [], links={purge.id: link}, summaries={purge.id: words}), AT)
    View(**view).validate_json()
    card = cards.request_card(purge, words)
    shown = texts(view)
    assert f"*{cards.headline(purge, words)}*" in shown and f"<{link}|Open its card>" in shown
    assert ":red_circle: *PERMANENT — the workspace cannot be recovered.*" in shown  # the card's red line, on the tab too
    [buttons] = [b["elements"] for b in view["blocks"] if b["type"] == "actions"]
    assert buttons == [e for b in card if b["type"] == "actions" for e in b["elements"]][:2]  # same danger confirmation
    assert buttons[0]["confirm"]["style"] == "danger"


def test_a_server_side_export_offers_its_container_not_an_archive() -> None:
    extras = EXPORT | {"way": "server-side", "link": "https://acct.blob.core.windows.net/amlbot-exports-r-abcd2345?sp=rl&sig=abc"}
    export = record(State.PARTIALLY_SUCCEEDED, action=Action.parse("export run"), result={"summary": {"exported": 2, "changed": 1}, "extras": extras})
    shown = texts(home_view(HomeContent(REQUESTER, [], [], [export]), AT))
    assert "|The export's container (azcopy)>" in shown and "Download the archive" not in shown
    assert "partially succeeded: 1 changed since the plan, 2 exported" in shown

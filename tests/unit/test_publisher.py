"""The publisher's plan summaries: a request's plan is parsed and grouped once, not at every render."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bot import cards
from bot.publisher import Publisher
from commands.plan import Plan
from tests.unit.test_cards import plan, record


def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the stored plans parsed from here on."""
    counted: list[int] = []
    parse = Plan.from_dict.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Plan], data: dict[str, Any]) -> Plan:
        counted.append(len(data["items"]))
        return parse(cls, data)  # type: ignore[no-any-return]

    monkeypatch.setattr(Plan, "from_dict", classmethod(counting))
    return counted


async def test_a_requests_plan_is_parsed_once_for_every_render_and_again_only_when_its_hash_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publisher = Publisher(None, None, None, None)  # type: ignore[arg-type]  # summaries need no Slack, no store
    counted = parses(monkeypatch)
    request = record()
    first = await publisher.summary(request)
    assert first is not None and counted == [3]
    for _ in range(3):  # each click re-renders the card from a fresh read of the request
        assert await publisher.summary(dataclasses.replace(request, approvers=("UAPP1",))) is first
    assert counted == [3]
    bigger = plan(items=5)
    changed = dataclasses.replace(request, plan=bigger.to_dict(), plan_hash=bigger.hash)
    again = await publisher.summary(changed)
    assert counted == [3, 5] and again == cards.summary(changed)


async def test_the_plan_just_made_is_summed_up_without_parsing_the_stored_one(monkeypatch: pytest.MonkeyPatch) -> None:
    publisher = Publisher(None, None, None, None)  # type: ignore[arg-type]
    counted = parses(monkeypatch)
    request = record()
    made = await publisher.summary(request, plan())
    assert counted == [] and made == cards.summary(request)  # the same words as from the stored plan

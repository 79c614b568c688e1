"""The publisher's plan summaries: a request's plan is parsed and grouped once, not at every render."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bot.publisher import Publisher
from bot.store.store import RequestRecord
from commands.plan import Plan
from tests.unit.test_cards import plan, record, summary


class StoredPlans:
    """The one store method a summary reads: the plan stored with a request."""

    def __init__(self) -> None:
        self.plans: dict[str, dict[str, Any]] = {}

    def stored(self, request: RequestRecord, stored: Plan) -> RequestRecord:
        self.plans[request.id] = stored.to_dict()
        return request

    def plan_of(self, request_id: str) -> dict[str, Any] | None:
        return self.plans.get(request_id)


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
    store = StoredPlans()
    publisher = Publisher(None, store, None, None)  # type: ignore[arg-type]  # summaries need no Slack
    counted = parses(monkeypatch)
    request = store.stored(record(), plan())
    first = await publisher.summary(request)
    assert first is not None and counted == [3]
    for _ in range(3):  # each click re-renders the card from a fresh read of the request
        assert await publisher.summary(dataclasses.replace(request, approvers=("UAPP1",))) is first
    assert counted == [3]
    bigger = plan(items=5)
    changed = store.stored(record(of=bigger), bigger)
    again = await publisher.summary(changed)
    assert counted == [3, 5] and again == summary(changed)


async def test_the_plan_just_made_is_summed_up_without_parsing_the_stored_one(monkeypatch: pytest.MonkeyPatch) -> None:
    store = StoredPlans()
    publisher = Publisher(None, store, None, None)  # type: ignore[arg-type]
    counted = parses(monkeypatch)
    request = store.stored(record(), plan())
    made = await publisher.summary(request, plan())
    assert counted == [] and made == summary(request)  # the same words as from the stored plan

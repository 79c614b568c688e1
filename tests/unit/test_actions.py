"""Action: the one typed form of `verb kind`, stored as its text."""

from __future__ import annotations

import pytest

from commands.intents import ALL_ACTIONS, KINDS_BY_VERB, Action, Kind, Verb
from commands.plan import Plan


def test_every_action_reads_back_from_the_text_it_is_stored_as() -> None:
    assert len(ALL_ACTIONS) == sum(len(kinds) for kinds in KINDS_BY_VERB.values())
    for action in ALL_ACTIONS:
        assert Action.parse(str(action)) == action


def test_only_deletions_and_cleanups_are_destructive() -> None:
    assert {a for a in ALL_ACTIONS if a.destructive} == {a for a in ALL_ACTIONS if a.verb is not Verb.EXPORT}
    assert Action(Verb.CLEANUP, Kind.EXPORTS).destructive and not Action(Verb.EXPORT, Kind.RUN).destructive


@pytest.mark.parametrize("text", ["export schedule", "cleanup run", "delete", "delete  run", "remove run", ""])
def test_text_that_names_no_action_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Action.parse(text)


def test_a_plan_stores_its_action_as_text_so_its_hash_does_not_move() -> None:
    plan = Plan(Action(Verb.DELETE, Kind.RUN), "dev", "r1")
    assert plan.to_dict()["action"] == "delete run"
    assert Plan.from_dict(plan.to_dict()) == plan

"""Zip member names: inside the archive root whatever a blob is called, one member per name."""

from __future__ import annotations

import pytest

from commands.intents import Action
from commands.operations.run_data import member_name
from commands.plan import ItemKind, Plan, PlanItem

NAMES = [
    "c/plain/file.txt", "c//lead.txt", "c/a//b", "c/../../etc/passwd", "c/./x", "c/a\\..\\..\\b",
    "c/100%.txt", "c/100%25.txt", "c/%2E%2E/x", "c/trailing/", "c/..hidden", "c/x..",
]


@pytest.mark.parametrize("name", NAMES)
def test_a_member_never_leaves_the_archive_root(name: str) -> None:
    member = member_name(name)
    segments = member.split("/")
    assert not member.startswith("/") and "\\" not in member
    assert not {"", ".", ".."} & set(segments), member


def test_distinct_names_stay_distinct_members() -> None:
    assert len({member_name(name) for name in NAMES}) == len(NAMES)
    assert member_name("c/plain/file.txt") == "c/plain/file.txt"  # ordinary names are kept as they are


def test_a_plan_without_etags_keeps_the_hash_it_was_approved_with() -> None:
    old = {"action": "delete run", "workspace": "dev", "target": "r", "warnings": [], "notes": {},
           "items": [{"kind": "blob", "ref": "a", "size": 1, "container": "c"}]}
    assert Plan.from_dict(old).to_dict() == old
    with_etag = Plan(Action.parse("delete run"), "dev", "r", (PlanItem(ItemKind.BLOB, "a", 1, "c", '"0x1"'),))
    assert Plan.from_dict(with_etag.to_dict()) == with_etag and with_etag.hash != Plan.from_dict(old).hash

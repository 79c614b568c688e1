"""Which way an export is planned to run, the containers server-side exports go to, and what the
card and the thread say of them."""

from __future__ import annotations

from bot import cards, plan_words
from commands.intents import Action
from commands.operations.server_export import SHARE_FILES_STAY, export_container, export_containers, with_export_way
from commands.plan import ItemKind, Plan, PlanItem

BLOBS = (PlanItem(ItemKind.BLOB, "ExperimentRun/dcid.r/a.bin", 600, "azureml", "0x1"),
         PlanItem(ItemKind.BLOB, "ExperimentRun/dcid.r/b.bin", 500, "azureml", "0x2"))


def _plan(action: str = "export run", items: tuple[PlanItem, ...] = BLOBS) -> Plan:
    return Plan(Action.parse(action), "dev", "r", items)


def test_an_export_over_the_threshold_is_planned_server_side_and_the_card_says_so() -> None:
    plan = with_export_way(_plan(), 1000)
    assert plan.server_side and plan.notes["export"] == "server-side"
    assert Plan.from_dict(plan.to_dict()).server_side  # the job reads what the approvers saw
    summary = plan_words.summarize(plan)  # what the card renders from
    assert "amlbot reads none of their bytes" in plan_words.export_way(summary)
    assert "inside the storage account" in plan_words.consequence(summary, plan_words.intent_of("export run r"))


def test_at_or_under_the_threshold_or_with_none_set_it_stays_a_zip_and_its_hash_with_it() -> None:
    for threshold in (0, 1100, 5000):
        plan = with_export_way(_plan(), threshold)
        assert not plan.server_side and plan.hash == _plan().hash
        assert plan_words.export_way(plan_words.summarize(plan)).startswith("Exported as one zip archive")


def test_deletions_are_never_marked() -> None:
    assert with_export_way(_plan("delete run"), 1) == _plan("delete run")


def test_share_files_keep_the_zip_and_the_plan_says_why() -> None:
    items = (*BLOBS, PlanItem(ItemKind.FILE, "Users/riley/nb.ipynb", 10, "code-share", "0x3"))
    plan = with_export_way(_plan("export user", items), 1000)
    assert not plan.server_side and plan.warnings == (SHARE_FILES_STAY,)


def test_export_containers_are_valid_names_that_the_cleanup_pattern_alone_matches() -> None:
    name = export_container("amlbot-exports", "R-ABCD2345")
    assert name == "amlbot-exports-r-abcd2345"
    long = export_container("x" * 60 + "-y", "R-ABCD2345")
    assert len(long) == 63 and "--" not in long
    prefix, pattern = export_containers("amlbot-exports")
    assert name.startswith(prefix) and pattern.fullmatch(name)
    for other in ("amlbot-exports", "amlbot-exports-r-not-ours", "amlbot-exports-r-abcd23456", "amlbot-exportsr-abcd2345"):
        assert not pattern.fullmatch(other)


def test_the_thread_gives_the_link_the_azcopy_command_and_what_was_not_exported() -> None:
    extras = {
        "way": "server-side", "link": "https://acct.blob.core.windows.net/c?sp=rl&sig=x",
        "manifest": "https://acct.blob.core.windows.net/c/manifest.json?sp=rl&sig=x", "size": 3 * 1024**3,
        "expires_at": "2030-01-01T00:00:00+00:00", "azcopy": "azcopy copy 'https://acct.blob.core.windows.net/c?sp=rl&sig=x' 'R-1' --recursive",
        "copied": 2, "changed": 1, "missing": 0, "failed": 0,
    }
    text = str(cards.export_ready(extras))
    assert "server-side: 2 files (3.0 GiB) copied inside the storage account" in text
    assert "azcopy copy 'https://acct.blob.core.windows.net/c?sp=rl&amp;sig=x' 'R-1' --recursive" in text
    assert "Not exported: 1 changed since the plan —" in text and "missing" not in text
    assert "Not exported" not in str(cards.export_ready(extras | {"changed": 0}))

"""`/aml help` for one person: grouped, one line of description per command; did-you-mean offers
only what that person may run."""

from __future__ import annotations

from bot import help
from commands import grammar
from commands.intents import Action


def test_help_groups_what_one_may_do_with_a_line_each() -> None:
    text = help.help_text([Action.parse("export run"), Action.parse("delete run")], may_cancel=True, admin=False)
    assert text.index("*Ask for an export") < text.index("*Ask for a deletion") < text.index("*Follow requests*")
    assert f"`{grammar.USAGE['delete run']}` — the run's files, for good; a signed receipt" in text
    assert "/aml freeze" not in text and "Clean up" not in text
    assert "*Admin*" in help.help_text([], may_cancel=False, admin=True)
    assert "/aml cancel" not in help.help_text([], may_cancel=False, admin=False)


def test_every_command_has_a_description() -> None:
    assert set(help.DESCRIPTIONS) == set(grammar.USAGE)


def test_did_you_mean_only_offers_what_one_may_run() -> None:
    mine = help.allowed_commands([Action.parse("export run")], may_cancel=False, admin=False)
    assert help.did_you_mean("delte run", mine) is None  # `delete run` exists, but not for them
    assert help.did_you_mean("exprot run", mine) == "Did you mean `export run`?"
    assert help.did_you_mean("stauts r-abcd2345", mine) == "Did you mean `status`?"
    theirs = help.allowed_commands([Action.parse("delete run")], may_cancel=True, admin=False)
    assert help.did_you_mean("delte run", theirs) == "Did you mean `delete run`?"

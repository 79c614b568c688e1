"""The `/aml` grammar: every command form, every error class, and two properties —
`parse` never raises anything but GrammarError, and `parse(render(c)) == c`."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.grammar import (
    MAX_DURATION,
    USAGE,
    GrammarError,
    format_duration,
    parse,
    render,
    usage,
)
from commands.intents import (
    KINDS_BY_VERB,
    CancelCommand,
    Command,
    FreezeCommand,
    HelpCommand,
    Intent,
    Kind,
    ListCommand,
    RevokeCommand,
    StatusCommand,
    UnfreezeCommand,
    UserRef,
    UserRefType,
    Verb,
)

E, D, C = Verb.EXPORT, Verb.DELETE, Verb.CLEANUP
GUID = "0d8f6a4e-1111-2222-3333-444455556666"


def error(text: str) -> GrammarError:
    with pytest.raises(GrammarError) as caught:
        parse(text)
    return caught.value


# --- valid commands -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", HelpCommand()),
        ("   \u00a0 ", HelpCommand()),
        ("help", HelpCommand()),
        ("HELP Delete", HelpCommand("delete")),
        ("help delete   model", HelpCommand("delete model")),
        ("help status", HelpCommand("status")),
        ("status R-7K2Q9XJ4", StatusCommand("R-7K2Q9XJ4")),
        ("status r-7k2q9xj4", StatusCommand("R-7K2Q9XJ4")),
        ("cancel R-ABCDEFGH", CancelCommand("R-ABCDEFGH")),
        ("revoke r-abcdefgh", RevokeCommand("R-ABCDEFGH")),
        ("list", ListCommand("mine")),
        ("list mine", ListCommand("mine")),
        ("list PENDING", ListCommand("pending")),
        ("freeze", FreezeCommand()),
        ("Unfreeze", UnfreezeCommand()),
    ],
)
def test_simple_commands(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("export run amusing_hat_1x2y", Intent(E, Kind.RUN, target="amusing_hat_1x2y")),
        ("export experiment churn-v2", Intent(E, Kind.EXPERIMENT, target="churn-v2")),
        ("export model bert", Intent(E, Kind.MODEL, target="bert")),
        ("export model bert:3", Intent(E, Kind.MODEL, target="bert", version="3")),
        ("export model bert.base:v1.2-rc", Intent(E, Kind.MODEL, target="bert.base", version="v1.2-rc")),
        ("delete run r1", Intent(D, Kind.RUN, target="r1")),
        ("delete experiment e", Intent(D, Kind.EXPERIMENT, target="e")),
        ("delete model m:7", Intent(D, Kind.MODEL, target="m", version="7")),
        ("delete compute gpu-cluster", Intent(D, Kind.COMPUTE, target="gpu-cluster")),
        ("delete endpoint scoring.ep", Intent(D, Kind.ENDPOINT, target="scoring.ep")),
        ("delete workspace prod", Intent(D, Kind.WORKSPACE, target="prod", workspace="prod")),
        (
            "delete workspace prod --with-dependents --purge",
            Intent(D, Kind.WORKSPACE, target="prod", workspace="prod", with_dependents=True, purge=True),
        ),
        (
            "delete --purge workspace prod --workspace prod",
            Intent(D, Kind.WORKSPACE, target="prod", workspace="prod", purge=True),
        ),
        ("export data churn-2024", Intent(E, Kind.DATA, target="churn-2024")),
        ("export data churn-2024:3", Intent(E, Kind.DATA, target="churn-2024", version="3")),
        ("delete data churn:2", Intent(D, Kind.DATA, target="churn", version="2")),
        ("delete data churn --include-shared", Intent(D, Kind.DATA, target="churn", include_shared=True)),
        ("delete --INCLUDE-SHARED data churn:1", Intent(D, Kind.DATA, target="churn", version="1", include_shared=True)),
        ("delete schedule nightly-retrain", Intent(D, Kind.SCHEDULE, target="nightly-retrain")),
        ("export notebooks jane@contoso.com", Intent(E, Kind.NOTEBOOKS, user=UserRef(UserRefType.EMAIL, "jane@contoso.com"))),
        ("delete notebooks <@U123ABC>", Intent(D, Kind.NOTEBOOKS, user=UserRef(UserRefType.SLACK, "U123ABC"))),
        ("cleanup computes --idle 30m", Intent(C, Kind.COMPUTES, idle=timedelta(minutes=30))),
        ("cleanup computes --idle=12h", Intent(C, Kind.COMPUTES, idle=timedelta(hours=12))),
        ("cleanup exports --older-than 7d", Intent(C, Kind.EXPORTS, older_than=timedelta(days=7))),
        ("cleanup --older-than 2W exports", Intent(C, Kind.EXPORTS, older_than=timedelta(weeks=2))),
    ],
)
def test_intents(text: str, expected: Intent) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "delete run r1 --workspace dev",
        "delete run r1 --workspace=dev",
        "delete --workspace dev run r1",
        "delete run --workspace dev r1",
        "delete run r1 --WORKSPACE DEV",
    ],
)
def test_workspace_option_anywhere_after_the_verb(text: str) -> None:
    assert parse(text) == Intent(D, Kind.RUN, target="r1", workspace="dev")


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("<@U123ABC>", UserRef(UserRefType.SLACK, "U123ABC")),
        ("<@W0ABC12|jane.doe>", UserRef(UserRefType.SLACK, "W0ABC12")),
        ("<@U123ABC|Jane Doe>", UserRef(UserRefType.SLACK, "U123ABC")),  # label with a space
        ("Jane.Doe@Contoso.com", UserRef(UserRefType.EMAIL, "jane.doe@contoso.com")),
        ("<mailto:Jane@Contoso.com|Jane@Contoso.com>", UserRef(UserRefType.EMAIL, "jane@contoso.com")),
        ("Jane_Fabrikam.com#EXT#@contoso.onmicrosoft.com", UserRef(UserRefType.EMAIL, "jane_fabrikam.com#ext#@contoso.onmicrosoft.com")),
        (GUID.upper(), UserRef(UserRefType.OBJECT_ID, GUID)),
    ],
)
@pytest.mark.parametrize("verb", [E, D])
def test_user_refs(verb: Verb, who: str, expected: UserRef) -> None:
    assert parse(f"{verb} user {who}") == Intent(verb, Kind.USER, user=expected)


@pytest.mark.parametrize(
    "text",
    [
        "  DELETE   Model\tbert:3  ",
        "delete\u00a0model\u00a0bert:3",
        "delete model “bert:3”",
        "delete model 'bert:3'",
        "delete model `bert:3`",
        "delete model bert:3\u200b",
    ],
)
def test_slack_noise_is_ignored(text: str) -> None:
    assert parse(text) == Intent(D, Kind.MODEL, target="bert", version="3")


def test_autocorrected_dashes_and_autolinked_names() -> None:
    assert parse("delete workspace prod \u2014purge \u2013with-dependents") == Intent(
        D, Kind.WORKSPACE, target="prod", workspace="prod", with_dependents=True, purge=True
    )
    # Slack turns `model.io` into a link; the label is what the user typed.
    assert parse("export model <http://model.io|model.io>") == Intent(E, Kind.MODEL, target="model.io")


# --- errors -------------------------------------------------------------------------------------


def test_unknown_verb_suggests_a_verb() -> None:
    e = error("delet run r1")
    assert "`delet`" in e.message
    assert e.hint == "Did you mean `delete`?"
    assert e.usage == usage()


def test_unknown_kind_suggests_a_kind_and_lists_the_verbs_kinds() -> None:
    e = error("delete modle m")
    assert e.message.startswith("Unknown kind `modle` for `delete`.")
    for kind in KINDS_BY_VERB[D]:
        assert f"`{kind}`" in e.message
    assert e.hint == "Did you mean `model`?"
    assert e.usage == usage("delete")


def test_kind_of_another_verb() -> None:
    e = error("export compute c1")
    assert "`compute`" in e.message and "`experiment`" in e.message
    assert e.usage == usage("export")
    assert error("cleanup compute --idle 1h").hint == "Did you mean `computes`?"


def test_missing_kind() -> None:
    e = error("cleanup")
    assert "`computes`" in e.message and "`exports`" in e.message
    assert e.usage == usage("cleanup")


@pytest.mark.parametrize(
    ("text", "action", "what"),
    [
        ("export run", "export run", "run id"),
        ("delete model --workspace dev", "delete model", "model name"),
        ("delete workspace", "delete workspace", "workspace alias"),
        ("export user", "export user", "user"),
        ("delete notebooks", "delete notebooks", "user"),
        ("delete schedule", "delete schedule", "schedule name"),
        ("export data --workspace dev", "export data", "data asset name"),
        ("status", "status", "request id"),
        ("cancel", "cancel", "request id"),
    ],
)
def test_missing_target(text: str, action: str, what: str) -> None:
    e = error(text)
    assert f"`{action}` needs" in e.message and what in e.message
    assert e.usage == USAGE[action]


@pytest.mark.parametrize(
    ("text", "extra", "action"),
    [
        ("delete experiment my experiment", "`experiment`", "delete experiment"),
        ("status R-AAAAAAAA R-BBBBBBBB", "`R-BBBBBBBB`", "status"),
        ("list mine pending", "`pending`", "list"),
        ("freeze all", "`all`", "freeze"),
        ("unfreeze now please", "`now please`", "unfreeze"),
    ],
)
def test_too_many_positionals(text: str, extra: str, action: str) -> None:
    e = error(text)
    assert e.message.startswith(f"Unexpected {extra} after `{action}`")
    assert e.usage == USAGE[action]


def test_too_many_positionals_hints() -> None:
    assert error("delete experiment my experiment").hint == "Names can't contain spaces."
    assert error("cleanup computes 2h").hint == "Did you mean `--idle 2h`?"


@pytest.mark.parametrize(
    ("text", "bad", "action"),
    [
        ("delete run a/b", "`a/b`", "delete run"),
        ("export experiment caf\u00e9", "`caf\u00e9`", "export experiment"),
        ("delete compute x;rm", "`x;rm`", "delete compute"),
        ("delete endpoint <ep>", "`<ep>`", "delete endpoint"),
        ("delete endpoint &lt;ep&gt;", "`<ep>`", "delete endpoint"),  # as Slack escapes it
        ("export model :3", "`:3`", "export model"),
        ("export model m:1:2", "`1:2`", "export model"),
        ("export model m:", "`m:`", "export model"),
        ("delete data d:1:2", "`1:2`", "delete data"),
        ("delete notebooks jane", "`jane`", "delete notebooks"),
        ("delete schedule a:1", "`a:1`", "delete schedule"),
        ("delete workspace Prod_1", "`Prod_1`", "delete workspace"),
        ("delete run r1 --workspace -x", None, "delete run"),
        ("delete run r1 --workspace no_underscores", "`no_underscores`", "delete run"),
    ],
)
def test_bad_names(text: str, bad: str | None, action: str) -> None:
    e = error(text)
    if bad is not None:
        assert bad in e.message
    assert e.usage == USAGE[action]


def test_name_hints() -> None:
    assert error("export run r1:2").hint == "Only models and data take a `:<version>`."
    assert "isn't a data version" in error("delete data d:1:2").message
    assert error("delete endpoint <ep>").hint == "Replace the `<…>` placeholder with a real value."
    assert error("export model m:").hint == "Leave out `:<version>` to mean every version of `m`."


def test_over_long_name_is_truncated_in_the_message() -> None:
    e = error("delete run " + "a" * 300)
    assert "300 characters" in e.message and "255" in e.message
    quoted = re.findall(r"`([^`]*)`", e.message)[0]
    assert len(quoted) <= 60 and quoted.endswith("…")


def test_quoted_input_cannot_break_out_of_backticks() -> None:
    e = error("delete run a`b`*c*")
    assert e.message.count("`") % 2 == 0
    assert "`a'b'*c*`" in e.message


@pytest.mark.parametrize(
    ("text", "bad", "hint", "usage_of"),
    [
        ("delete run r1 --workspce dev", "`--workspce`", "Did you mean `--workspace`?", "delete run"),
        ("delete workspace w --purg", "`--purg`", "Did you mean `--purge`?", "delete workspace"),
        ("cleanup computes --idel 1h", "`--idel`", "Did you mean `--idle`?", "cleanup computes"),
        ("cleanup exports --older 1h", "`--older`", "Did you mean `--older-than`?", "cleanup exports"),
        ("delete run r1 -workspace dev", "`-workspace`", "Did you mean `--workspace`?", "delete run"),
        (
            "delete model m --version 3",
            "`--version`",
            "Give a version as `<name>:<version>`.",
            "delete model",
        ),
        ("help --verbose", "`--verbose`", None, "help"),
    ],
)
def test_unknown_option(text: str, bad: str, hint: str | None, usage_of: str) -> None:
    e = error(text)
    assert e.message.startswith(f"Unknown option {bad}")
    assert e.hint == hint
    assert e.usage == USAGE[usage_of]


def test_unknown_option_before_the_kind_gets_the_verbs_usage() -> None:
    e = error("delete --wrkspace dev run r1")
    assert e.hint == "Did you mean `--workspace`?"
    assert e.usage == usage("delete")


@pytest.mark.parametrize(
    ("text", "option", "action"),
    [
        ("delete run r1 --purge", "--purge", "delete run"),
        ("export model m --with-dependents", "--with-dependents", "export model"),
        ("export data d --include-shared", "--include-shared", "export data"),
        ("delete model m --include-shared", "--include-shared", "delete model"),
        ("cleanup exports --idle 1h --older-than 1d", "--idle", "cleanup exports"),
        ("cleanup computes --idle 1h --older-than 1d", "--older-than", "cleanup computes"),
        ("delete user <@U123ABC> --idle 2h", "--idle", "delete user"),
        ("status R-AAAAAAAA --workspace dev", "--workspace", "status"),
        ("freeze --purge", "--purge", "freeze"),
        ("list --workspace dev", "--workspace", "list"),
    ],
)
def test_option_not_valid_for_this_command(text: str, option: str, action: str) -> None:
    e = error(text)
    assert f"`{option}`" in e.message and f"`{action}`" in e.message
    assert e.usage == USAGE[action]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("delete run r1 --workspace", "`--workspace` needs a value"),
        ("delete run r1 --workspace=", "`--workspace` needs a value"),
        ("delete run r1 --workspace --purge", "`--workspace` needs a value"),
        ("cleanup computes --idle", "`--idle` needs a value"),
        ("delete workspace w --purge=yes", "`--purge` doesn't take a value"),
        ("delete run r1 --workspace a --workspace b", "`--workspace` is given more than once"),
        ("delete workspace prod --workspace dev", "already names the workspace"),
    ],
)
def test_option_values(text: str, message: str) -> None:
    assert message in error(text).message


@pytest.mark.parametrize("bad", ["7", "d", "7x", "1.5h", "-1h", "1h30m", "\u0667d"])
def test_bad_duration(bad: str) -> None:
    e = error(f"cleanup computes --idle={bad}")
    assert "needs a value" in e.message or "duration" in e.message
    assert e.usage == USAGE["cleanup computes"]


def test_bad_duration_quotes_it_and_gives_examples() -> None:
    e = error("cleanup exports --older-than 7x")
    assert "`7x`" in e.message and "`7d`" in e.message
    assert e.usage == USAGE["cleanup exports"]


@pytest.mark.parametrize("zero", ["0m", "0h", "000d"])
def test_zero_duration(zero: str) -> None:
    assert "more than zero" in error(f"cleanup computes --idle {zero}").message


def test_huge_duration_is_an_error_not_an_overflow() -> None:
    e = error("cleanup exports --older-than 99999999999999999999w")
    assert "too long" in e.message and "`3650d`" in e.message


@pytest.mark.parametrize(
    ("text", "option"), [("cleanup computes", "--idle"), ("cleanup exports", "--older-than")]
)
def test_missing_required_duration(text: str, option: str) -> None:
    e = error(text + " --workspace dev")
    assert f"`{option} <duration>`" in e.message
    assert e.usage == USAGE[text]


@pytest.mark.parametrize("bad", ["R-123", "R-ABCDEFGHI", "X-ABCDEFGH", "R_ABCDEFGH", "R-ABCDEFG\u0130"])
@pytest.mark.parametrize("verb", ["cancel", "revoke"])
def test_bad_request_id(verb: str, bad: str) -> None:
    e = error(f"{verb} {bad}")
    assert "request id" in e.message
    assert e.usage == USAGE[verb]


@pytest.mark.parametrize(("text", "hint"), [("revok R-ABCDEFGH", "Did you mean `revoke`?"), ("rewoke", "Did you mean `revoke`?")])
def test_revoke_is_suggested_for_a_near_miss(text: str, hint: str) -> None:
    e = error(text)
    assert e.hint == hint


def test_revoke_needs_exactly_one_request_id() -> None:
    assert "needs a request id" in error("revoke").message
    e = error("revoke R-ABCDEFGH R-BCDEFGHJ")
    assert "Unexpected" in e.message and e.usage == USAGE["revoke"]
    assert "doesn't take `--workspace`" in error("revoke R-ABCDEFGH --workspace dev").message


@pytest.mark.parametrize(
    "bad",
    [
        "bob",
        "<@bob>",
        "<@u123abc>",
        "<#C123ABC|general>",
        "<!channel>",
        "bob@",
        "@",
        "@-bob",
        "1234-5678",
        GUID + "0",
    ],
)
def test_bad_user_reference(bad: str) -> None:
    e = error(f"delete user {bad}")
    assert "isn't a user" in e.message
    assert e.usage == USAGE["delete user"]


def test_plain_at_name_is_a_name_to_look_up() -> None:
    # What Slack sends for `@bob` when the command does not escape mentions.
    assert parse("export user @bob.smith") == Intent(E, Kind.USER, user=UserRef(UserRefType.SLACK_NAME, "bob.smith"))
    assert render(Intent(D, Kind.NOTEBOOKS, user=UserRef(UserRefType.SLACK_NAME, "bob"))) == "delete notebooks @bob"


def test_list_scope_and_help_topic() -> None:
    e = error("list pendng")
    assert "`pendng`" in e.message and e.hint == "Did you mean `pending`?" and e.usage == USAGE["list"]
    e = error("help delte")
    assert "`delte`" in e.message and e.hint == "Did you mean `delete`?" and e.usage == USAGE["help"]


@pytest.mark.parametrize("length", [4001, 100_000])
def test_over_long_input(length: int) -> None:
    e = error("delete run " + "a" * length)
    assert "4000" in e.message and str(length + 11) in e.message


def test_input_at_the_limit_is_parsed() -> None:
    assert parse("help" + " " * 3996) == HelpCommand()


# --- usage and render ---------------------------------------------------------------------------


def test_usage() -> None:
    assert USAGE["delete model"] == "/aml delete model <name>[:<version>] [--workspace <alias>]"
    assert USAGE["delete workspace"] == "/aml delete workspace <alias> [--with-dependents] [--purge]"
    assert USAGE["cleanup computes"] == "/aml cleanup computes --idle <duration> [--workspace <alias>]"
    assert USAGE["delete data"] == "/aml delete data <name>[:<version>] [--include-shared] [--workspace <alias>]"
    assert USAGE["export notebooks"] == "/aml export notebooks <@user|email|object-id> [--workspace <alias>]"
    assert USAGE["delete schedule"] == "/aml delete schedule <name> [--workspace <alias>]"
    assert usage("delete").splitlines() == [USAGE[f"delete {k}"] for k in KINDS_BY_VERB[D]]
    assert usage(" Delete  Model ") == USAGE["delete model"]
    assert usage().splitlines() == list(USAGE.values())
    with pytest.raises(ValueError):
        usage("frobnicate")


def test_every_action_has_usage() -> None:
    actions = {f"{v} {k}" for v, kinds in KINDS_BY_VERB.items() for k in kinds}
    assert actions | {"help", "status", "cancel", "revoke", "list", "freeze", "unfreeze"} == set(USAGE)


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(30, "30m"), (90, "90m"), (120, "2h"), (2160, "36h"), (1440, "1d"), (10080, "1w"), (20160, "2w")],
)
def test_format_duration(minutes: int, text: str) -> None:
    assert format_duration(timedelta(minutes=minutes)) == text


@pytest.mark.parametrize(
    "cmd",
    [
        Intent(D, Kind.RUN, target="bad name"),
        Intent(D, Kind.RUN),
        Intent(D, Kind.WORKSPACE, target="prod", workspace="dev"),
        Intent(C, Kind.COMPUTES, idle=timedelta(seconds=30)),
        Intent(C, Kind.COMPUTES),
        StatusCommand("nope"),
        HelpCommand("nonsense"),
    ],
)
def test_render_rejects_commands_parse_could_not_produce(cmd: Command) -> None:
    with pytest.raises(ValueError):
        render(cmd)


def test_render_examples() -> None:
    model = Intent(E, Kind.MODEL, target="m", version="2", workspace="dev")
    assert render(model) == "export model m:2 --workspace dev"
    user = Intent(E, Kind.USER, user=UserRef(UserRefType.SLACK, "U1AB"))
    assert render(user) == "export user <@U1AB>"
    exports = Intent(C, Kind.EXPORTS, older_than=timedelta(days=14))
    assert render(exports) == "cleanup exports --older-than 2w"
    assert render(ListCommand()) == "list mine"


# --- properties ---------------------------------------------------------------------------------

VOCAB = [
    *(key for action in USAGE for key in action.split()),
    "mine", "pending", "--workspace", "--workspace=", "--workspace=dev", "--with-dependents", "--purge", "--include-shared",
    "--idle", "--idle=", "--older-than", "--version", "-", "--", "-w", "\u2014purge", "=", ":", "m:", ":3",
    "30m", "0m", "7d", "2w", "9" * 30 + "w", "R-ABCDEFGH", "r-1", "<@U123ABC>", "<@U123ABC|a b>", "<@",
    "<mailto:a@b.com|a@b.com>", "<mailto:", "<http://x.io|x.io>", "<!here>", "<>", ">", "<", "&lt;", "&amp;",
    "a@b.com", GUID, "\u201cquoted\u201d", "'", '"', "`", "\u00a0", "\u200b", "\n", "\t", "\u0130", "\u212a",
    "\u00df", "x" * 300,
]
junk_text = st.lists(st.one_of(st.sampled_from(VOCAB), st.text(max_size=6)), max_size=10).map(" ".join)


def check_parse_total(text: str) -> None:
    try:
        result = parse(text)
    except GrammarError as e:
        assert e.message and "\n" not in e.message and len(e.message) < 400
        assert e.message.count("`") % 2 == 0  # quoted input never unbalances the backticks
        assert e.usage.startswith("/aml ")
        assert e.hint is None or e.hint.count("`") % 2 == 0
    else:
        assert isinstance(result, Command)


@settings(max_examples=1000, deadline=None)
@given(st.text())
def test_parse_never_crashes_on_any_text(text: str) -> None:
    check_parse_total(text)


@settings(max_examples=1000, deadline=None)
@given(junk_text)
def test_parse_never_crashes_on_grammar_soup(text: str) -> None:
    check_parse_total(text)


names = st.from_regex(r"[A-Za-z0-9_.][A-Za-z0-9_.\-]{0,254}", fullmatch=True)
versions = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True)
aliases = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)
request_ids = st.from_regex(r"R-[A-Z0-9]{8}", fullmatch=True)
emails = st.from_regex(
    r"[a-z0-9._%+'][a-z0-9._%+'\-]{0,20}@([a-z0-9\-]{1,10}\.){1,3}[a-z]{2,6}", fullmatch=True
)
user_refs = st.one_of(
    st.from_regex(r"[UW][A-Z0-9]{2,31}", fullmatch=True).map(lambda v: UserRef(UserRefType.SLACK, v)),
    emails.map(lambda v: UserRef(UserRefType.EMAIL, v)),
    st.uuids().map(lambda u: UserRef(UserRefType.OBJECT_ID, str(u))),
)
MAX_MINUTES = MAX_DURATION // timedelta(minutes=1)
durations = st.sampled_from([1, 60, 24 * 60, 7 * 24 * 60]).flatmap(
    lambda unit: st.integers(1, MAX_MINUTES // unit).map(lambda n: timedelta(minutes=n * unit))
)


@st.composite
def intents(draw: st.DrawFn) -> Intent:
    verb = draw(st.sampled_from(list(Verb)))
    kind = draw(st.sampled_from(KINDS_BY_VERB[verb]))
    workspace = draw(st.none() | aliases)
    if kind in (Kind.USER, Kind.NOTEBOOKS):
        return Intent(verb, kind, user=draw(user_refs), workspace=workspace)
    if kind in (Kind.MODEL, Kind.DATA):
        version = draw(st.none() | versions)
        shared = kind is Kind.DATA and verb is Verb.DELETE and draw(st.booleans())
        return Intent(verb, kind, target=draw(names), version=version, workspace=workspace, include_shared=shared)
    if kind is Kind.WORKSPACE:
        alias = draw(aliases)
        deps, purge = draw(st.booleans()), draw(st.booleans())
        return Intent(verb, kind, target=alias, workspace=alias, with_dependents=deps, purge=purge)
    if kind is Kind.COMPUTES:
        return Intent(verb, kind, idle=draw(durations), workspace=workspace)
    if kind is Kind.EXPORTS:
        return Intent(verb, kind, older_than=draw(durations), workspace=workspace)
    return Intent(verb, kind, target=draw(names), workspace=workspace)


commands = st.one_of(
    intents(),
    st.builds(HelpCommand, st.none() | st.sampled_from(["export", "delete", "cleanup", *USAGE])),
    st.builds(StatusCommand, request_ids),
    st.builds(CancelCommand, request_ids),
    st.builds(RevokeCommand, request_ids),
    st.builds(ListCommand, st.sampled_from(["mine", "pending"])),
    st.just(FreezeCommand()),
    st.just(UnfreezeCommand()),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands)
def test_render_round_trips(cmd: Command) -> None:
    assert parse(render(cmd)) == cmd


def option_groups(words: list[str]) -> tuple[list[str], list[list[str]]]:
    """Split rendered words into positionals and option groups (`--workspace dev`)."""
    positionals: list[str] = []
    groups: list[list[str]] = []
    words = iter(words)
    for word in words:
        if word in ("--workspace", "--idle", "--older-than"):
            groups.append([word, next(words)])
        elif word.startswith("--"):
            groups.append([word])
        else:
            positionals.append(word)
    return positionals, groups


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(intents(), st.data())
def test_options_anywhere_any_case_any_spacing(intent: Intent, data: st.DataObject) -> None:
    verb, *rest = render(intent).split(" ")
    positionals, groups = option_groups(rest)
    # Verbs and kinds fold case; positionals keep their order; options go anywhere after the verb.
    slots = [[verb.upper()], [positionals[0].title()], *([p] for p in positionals[1:])]
    for group in groups:
        if len(group) == 2 and data.draw(st.booleans()):
            group = ["=".join(group)]
        slots.insert(data.draw(st.integers(1, len(slots))), group)
    spaces = st.sampled_from([" ", "  ", "\u00a0", "\t", " \u00a0 "])
    text = "".join(word + data.draw(spaces) for slot in slots for word in slot)
    assert parse(text) == intent

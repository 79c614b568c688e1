"""A config file that can't be wrong: each mistake refused at start, at its file, line and column, in
plain words, one a line, with the key meant when one is misspelt."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import ConfigError, load_config

WORKSPACES = """\
workspaces:
  dev: {subscription_id: s, resource_group: r, workspace_name: w, storage_connection_string: "UseDevelopmentStorage=true"}
  prod: {subscription_id: s, resource_group: r, workspace_name: w2, storage_connection_string: "UseDevelopmentStorage=true"}
"""


def refused(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "config.yml"
    path.write_text(body)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    lines = str(error.value).splitlines()
    assert all(line.startswith(f"{path}:") for line in lines), lines
    return [line.removeprefix(f"{path}:") for line in lines]


@pytest.mark.parametrize(
    "policy, expected",
    [
        # an unknown action, with the one meant
        ("  requesters:\n    delte run: {users: [U0AAA1111]}\n",
         "6:5: policy.requesters.delte run: `delte run` is not an action. Did you mean `delete run`?"),
        ("  approvals_required: {delete runs: 2}\n",
         "5:24: policy.approvals_required.delete runs: `delete runs` is not an action. Did you mean `delete run`?"),
        ("  cooling_off_actions: [erase user]\n", "5:25: policy.cooling_off_actions.0: `erase user` is not an action."),
        # a workspace the file does not define
        ("  approvers: {users: [U0AAA1111], workspaces: [prd]}\n",
         "5:48: policy.approvers.workspaces.0: `prd` is not a workspace of this file. Did you mean `prod`? Workspaces: dev, prod."),
        # Slack ids of the wrong shape, or in the wrong list
        ("  admins: [alice]\n", "5:12: policy.admins.0: `alice` is not a person's Slack member id, like `U024BE7LH`"),
        ("  approvers: {groups: [U0AAA1111]}\n",
         "5:24: policy.approvers.groups.0: `U0AAA1111` is a Slack user id, but this list holds group ids: move it under `users`"),
        ("  requesters:\n    '*': {users: [S0GROUP01]}\n",
         "6:19: policy.requesters.*.users.0: `S0GROUP01` is a Slack group id, but this list holds user ids: move it under `groups`"),
        ("  approvers_channel: ml-approvals\n", "5:22: policy.approvers_channel: `ml-approvals` is not a Slack channel id"),
        # durations that contradict each other
        ("  expiry: 2h\n  reminder_before: 3h\n",
         "6:20: policy.reminder_before: 3h must be shorter than `expiry` (2h): the reminder would come after the request had expired"),
        # plain words for what pydantic finds: a misspelt key, a wrong type
        ("  aprovers: {users: [U0AAA1111]}\n", "5:3: policy.aprovers: unknown key `aprovers`. Did you mean `approvers`?"),
        ("  oncall_self_approval_cap: lots\n", "5:29: policy.oncall_self_approval_cap: expected a whole number"),
        ("  expiry: soon\n", "5:11: policy.expiry: `soon` is not a duration"),
    ],
)
def test_each_mistake_is_refused_where_it_is(tmp_path: Path, policy: str, expected: str) -> None:
    [line] = refused(tmp_path, WORKSPACES + "policy:\n" + policy)
    assert line.startswith(expected), line
    assert "Value error" not in line and "Input should be" not in line  # no validator jargon


def test_every_mistake_gets_its_own_line(tmp_path: Path) -> None:
    lines = refused(tmp_path, WORKSPACES + "policy:\n  admins: [alice, bob]\n  approvers: {users: [U0AAA1111], workspaces: [stage]}\n")
    assert [line.split(": ")[1] for line in lines] == ["policy.admins.0", "policy.admins.1", "policy.approvers.workspaces.0"]


def test_link_expiry_above_what_the_link_type_allows(tmp_path: Path) -> None:
    entra = "workspaces:\n  dev: {subscription_id: s, resource_group: r, workspace_name: w}\nexport_link_expiry: 30d\n"
    [line] = refused(tmp_path, entra)
    assert line.startswith("3:21: export_link_expiry: 30d is longer than 7 days"), line


def test_a_misspelt_workspace_key_and_a_missing_one(tmp_path: Path) -> None:
    lines = refused(tmp_path, "workspaces:\n  dev:\n    subscription_id: s\n    resource_grup: r\n    workspace_name: w\n")
    assert lines[0] == "2:3: workspaces.dev: `resource_group` is required here"
    assert any("unknown key `resource_grup`. Did you mean `resource_group`?" in line and line.startswith("4:5:") for line in lines), lines


def test_yaml_errors_say_where(tmp_path: Path) -> None:
    [line] = refused(tmp_path, "workspaces:\n  dev: [\n")
    assert line.startswith("3:1: not valid YAML"), line

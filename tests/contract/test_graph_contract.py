"""The Microsoft Graph stand-in answers as Graph does, for each request amlbot's `Directory` sends.

Shapes live in `shapes/graph/` (Microsoft Learn's v1.0 reference: user-get, user-list, errors); the
Graph stand-in's every answer in the e2e tests is checked against them too (`tests/e2e/conftest.py`)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from commands.azure.graph import Directory
from sandbox.standins.azure.client import TEST_CLIENT_KWARGS, FakeCredential
from sandbox.standins.azure.tls import certificates
from sandbox.standins.graph import GraphStandIn
from tests.contract.checker import GRAPH_SHAPES, Answer, check_answer, load_shapes, match, violations


@pytest.fixture
async def graph(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GraphStandIn]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates().bundle_path))
    async with GraphStandIn() as standin:
        standin.add_user("Dana Kowalski", "d.kowalski@contoso.onmicrosoft.com", mail="dana.kowalski@contoso.com")
        standin.add_guest("Jane Guest", "jane@fabrikam.com")
        yield standin


def test_every_graph_shape_is_sourced() -> None:
    shapes, common = load_shapes(GRAPH_SHAPES)
    assert {s.file for s in shapes} == {"users.get.json", "users.list.json"}
    assert all(s.sources and all(re.match(r"Microsoft Learn https://learn\.microsoft\.com/graph/", x) for x in s.sources) for s in shapes)
    assert {"arm_error", "graph_user", "graph_user_entity"} <= common.keys()


def test_every_request_of_the_directory_is_answered_in_graphs_shape(graph: GraphStandIn) -> None:
    directory = Directory(graph.url, FakeCredential(), TEST_CLIENT_KWARGS)

    directory.find(address="dana.kowalski@contoso.com")  # by UPN (404), then by mail
    directory.user("jane_fabrikam.com#EXT#@contoso.onmicrosoft.com")
    directory.named("Dana Kowalski")
    directory.probe()
    graph.deny = True
    with pytest.raises(Exception, match="Authorization_RequestDenied"):
        directory.probe()

    assert violations(graph.exchanges, GRAPH_SHAPES) == []
    shapes, _ = load_shapes(GRAPH_SHAPES)
    answered = {getattr(match(shapes, e.method, e.path), "file", None) for e in graph.exchanges if e.status < 300}
    assert answered == {"users.get.json", "users.list.json"}
    assert {e.status for e in graph.exchanges} == {200, 403, 404}


def test_the_checker_catches_a_graph_answer_unlike_graphs() -> None:
    shapes, common = load_shapes(GRAPH_SHAPES)
    headers = {"request-id": "r", "client-request-id": "c"}

    def problems(path: str, status: int, body: object, sent: dict[str, str] = headers) -> list[str]:
        return check_answer(Answer("GET", path, {}, status, sent, body, True), shapes, common)

    user = {"@odata.context": "x", "id": "1", "userPrincipalName": "a@b.c", "mail": None, "otherMails": []}
    assert problems("/v1.0/users/a@b.c", 200, user) == []
    assert "fields the real service never sends: ['upn']" in problems("/v1.0/users/a@b.c", 200, {**user, "upn": "a"})[0]
    assert "otherMails: expected an array" in problems("/v1.0/users/a@b.c", 200, {**user, "otherMails": "x"})[0]
    assert "body.value: missing" in problems("/v1.0/users", 200, {"@odata.context": "x"})[0]
    assert "header request-id is missing" in problems("/v1.0/users/a@b.c", 200, user, {})[0]
    denied = {"error": {"code": "Authorization_RequestDenied", "message": "m",
                        "innerError": {"date": "d", "request-id": "r", "client-request-id": "c"}}}
    assert problems("/v1.0/users", 403, denied) == []
    assert "body.error: missing" in problems("/v1.0/users", 403, {"message": "m"})[0]

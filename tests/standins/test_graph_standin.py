"""amlbot's Microsoft Graph client (`commands.azure.graph.Directory`, azure-core's pipeline with a
bearer token) against the Graph stand-in: the reads amlbot makes, and the answers Graph gives."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from commands.azure.graph import Directory, DirectoryError
from sandbox.standins.azure.client import TEST_CLIENT_KWARGS, FakeCredential
from sandbox.standins.azure.tls import certificates
from sandbox.standins.graph import GraphStandIn
from tests.contract.checker import GRAPH_SHAPES, violations

OID = "da1a0000-0000-4000-8000-00000000000d"


@pytest.fixture
async def graph(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[GraphStandIn]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates().bundle_path))
    async with GraphStandIn() as standin:
        standin.add_user("Dana Kowalski", "d.kowalski@contoso.onmicrosoft.com", object_id=OID,
                         mail="dana.kowalski@contoso.com", other_mails=("o'brien@old.contoso.com",))
        standin.add_guest("Jane Guest", "jane@fabrikam.com")
        yield standin
        assert violations(standin.exchanges, GRAPH_SHAPES) == []


def _directory(graph: GraphStandIn) -> Directory:
    return Directory(graph.url, FakeCredential(), TEST_CLIENT_KWARGS)


def test_a_user_by_object_id_or_upn_with_the_token_for_graph(graph: GraphStandIn) -> None:
    credential = FakeCredential()
    directory = Directory(graph.url, credential, TEST_CLIENT_KWARGS)

    by_id = directory.user(OID)
    by_upn = directory.user("D.Kowalski@contoso.onmicrosoft.com")

    assert by_id == by_upn and by_id is not None
    assert (by_id.object_id, by_id.mail, by_id.display_name) == (OID, "dana.kowalski@contoso.com", "Dana Kowalski")
    assert by_id.addresses == {"dana.kowalski@contoso.com", "o'brien@old.contoso.com"}
    assert credential.scopes == [(f"{graph.url}/.default",)]  # the scope is the Graph endpoint's
    assert directory.user("nobody@contoso.com") is None


def test_a_guests_upn_is_sent_with_its_hash_encoded(graph: GraphStandIn) -> None:
    guest = _directory(graph).user("jane_fabrikam.com#EXT#@contoso.onmicrosoft.com")

    assert guest is not None and guest.mail == "jane@fabrikam.com"
    assert graph.calls[-1].path == "/v1.0/users/jane_fabrikam.com#EXT#@contoso.onmicrosoft.com"


def test_by_address_finds_mail_and_other_mails_with_quotes_escaped(graph: GraphStandIn) -> None:
    directory = _directory(graph)

    assert [u.object_id for u in directory.find(address="dana.kowalski@contoso.com")] == [OID]
    assert [u.object_id for u in directory.find(address="o'brien@old.contoso.com")] == [OID]
    assert graph.calls[-1].query["$filter"] == "mail eq 'o''brien@old.contoso.com' or otherMails/any(m:m eq 'o''brien@old.contoso.com')"
    assert directory.find(address="stranger@contoso.com") == []


def test_without_the_permission_graph_says_why(graph: GraphStandIn) -> None:
    graph.deny = True

    with pytest.raises(DirectoryError) as raised:
        _directory(graph).find(object_id=OID)

    assert raised.value.denied
    assert "User.Read.All (Authorization_RequestDenied: Insufficient privileges to complete the operation.)" in str(raised.value)


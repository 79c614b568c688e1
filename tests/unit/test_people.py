"""How a record's creator is matched to a person, in every form Azure ML writes it."""

from __future__ import annotations

from commands.azure.graph import DirectoryUser
from commands.operations.people import Basis, Identity

OID = "da1a0000-0000-4000-8000-00000000000d"
DANA = Identity.of(DirectoryUser(OID, "d.kowalski@contoso.onmicrosoft.com", "dana.kowalski@contoso.com", "Dana Kowalski",
                                 other_mails=("dana@old.contoso.com",), proxy_addresses=("SMTP:dana.kowalski@contoso.com", "smtp:dk@contoso.com")))
GUEST = Identity.of(DirectoryUser("9e570000-0000-4000-8000-000000000001", "jane_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                                  "jane@fabrikam.com", "Jane Guest", other_mails=("jane@fabrikam.com",)))


def _history(object_id: str | None, name: str = "Dana Kowalski", upn: str | None = None) -> dict[str, str | None]:
    return {"userObjectId": object_id, "userPuId": "10032001A2B3C4D5", "userName": name, "upn": upn}


def test_run_history_matches_by_object_id_whatever_the_name_and_upn() -> None:
    assert DANA.by_history(_history(OID.upper(), name="Someone Else")) is Basis.OBJECT_ID
    # Another object id is someone else, even with her name.
    assert DANA.by_history(_history("da1a0000-0000-4000-8000-0000000000ff")) is None


def test_run_history_without_object_ids_on_both_sides_falls_back_to_upn_then_name() -> None:
    given = Identity(upns=frozenset({"dana@contoso.com"}), display_names=frozenset({"dana kowalski"}))
    assert given.by_history(_history(OID, upn="Dana@Contoso.com")) is Basis.UPN
    assert given.by_history(_history(OID)) is Basis.DISPLAY_NAME


def test_the_shown_creator_in_each_form() -> None:
    assert DANA.by_shown("D.Kowalski@contoso.onmicrosoft.com") is Basis.UPN
    assert DANA.by_shown("dana.kowalski@contoso.com") is Basis.MAIL  # mail is not the UPN in this tenant
    assert DANA.by_shown("dk@contoso.com") is Basis.MAIL  # a proxy address
    assert DANA.by_shown("dana@old.contoso.com") is Basis.MAIL  # another mail
    assert DANA.by_shown("Dana Kowalski") is Basis.DISPLAY_NAME
    assert DANA.by_shown(OID) is Basis.OBJECT_ID
    # An application's or managed identity's GUID, another person, nothing at all.
    for other in ("a44c0000-0000-4000-8000-000000000001", "Dana K.", "someone@contoso.com", ""):
        assert DANA.by_shown(other) is None


def test_a_guests_upn_and_studio_folder() -> None:
    assert GUEST.guest and GUEST.by_shown("jane_fabrikam.com#EXT#@contoso.onmicrosoft.com") is Basis.UPN
    # Their token has no `upn` claim: Studio's folder is named from the `email` claim (or the object id).
    assert GUEST.aliases == {"jane", "9e570000-0000-4000-8000-000000000001"}
    assert DANA.aliases == {"d.kowalski", OID}


def test_what_run_history_teaches_and_what_stays_impossible() -> None:
    given = Identity(upns=frozenset({"dana@contoso.com"}), mails=frozenset({"dana@contoso.com"}), unresolved="Graph said no")
    assert [line.split(":")[0] for line in given.impossible()] == [
        "by object id (run history often records no UPN)", "by display name (how the control plane shows people on most records)"]
    learned = given.learned(_history(OID, upn="dana@contoso.com"))
    assert learned.impossible() == [] and learned.by_shown("Dana Kowalski") is Basis.DISPLAY_NAME
    assert DANA.impossible() == []  # resolved through Graph

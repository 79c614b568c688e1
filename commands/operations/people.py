"""Who a person is to Azure ML, and how sure each match of a record to them is.

A person is named by Slack mention (their Slack email), email/UPN or Entra object id, and looked up
in Microsoft Graph for the rest: object id, UPN, mail (and other mails) and display name. Records
name their creator in one of these forms: run history by object id (and a UPN, often empty), the
control plane's `systemData.createdBy` by display name, UPN, or an application's GUID. A match by
object id, UPN or mail is certain; one by display name only is ambiguous (two people can share a
name) and is listed apart.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from commands.azure.graph import DirectoryError, DirectoryUser
from commands.intents import Intent, UserRefType
from commands.operations.base import Context, OperationError

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Basis(StrEnum):
    OBJECT_ID = "object id"
    UPN = "UPN"
    MAIL = "mail"
    DISPLAY_NAME = "display name only (ambiguous)"


CERTAIN = frozenset({Basis.OBJECT_ID, Basis.UPN, Basis.MAIL})


def _lower(*values: str | None) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values if v and v.strip())


@dataclass(frozen=True)
class Identity:
    object_ids: frozenset[str] = frozenset()
    upns: frozenset[str] = frozenset()
    mails: frozenset[str] = frozenset()
    display_names: frozenset[str] = frozenset()  # lowercased
    shown_name: str = ""  # the display name as the directory writes it
    unresolved: str | None = None  # why Microsoft Graph told nothing more, or None when it did

    @classmethod
    def of(cls, user: DirectoryUser, given: str | None = None) -> Identity:
        return cls(
            object_ids=_lower(user.object_id),
            upns=_lower(user.upn),
            mails=user.addresses | _lower(given if given and given.lower() != user.upn.lower() else None),
            display_names=_lower(user.display_name),
            shown_name=user.display_name or "",
        )

    @property
    def guest(self) -> bool:
        return any("#ext#" in upn for upn in self.upns)

    def by_history(self, creator: dict[str, Any]) -> Basis | None:
        """How a run-history `createdBy` (`userObjectId`, `userName`, `upn`, …) is this person."""
        object_id = _lower(creator.get("userObjectId"))
        if object_id & self.object_ids:
            return Basis.OBJECT_ID
        if _lower(creator.get("upn")) & self.upns:
            return Basis.UPN
        if _lower(creator.get("upn")) & self.mails:
            return Basis.MAIL
        if object_id and self.object_ids:
            return None  # both object ids known, and different: someone else, whatever the name
        return Basis.DISPLAY_NAME if _lower(creator.get("userName")) & self.display_names else None

    def by_shown(self, shown: str) -> Basis | None:
        """How a control-plane creator (`systemData.createdBy`: a display name, a UPN or an
        application's GUID) is this person."""
        value = shown.strip().lower()
        if not value:
            return None
        if _GUID.fullmatch(value):
            return Basis.OBJECT_ID if value in self.object_ids else None
        if "@" in value:
            return Basis.UPN if value in self.upns else Basis.MAIL if value in self.mails else None
        return Basis.DISPLAY_NAME if value in self.display_names else None

    def learned(self, creator: dict[str, Any]) -> Identity:
        """What a run-history record certainly theirs adds: its object id, UPN and name."""
        return replace(
            self,
            object_ids=self.object_ids | _lower(creator.get("userObjectId")),
            upns=self.upns | _lower(creator.get("upn")),
            display_names=self.display_names | _lower(creator.get("userName")),
        )

    @property
    def aliases(self) -> frozenset[str]:
        """The names of their Studio folders (`Users/<alias>/`): azure-ai-ml's and prompt flow's
        `get_user_alias_from_credential` take the token's `upn` claim (a guest's token has none: its
        `email`) up to `@`, or the object id of an identity without either."""
        upns = frozenset(upn for upn in self.upns if "#ext#" not in upn)
        named = upns or (self.mails if self.guest else frozenset())
        return frozenset(address.split("@", 1)[0] for address in named) | self.object_ids

    def impossible(self) -> list[str]:
        """The kinds of match this identity could not make: what it lacks, and why."""
        if self.unresolved is None:
            return []
        lacking = [
            what
            for what, known in (
                ("by object id (run history often records no UPN)", self.object_ids),
                ("by UPN", self.upns),
                ("by display name (how the control plane shows people on most records)", self.display_names),
            )
            if not known
        ]
        return [f"{what}: {self.unresolved}" for what in lacking]

    def describe(self) -> dict[str, Any]:
        return {
            "object_id": ", ".join(sorted(self.object_ids)),
            "upn": ", ".join(sorted(self.upns)),
            "mail": ", ".join(sorted(self.mails)),
            "display_name": self.shown_name or ", ".join(sorted(self.display_names)),
            "resolved_through_graph": self.unresolved is None,
        }


@dataclass
class Matches:
    """Which records matched, on which basis (for the plan's notes and warnings). With `namesakes`
    (how many people in the directory share their display name; a deletion asks) above one, the
    records matched by that name only are left out: they are as likely someone else's."""

    namesakes: int | None = None  # None: not asked, or not known (no Graph, or no display name)
    by_basis: dict[Basis, list[str]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)

    def take(self, basis: Basis, record: str) -> bool:
        """Note a match; whether the plan takes the record."""
        if basis is Basis.DISPLAY_NAME and (self.namesakes or 0) > 1:
            self.left_out.append(record)
            return False
        self.by_basis.setdefault(basis, []).append(record)
        return True

    @property
    def ambiguous(self) -> list[str]:
        return self.by_basis.get(Basis.DISPLAY_NAME, [])

    def notes(self) -> dict[str, list[str]]:
        notes = {basis.value: sorted(records) for basis, records in self.by_basis.items()}
        return notes | ({"display name only, shared in the directory: left out": sorted(self.left_out)} if self.left_out else {})


async def namesakes(ctx: Context, person: Identity) -> int | None:
    """How many people in the directory bear their display name, when Graph can tell."""
    if ctx.directory is None or person.unresolved is not None or not person.shown_name:
        return None
    try:
        return len(await asyncio.to_thread(ctx.directory.named, person.shown_name))
    except DirectoryError:
        return None


async def identify(intent: Intent, ctx: Context) -> Identity:
    """The person an intent names, resolved through Microsoft Graph when it can be."""
    ref = intent.user
    assert ref is not None
    object_id = ref.value.lower() if ref.type is UserRefType.OBJECT_ID else None
    # A mention is looked up to the email Slack has for it, if Slack shares it.
    address = ref.value if ref.type is UserRefType.EMAIL else ctx.user_email
    if not (object_id or address):
        raise OperationError(
            f"I can't tell who {ref} is in Azure. Name them by email or Entra object id, "
            f"e.g. `/aml {intent.action} jane.doe@contoso.com`."
        )
    given = Identity(object_ids=_lower(object_id), upns=_lower(address), mails=_lower(address))
    if ctx.directory is None:
        return replace(given, unresolved="amlbot is set up without Microsoft Graph (`graph_endpoint`)")
    try:
        found = await asyncio.to_thread(ctx.directory.find, object_id=object_id, address=address)
    except DirectoryError as error:
        return replace(given, unresolved=str(error))
    if not found:
        return replace(given, unresolved=f"Microsoft Graph knows no user {object_id or address} (left the directory?)")
    if len(found) > 1:
        named = ", ".join(f"{u.display_name} ({u.object_id})" for u in found)
        raise OperationError(f"{address} is an address of {len(found)} people in the directory: {named}. Name one by object id.")
    return Identity.of(found[0], address)


def shown_creator(entity: Any) -> str:
    """The creator the control plane shows: a display name, a UPN or an application's GUID."""
    creator = getattr(entity.creation_context, "created_by", None) if entity.creation_context else None
    return creator if isinstance(creator, str) else ""

"""Who a person is to Azure ML: their UPNs and object ids, and how records and folders name them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from commands.intents import Intent, UserRefType
from commands.operations.base import Context, OperationError


@dataclass(frozen=True)
class Person:
    upns: frozenset[str]
    object_ids: frozenset[str]

    def created(self, creator: dict[str, Any]) -> bool:
        """Whether a run-history `createdBy` is this person."""
        return (creator.get("userObjectId") or "").lower() in self.object_ids or (creator.get("upn") or "").lower() in self.upns

    def made(self, entity: Any) -> bool:
        """Whether the control plane shows them as an entity's creator (by UPN: all it shows)."""
        return shown_creator(entity).lower() in self.upns

    @property
    def aliases(self) -> frozenset[str]:
        """The names of their Studio folders (`Users/<alias>/`): a UPN's part before `@`, or the object
        id of an identity without one (azure-ai-ml's and prompt flow's `get_user_alias_from_credential`)."""
        return frozenset({upn.split("@", 1)[0] for upn in self.upns} | self.object_ids)


def person_of(intent: Intent, ctx: Context) -> Person:
    ref = intent.user
    assert ref is not None
    if ref.type is UserRefType.OBJECT_ID:
        return Person(frozenset(), frozenset({ref.value.lower()}))
    # Azure knows people by UPN, not by Slack id: the bot resolves a mention to an email if it can.
    email = ref.value if ref.type is UserRefType.EMAIL else ctx.settings.get("user_email")
    if not email:
        raise OperationError(
            f"I can't tell who {ref} is in Azure. Name them by email or Entra object id, "
            f"e.g. `/aml {intent.action} jane.doe@contoso.com`."
        )
    return Person(frozenset({email.lower()}), frozenset())


def shown_creator(entity: Any) -> str:
    """The creator the control plane shows: a UPN or a display name."""
    creator = getattr(entity.creation_context, "created_by", None) if entity.creation_context else None
    return creator if isinstance(creator, str) else ""

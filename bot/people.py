"""People named as plain `@name` text, found among the Slack workspace's members (users.list, cached).

Slack sends a mention as `<@U…|name>` when the command escapes them, and as the bare text `@name`
when it does not (or when someone types a name without picking it from the autocomplete).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

PAGE = 200  # Slack's recommended page size for users.list


@dataclass(frozen=True)
class Person:
    id: str
    handle: str
    display_name: str
    real_name: str

    @property
    def names(self) -> frozenset[str]:
        """What `@…` may say for this person: the handle or the display name, in any case."""
        return frozenset(n.casefold() for n in (self.handle, self.display_name) if n)


class NameNotFound(Exception):
    """No one, or more than one person, answers to the name; the message says which and what to do."""


def _person(member: dict[str, Any]) -> Person | None:
    if member.get("deleted") or member.get("is_bot") or member.get("id") == "USLACKBOT":
        return None
    profile = member.get("profile") or {}
    return Person(
        id=str(member.get("id", "")),
        handle=str(member.get("name") or ""),
        display_name=str(profile.get("display_name") or ""),
        real_name=str(member.get("real_name") or profile.get("real_name") or ""),
    )


def match(people: list[Person], name: str) -> Person:
    """The one person `name` means; NameNotFound, in words, when it means nobody or several."""
    found = [p for p in people if name.casefold() in p.names]
    if len(found) == 1:
        return found[0]
    pick = "Pick the person from Slack's `@` autocomplete, or give their email."
    if not found:
        raise NameNotFound(f"Nobody in this Slack workspace is called `@{name}`. {pick}")
    listed = "; ".join(f"{p.real_name or p.handle} (@{p.handle})" for p in found[:5])
    raise NameNotFound(f"`@{name}` could be any of {len(found)} people: {listed}. {pick}")


class SlackPeople:
    """The workspace's people, listed once and kept `ttl` seconds (a lookup must not page through
    thousands of members for every command)."""

    def __init__(self, client: AsyncWebClient, ttl: float = 300.0) -> None:
        self._client = client
        self._ttl = ttl
        self._cached: tuple[float, list[Person]] | None = None

    async def everyone(self) -> list[Person]:
        if self._cached and time.monotonic() - self._cached[0] < self._ttl:
            return self._cached[1]
        people: list[Person] = []
        cursor: str | None = None
        while True:
            response = await self._client.users_list(limit=PAGE, cursor=cursor)
            people += [p for m in response.get("members") or [] if (p := _person(m))]
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        self._cached = (time.monotonic(), people)
        return people

    async def find(self, name: str) -> Person:
        return match(await self.everyone(), name)

"""Slack user groups named in the policy, resolved through the Web API with a short cache."""

from __future__ import annotations

import logging
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.policy import Actor, groups_named
from bot.settings import PolicyConfig

log = logging.getLogger(__name__)


class GroupResolver:
    def __init__(self, client: AsyncWebClient, policy: PolicyConfig, ttl: float = 300.0) -> None:
        self._client = client
        self._policy = policy
        self._ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, group: str) -> frozenset[str]:
        cached = self._cache.get(group)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
            users: frozenset[str] = frozenset(response.get("users", []))
        except SlackApiError as error:
            # An unknown or unreadable group grants nothing; say so in the log, not to users.
            log.warning("usergroup lookup failed", extra={"group": group, "error": error.response.get("error")})
            users = frozenset()
        self._cache[group] = (time.monotonic(), users)
        return users

    async def all_members(self) -> dict[str, frozenset[str]]:
        return {group: await self.members(group) for group in sorted(groups_named(self._policy))}

    async def actor(self, user_id: str) -> Actor:
        groups = await self.all_members()
        return Actor(user_id, frozenset(g for g, users in groups.items() if user_id in users))

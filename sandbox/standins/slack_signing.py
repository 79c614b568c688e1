"""What Slack sends to the app: signed slash command and block_actions requests.

Bodies are built the way Slack builds them (form fields for slash commands, one ``payload`` form field
of JSON for interactions) and signed with the app's signing secret, so they pass Bolt's verification.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import aiohttp

_counter = itertools.count(1)

DEFAULT_TEAM_DOMAIN = "amlbot-test"
DEFAULT_API_APP_ID = "A0AMLBOT01"
# The deprecated verification token Slack still includes; Bolt ignores it.
DEFAULT_VERIFICATION_TOKEN = "verification-token-not-checked"


def sign(signing_secret: str, body: bytes, timestamp: int) -> str:
    """Slack's v0 request signature: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def new_trigger_id() -> str:
    # Same shape as Slack's: "<digits>.<digits>.<32 hex>"; unique so tests can tell deliveries apart.
    return f"{next(_counter)}{secrets.randbelow(10**9)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def _default_response_url(team_id: str, kind: str) -> str:
    return f"https://hooks.slack.com/{kind}/{team_id}/{secrets.randbelow(10**12)}/{secrets.token_hex(12)}"


def _channel_name(channel_id: str) -> str:
    # What Slack puts in channel_name for DMs and private channels.
    if channel_id.startswith("D"):
        return "directmessage"
    if channel_id.startswith("G"):
        return "privategroup"
    return f"channel-{channel_id.lower()}"


def slash_command_body(
    text: str,
    user_id: str,
    channel_id: str,
    team_id: str = "T0001",
    command: str = "/aml",
    response_url: str | None = None,
    trigger_id: str | None = None,
    *,
    user_name: str | None = None,
    channel_name: str | None = None,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_API_APP_ID,
    token: str = DEFAULT_VERIFICATION_TOKEN,
    enterprise_id: str | None = None,
    is_enterprise_install: bool = False,
) -> bytes:
    """A slash command request body, form-encoded with every field Slack sends (on an Enterprise
    Grid org, `enterprise_id` and `enterprise_name` too; `team_id` stays the workspace's)."""
    fields = {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name or _channel_name(channel_id),
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": str(is_enterprise_install).lower(),
        "response_url": response_url or _default_response_url(team_id, "commands"),
        "trigger_id": trigger_id or new_trigger_id(),
    }
    if enterprise_id:
        fields.update(enterprise_id=enterprise_id, enterprise_name=f"org-{enterprise_id.lower()}")
    return urlencode(fields).encode()


def block_actions_payload(
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    message_ts: str,
    team_id: str = "T0001",
    block_id: str | None = None,
    response_url: str | None = None,
    trigger_id: str | None = None,
    *,
    message: dict[str, Any] | None = None,
    button_text: str = "Button",
    is_ephemeral: bool = False,
    user_name: str | None = None,
    channel_name: str | None = None,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    api_app_id: str = DEFAULT_API_APP_ID,
    token: str = DEFAULT_VERIFICATION_TOKEN,
    enterprise_id: str | None = None,
    is_enterprise_install: bool = False,
) -> dict[str, Any]:
    """The JSON of a button click on a message (``message`` defaults to an empty bot message at ``message_ts``);
    on an Enterprise Grid org, ``enterprise`` names the org and ``team`` the workspace clicked in."""
    name = user_name or user_id.lower()
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": {"id": enterprise_id, "name": f"org-{enterprise_id.lower()}"} if enterprise_id else None,
        "is_enterprise_install": is_enterprise_install,
        "channel": {"id": channel_id, "name": channel_name or _channel_name(channel_id)},
        "state": {"values": {}},
        "response_url": response_url or _default_response_url(team_id, "actions"),
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id or secrets.token_hex(3),
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    # Slack sends the message only for non-ephemeral containers.
    if not is_ephemeral:
        base = {"type": "message", "ts": message_ts, "text": "", "blocks": []}
        if message is not None:
            base.update({k: v for k, v in message.items() if k != "channel"})
        payload["message"] = base
    return payload


def block_actions_body(
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    message_ts: str,
    team_id: str = "T0001",
    block_id: str | None = None,
    response_url: str | None = None,
    trigger_id: str | None = None,
    **kwargs: Any,
) -> bytes:
    """A block_actions request body: one form field ``payload`` holding the JSON."""
    payload = block_actions_payload(
        action_id, value, user_id, channel_id, message_ts, team_id, block_id, response_url, trigger_id, **kwargs
    )
    return urlencode({"payload": json.dumps(payload)}).encode()


def view_submission_body(
    view: dict[str, Any],
    user_id: str,
    values: dict[str, dict[str, str]],
    team_id: str = "T0001",
    *,
    user_name: str | None = None,
    api_app_id: str = DEFAULT_API_APP_ID,
    token: str = DEFAULT_VERIFICATION_TOKEN,
) -> bytes:
    """A modal's submission as Slack sends it: `values` maps block_id -> action_id -> typed text, which
    Slack puts in `view.state.values` as plain_text_input values."""
    name = user_name or user_id.lower()
    state = {
        block: {action: {"type": "plain_text_input", "value": text} for action, text in actions.items()}
        for block, actions in values.items()
    }
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": DEFAULT_TEAM_DOMAIN},
        "user": {"id": user_id, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": new_trigger_id(),
        "view": {**{k: v for k, v in view.items() if k != "user"}, "state": {"values": state}},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def app_home_opened_body(
    user: str, team_id: str = "T0001", *, tab: str = "home", api_app_id: str = DEFAULT_API_APP_ID,
    enterprise_id: str | None = None,
) -> bytes:
    """An Events API delivery of `app_home_opened`, as Slack posts it: one JSON body (on a Grid org,
    `enterprise_id` names the org beside the workspace's `team_id`)."""
    event = {"type": "app_home_opened", "user": user, "channel": "D" + user[1:], "tab": tab, "event_ts": f"{time.time():.6f}"}
    grid = {"enterprise_id": enterprise_id} if enterprise_id else {}
    return json.dumps({
        "token": DEFAULT_VERIFICATION_TOKEN, "team_id": team_id, "api_app_id": api_app_id, "event": event, **grid,
        "type": "event_callback", "event_id": "Ev" + secrets.token_hex(5).upper(), "event_time": int(time.time()),
    }).encode()


def home_click_body(
    action_id: str, value: str, user: str, team_id: str = "T0001", *, trigger_id: str | None = None,
    view_id: str = "VHOME00001", api_app_id: str = DEFAULT_API_APP_ID,
) -> bytes:
    """A button clicked on the Home tab: the container is the view; no channel, no response_url."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": DEFAULT_VERIFICATION_TOKEN,
        "container": {"type": "view", "view_id": view_id},
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": DEFAULT_TEAM_DOMAIN},
        "view": {"id": view_id, "type": "home", "blocks": [], "callback_id": "", "state": {"values": {}}},
        "actions": [{"action_id": action_id, "block_id": f"home:{value}", "value": value, "type": "button", "action_ts": f"{time.time():.6f}"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


class SlackSender:
    """Posts signed requests to the app's events URL, as Slack does. One aiohttp session; ``close()`` it."""

    def __init__(self, events_url: str, signing_secret: str, *, timeout: float = 10.0) -> None:
        self.events_url = events_url
        self.signing_secret = signing_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def send(
        self,
        body: bytes,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> tuple[int, str]:
        """POST ``body``; ``signature`` overrides the computed one so tests can forge requests."""
        ts = int(time.time()) if timestamp is None else timestamp
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature if signature is not None else sign(self.signing_secret, body, ts),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
        if retry_reason is not None:
            headers["X-Slack-Retry-Reason"] = retry_reason
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.post(self.events_url, data=body, headers=headers) as response:
            return response.status, await response.text()

    async def command(
        self,
        text: str,
        user: str,
        channel: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        **body_kwargs: Any,
    ) -> tuple[int, str]:
        """Send a slash command; ``body_kwargs`` go to ``slash_command_body`` (command, response_url, ...)."""
        body = slash_command_body(text, user, channel, **body_kwargs)
        return await self.send(
            body, timestamp=timestamp, signature=signature, retry_num=retry_num, retry_reason=retry_reason
        )

    async def click(
        self,
        action_id: str,
        value: str,
        user: str,
        channel: str,
        message_ts: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        **body_kwargs: Any,
    ) -> tuple[int, str]:
        """Send a button click; ``body_kwargs`` go to ``block_actions_body`` (response_url, message, ...)."""
        body = block_actions_body(action_id, value, user, channel, message_ts, **body_kwargs)
        return await self.send(
            body, timestamp=timestamp, signature=signature, retry_num=retry_num, retry_reason=retry_reason
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

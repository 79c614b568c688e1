"""An aiohttp server standing in for Slack's Web API (https://slack.com/api/<method>).

Point a real ``AsyncWebClient(base_url=standin.url)`` at it. It answers the methods amlbot uses the way
Slack does (HTTP 200 with ``ok: false`` for API errors, 404 for unknown methods, 429 + ``Retry-After``
when rate limited), keeps the resulting workspace state (messages, files, Home tabs, response_url
replies) and records every call so tests can assert on what the bot actually sent. With
``rate_limits`` set it enforces Slack's rate limits (sandbox/standins/slack_limits.py) as Slack does.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import inspect
import json
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

from aiohttp import web

from sandbox.standins.slack_limits import SlackRateLimits
from sandbox.standins.slack_socket import SocketModeHub

JsonDict = dict[str, Any]
Handler = Callable[[JsonDict], Awaitable[JsonDict]]

# Arguments Slack accepts as JSON-encoded strings in form/query bodies and decodes server-side.
_JSON_ARGS = ("blocks", "attachments", "files", "view", "metadata")
# Slack refuses messages with more than 50 blocks (see /work/shared/SLACK-FACTS.md).
_MAX_MESSAGE_BLOCKS = 50
# The bot scopes the token holds; Slack names them in the `x-oauth-scopes` header of every answer.
DEFAULT_SCOPES = ("commands", "chat:write", "files:write", "im:write", "usergroups:read", "users:read", "users:read.email")
# A response_url takes this many posts within this many seconds of its delivery (SLACK-FACTS.md).
RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60
# Methods that take the app-level token (xapp-…) and no other; the rest take a bot token.
_APP_LEVEL_METHODS = frozenset({"apps.connections.open"})


@dataclass
class ApiCall:
    """One request the stand-in received on /api/<method>, with what it answered."""

    method: str
    args: JsonDict
    headers: dict[str, str]
    time: float
    http_method: str = "POST"
    status: int = 0
    response: JsonDict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return self.response.get("error")


@dataclass
class UploadedFile:
    """A file going through the v2 upload flow; ``completed`` once files.completeUploadExternal ran."""

    id: str
    filename: str
    length: int
    title: str | None = None
    content: bytes = b""
    uploaded: bool = False
    completed: bool = False
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None


@dataclass
class ResponseUrlPost:
    """A JSON body POSTed to a response_url handed out by ``response_url_for``."""

    key: str
    channel: str
    message_ts: str | None
    body: JsonDict
    time: float
    user: str | None = None  # whom the response_url was handed to


@dataclass
class _ResponseUrl:
    channel: str
    message_ts: str | None
    user: str | None
    thread_ts: str | None
    issued: float = field(default_factory=time.time)
    uses: int = 0


@dataclass
class _Fault:
    status: int
    error: str
    headers: dict[str, str]


class _MethodError(Exception):
    """Raised by method handlers; becomes ``{"ok": false, "error": ...}`` with HTTP 200, as Slack answers."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def _flag(value: Any) -> bool:
    # Slack accepts booleans as JSON true, "true" or "1" (slack_sdk sends "1"/"0" in params).
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true")) or value == 1


def _is_conversation_id(channel: Any) -> bool:
    return isinstance(channel, str) and len(channel) > 1 and channel[0] in "CGD"


class SlackWebApiStandIn:
    """Slack Web API stand-in on 127.0.0.1, a free port. Use ``async with`` or ``start()``/``stop()``.

    Directory data (``users``, ``usergroups``, ``channels``) is configuration and survives ``reset()``;
    conversations need no configuration: any ID starting with C, G or D exists (G/D private).
    ``scopes`` are what the token holds: every authenticated answer names them in ``x-oauth-scopes``.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        team_domain: str = "amlbot-test",
        bot_user_id: str = "U0BOT0001",
        bot_id: str = "B0BOT0001",
        bot_name: str = "amlbot",
        app_id: str = "A0AMLBOT01",
        enterprise_id: str | None = None,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        usergroups: Mapping[str, Iterable[str]] | None = None,
        channels: Mapping[str, Mapping[str, Any]] | None = None,
        invalid_tokens: Iterable[str] = (),
        scopes: Iterable[str] = DEFAULT_SCOPES,
        rate_limits: SlackRateLimits | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.enterprise_id = enterprise_id  # an org-wide install on Enterprise Grid
        self.invalid_tokens: set[str] = set(invalid_tokens)
        self.scopes: list[str] = list(scopes)
        # Slack's per-method and per-channel limits, when a test wants them met (off by default: most
        # tests post faster than one message a second into one channel).
        self.rate_limits = rate_limits
        self.users: dict[str, JsonDict] = {}
        self.usergroups: dict[str, list[str]] = {k: list(v) for k, v in (usergroups or {}).items()}
        self.channels: dict[str, JsonDict] = {k: dict(v) for k, v in (channels or {}).items()}
        self.add_user(bot_user_id, bot_name, real_name=bot_name, is_bot=True)
        for user_id, user in (users or {}).items():
            self.users[user_id] = self._normalise_user(user_id, user)

        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.socket = SocketModeHub(app_id)
        self._handlers: dict[str, Handler] = {
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.list": self._users_list,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }
        self._last_ts_us = 0
        # users.list may answer fewer members than `limit` asks for, as Slack says it may: a small
        # number here makes the caller follow `response_metadata.next_cursor`.
        self.users_page_max = 1000
        # Slack's trigger ids work once, within 3 s of the click or command that carried them.
        # Tests that do not check that clock set None (they must not depend on timing).
        self.trigger_ttl: float | None = 3.0
        self._init_state()

    def _init_state(self) -> None:
        self.calls: list[ApiCall] = []
        self.home_views: dict[str, JsonDict] = {}
        self.modals: list[JsonDict] = []  # views.open answers, oldest first, each with the `user` it opened for
        self._triggers: dict[str, tuple[str, float]] = {}  # trigger id -> (user, issued at)
        self._exchanged: set[str] = set()
        self.response_posts: list[ResponseUrlPost] = []
        self.late_response_posts: list[str] = []  # keys of response_urls posted to after they expired
        self._messages: list[JsonDict] = []
        self._ephemerals: list[JsonDict] = []
        self._files: dict[str, UploadedFile] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._faults: defaultdict[str, deque[_Fault]] = defaultdict(deque)
        self.peers: list[tuple[str, object]] = []  # (path, client address) of every request: one address a connection

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            return
        # Uploads carry whole export archives: allow more than aiohttp's 1 MiB default.
        app = web.Application(client_max_size=256 * 1024 * 1024, middlewares=[self._note_peer])
        app.router.add_get("/api/{method}", self._handle_api)
        app.router.add_post("/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_get("/link/", self.socket.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self._host, self._port).start()
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self.socket.close()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def root_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("SlackWebApiStandIn is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def url(self) -> str:
        """Base URL for ``AsyncWebClient(base_url=...)``; slack_sdk appends the method name."""
        return f"{self.root_url}/api/"

    # ------------------------------------------------------------------ configuration

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        email: str | None = None,
        display_name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "Europe/London",
    ) -> JsonDict:
        user = {
            "name": name,
            "real_name": real_name if real_name is not None else name,
            "profile": {"email": email, "display_name": display_name if display_name is not None else name},
            "is_bot": is_bot,
            "deleted": deleted,
            "tz": tz,
        }
        self.users[user_id] = self._normalise_user(user_id, user)
        return self.users[user_id]

    def add_usergroup(self, usergroup_id: str, user_ids: Iterable[str]) -> None:
        self.usergroups[usergroup_id] = list(user_ids)

    def add_channel(self, channel_id: str, name: str, *, is_private: bool | None = None) -> None:
        self.channels[channel_id] = {"name": name, "is_private": is_private}

    def reset(self) -> None:
        """Forget calls, messages, files, views, response_url posts and pending faults; keep the directory."""
        self._init_state()

    # ------------------------------------------------------------------ fault injection

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls to ``method`` with HTTP 429, as Slack does over a rate tier."""
        fault = _Fault(429, "ratelimited", {"Retry-After": str(retry_after)})
        self._faults[method].extend([fault] * times)

    def fail(self, method: str, error: str = "internal_error", times: int = 1, status: int = 200) -> None:
        """Answer the next ``times`` calls to ``method`` with ``{"ok": false, "error": error}``."""
        self._faults[method].extend([_Fault(status, error, {})] * times)

    # ------------------------------------------------------------------ recorded state

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    @property
    def throttled(self) -> list[ApiCall]:
        """Calls answered 429 `ratelimited`: over a rate limit, or a fault a test injected."""
        return [c for c in self.calls if c.status == 429]

    def messages(self, channel: str | None = None) -> list[JsonDict]:
        """Messages as they stand now (after updates), thread replies included, in posting order.

        Each carries its ``channel``. File shares appear too (text = initial_comment, ``files`` set).
        """
        return [copy.deepcopy(m) for m in self._messages if channel is None or m["channel"] == channel]

    def message(self, channel: str, ts: str) -> JsonDict | None:
        found = self._find_message(channel, ts)
        return copy.deepcopy(found) if found is not None else None

    def thread(self, channel: str, thread_ts: str) -> list[JsonDict]:
        """The parent (if posted here) followed by its replies, like conversations.replies."""
        return [
            copy.deepcopy(m)
            for m in self._messages
            if m["channel"] == channel and (m["ts"] == thread_ts or m.get("thread_ts") == thread_ts)
        ]

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[JsonDict]:
        """Ephemeral messages from chat.postEphemeral and from ephemeral response_url replies."""
        return [
            copy.deepcopy(m)
            for m in self._ephemerals
            if (channel is None or m["channel"] == channel) and (user is None or m.get("user") == user)
        ]

    @property
    def files(self) -> list[UploadedFile]:
        """Files shared by files.completeUploadExternal, with their uploaded bytes."""
        return [f for f in self._files.values() if f.completed]

    @property
    def responses(self) -> list[JsonDict]:
        """JSON bodies POSTed to response URLs, verbatim, in order."""
        return [p.body for p in self.response_posts]

    def responses_for(self, channel: str) -> list[JsonDict]:
        return [p.body for p in self.response_posts if p.channel == channel]

    def response_url_for(
        self,
        channel: str,
        message_ts: str | None = None,
        *,
        user: str | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """A response_url for a slash command or interaction payload in ``channel``.

        Give ``message_ts`` (the message holding the clicked button) so ``replace_original`` /
        ``delete_original`` replies act on that message, as Slack's do.
        """
        key = uuid.uuid4().hex
        self._response_urls[key] = _ResponseUrl(channel, message_ts, user, thread_ts)
        return f"{self.root_url}/response/{key}"

    def expire_response_urls(self) -> None:
        """Half an hour passes for every response_url handed out so far: Slack refuses them from now on."""
        for target in self._response_urls.values():
            target.issued -= RESPONSE_URL_LIFETIME

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,
        *,
        interval: float = 0.01,
        description: str | None = None,
    ) -> Any:
        """Poll ``predicate`` (sync or async) until it returns something truthy, and return that.

        Lookup errors (``messages()[0]`` before anything is posted) count as "not yet".
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_error: BaseException | None = None
        while True:
            try:
                result = predicate()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return result
            except LookupError as exc:
                last_error = exc
            if loop.time() >= deadline:
                raise AssertionError(self._describe_timeout(predicate, timeout, description, last_error))
            await asyncio.sleep(interval)

    def _describe_timeout(
        self, predicate: Callable[[], Any], timeout: float, description: str | None, last_error: BaseException | None
    ) -> str:
        if description is None:
            try:
                description = inspect.getsource(predicate).strip()
            except (OSError, TypeError):
                description = repr(predicate)
        lines = [f"condition not met within {timeout}s: {description}"]
        if last_error is not None:
            lines.append(f"last lookup error: {last_error!r}")
        lines.append(f"API calls ({len(self.calls)}, last 20):")
        for call in self.calls[-20:]:
            outcome = "ok" if call.ok else f"{call.status} {call.error}"
            lines.append(f"  {call.method} {_summarise(call.args)} -> {outcome}")
        lines.append(f"messages ({len(self._messages)}, last 10):")
        for m in self._messages[-10:]:
            lines.append(f"  {m['channel']} ts={m['ts']} thread_ts={m.get('thread_ts')} text={m.get('text')!r:.120}")
        if self.response_posts:
            lines.append(f"response_url posts: {[_summarise(p.body) for p in self.response_posts[-5:]]}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ HTTP plumbing

    @web.middleware
    async def _note_peer(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        transport = request.transport
        self.peers.append((request.path, transport.get_extra_info("peername") if transport else None))
        return await handler(request)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            args = await self._parse_args(request)
        except ValueError:
            args = {"_raw_body": await request.text()}
            body: JsonDict = {"ok": False, "error": "invalid_json"}
            self.calls.append(ApiCall(method, args, dict(request.headers), time.time(), request.method, 200, body))
            return web.json_response(body)
        token = _bearer_token(request) or args.pop("token", None)
        call = ApiCall(method, args, dict(request.headers), time.time(), request.method)
        self.calls.append(call)

        status, body, headers = await self._dispatch(method, args, token)
        call.status, call.response = status, body
        return web.json_response(body, status=status, headers=headers)

    async def _dispatch(
        self, method: str, args: JsonDict, token: str | None
    ) -> tuple[int, JsonDict, dict[str, str]]:
        handler = self._handlers.get(method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token in self.invalid_tokens:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if method != "auth.test" and (method in _APP_LEVEL_METHODS) != token.startswith("xapp-"):
            return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        if self.rate_limits is not None:
            channel = args.get("channel") or args.get("channel_id")
            wait = self.rate_limits.wait(method, channel if isinstance(channel, str) else None)
            if wait:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": self.rate_limits.retry_after(wait)}
        if self._faults[method]:
            fault = self._faults[method].popleft()
            return fault.status, {"ok": False, "error": fault.error}, fault.headers
        granted = {"x-oauth-scopes": ",".join(self.scopes)}
        try:
            return 200, {"ok": True, **await handler(args)}, granted
        except _MethodError as exc:
            return 200, {"ok": False, "error": exc.error, **exc.extra}, granted

    async def _parse_args(self, request: web.Request) -> JsonDict:
        # slack_sdk sends some POSTs with query params (files.*), others as JSON or form bodies: merge all.
        args: JsonDict = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                decoded = await request.json()
                if not isinstance(decoded, dict):
                    raise ValueError("JSON body must be an object")
                args.update(decoded)
            elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                args.update({k: v if isinstance(v, str) else v.file.read() for k, v in form.items()})
        for key in _JSON_ARGS:
            if isinstance(args.get(key), str):
                try:
                    args[key] = json.loads(args[key])
                except ValueError:
                    args[key] = _InvalidJson(args[key])
        return args

    async def _handle_upload(self, request: web.Request) -> web.Response:
        stored = self._files.get(request.match_info["file_id"])
        if stored is None:
            return web.Response(status=404, text="file_not_found")
        # Slack takes the raw bytes or a multipart form; slack_sdk sends raw bytes.
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = next((v for v in form.values() if not isinstance(v, str)), None)
            content = part.file.read() if part is not None else b""
        else:
            content = await request.read()
        stored.content, stored.uploaded = content, True
        return web.Response(text=f"OK - {len(content)}", content_type="text/plain")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        target = self._response_urls.get(request.match_info["key"])
        if target is None:
            return web.Response(status=404, text="no_active_hooks")  # (U) Slack's exact error text
        if target.uses >= RESPONSE_URL_USES or time.time() - target.issued >= RESPONSE_URL_LIFETIME:
            self.late_response_posts.append(request.match_info["key"])
            return web.Response(status=404, text="expired_url")  # (U) Slack's exact error text
        target.uses += 1
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.response_posts.append(
            ResponseUrlPost(
                request.match_info["key"], target.channel, target.message_ts, body, time.time(), target.user
            )
        )
        self._apply_response(target, body)
        return web.Response(text="ok")

    def _apply_response(self, target: _ResponseUrl, body: JsonDict) -> None:
        original = self._find_message(target.channel, target.message_ts) if target.message_ts else None
        if _flag(body.get("delete_original")):
            if original is not None:
                self._messages.remove(original)
        elif _flag(body.get("replace_original")):
            if original is not None:
                for key in ("text", "blocks", "attachments"):
                    if key in body:
                        original[key] = body[key]
        elif body.get("response_type") == "in_channel":
            self._store_message(target.channel, body, thread_ts=body.get("thread_ts") or target.thread_ts)
        else:
            self._ephemerals.append(
                {
                    "channel": target.channel,
                    "user": target.user,
                    "text": body.get("text", ""),
                    "blocks": body.get("blocks", []),
                    "ts": self._next_ts(),
                    "via": "response_url",
                }
            )

    # ------------------------------------------------------------------ state helpers

    def _next_ts(self) -> str:
        # Slack ts: "<unix seconds>.<6 digits>", unique and increasing within a channel.
        self._last_ts_us = max(time.time_ns() // 1000, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _find_message(self, channel: str, ts: str | None) -> JsonDict | None:
        return next((m for m in self._messages if m["channel"] == channel and m["ts"] == ts), None)

    def _store_message(
        self, channel: str, args: JsonDict, *, thread_ts: str | None = None, **extra: Any
    ) -> JsonDict:
        message: JsonDict = {
            "type": "message",
            "channel": channel,
            "text": args.get("text") or "",
            "blocks": args.get("blocks") or [],
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": self._next_ts(),
            **extra,
        }
        if args.get("attachments"):
            message["attachments"] = args["attachments"]
        if thread_ts:
            message["thread_ts"] = thread_ts
        self._messages.append(message)
        return message

    def _normalise_user(self, user_id: str, user: Mapping[str, Any]) -> JsonDict:
        profile = dict(user.get("profile") or {})
        return {
            "name": user.get("name", user_id.lower()),
            "real_name": user.get("real_name", user.get("name", "")),
            "profile": profile,
            "is_bot": bool(user.get("is_bot", False)),
            "deleted": bool(user.get("deleted", False)),
            "tz": user.get("tz", "Europe/London"),
        }

    def _user_object(self, user_id: str) -> JsonDict:
        user = self.users[user_id]
        tz = user["tz"]
        offset = ZoneInfo(tz).utcoffset(datetime.now())
        profile = {
            "real_name": user["real_name"],
            "real_name_normalized": user["real_name"],
            "display_name": user["profile"].get("display_name", ""),
            "display_name_normalized": user["profile"].get("display_name", ""),
            "team": self.team_id,
            **user["profile"],
        }
        if user["is_bot"]:
            profile["bot_id"] = self.bot_id if user_id == self.bot_user_id else None
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": user["name"],
            "deleted": user["deleted"],
            "real_name": user["real_name"],
            "tz": tz,
            "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": user["is_bot"],
            "is_app_user": False,
            "updated": 1700000000,
        }

    # ------------------------------------------------------------------ Web API methods

    async def _apps_connections_open(self, args: JsonDict) -> JsonDict:
        return {"url": self.socket.link(self.root_url)}

    async def _auth_test(self, args: JsonDict) -> JsonDict:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_domain,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": self.enterprise_id is not None,
            **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {}),
        }

    async def _chat_post_message(self, args: JsonDict) -> JsonDict:
        channel = _require_channel(args)
        _require_content(args)
        message = self._store_message(channel, args, thread_ts=args.get("thread_ts"))
        return {"channel": channel, "ts": message["ts"], "message": _public(message)}

    async def _chat_update(self, args: JsonDict) -> JsonDict:
        channel = _require_channel(args)
        message = self._find_message(channel, args.get("ts"))
        if message is None:
            raise _MethodError("message_not_found")
        _require_content(args)
        # Slack keeps fields the update leaves out; an empty list clears blocks/attachments.
        for key in ("text", "blocks", "attachments"):
            if key in args:
                message[key] = args[key]
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": channel, "ts": message["ts"], "text": message["text"], "message": _public(message)}

    async def _chat_post_ephemeral(self, args: JsonDict) -> JsonDict:
        channel = _require_channel(args)
        if not args.get("user"):
            raise _MethodError("user_not_found")
        _require_content(args)
        ts = self._next_ts()
        entry = {
            "channel": channel,
            "user": args["user"],
            "text": args.get("text") or "",
            "blocks": args.get("blocks") or [],
            "ts": ts,
            "via": "chat.postEphemeral",
        }
        if args.get("thread_ts"):
            entry["thread_ts"] = args["thread_ts"]
        self._ephemerals.append(entry)
        return {"message_ts": ts}

    async def _chat_get_permalink(self, args: JsonDict) -> JsonDict:
        channel = _require_channel(args)
        message = self._find_message(channel, args.get("message_ts"))
        if message is None:
            raise _MethodError("message_not_found")
        permalink = f"https://{self.team_domain}.slack.com/archives/{channel}/p{message['ts'].replace('.', '')}"
        if message.get("thread_ts"):
            permalink += f"?thread_ts={message['thread_ts']}&cid={channel}"
        return {"channel": channel, "permalink": permalink}

    async def _users_info(self, args: JsonDict) -> JsonDict:
        if args.get("user") not in self.users:
            raise _MethodError("user_not_found")
        return {"user": self._user_object(args["user"])}

    async def _users_lookup_by_email(self, args: JsonDict) -> JsonDict:
        email = str(args.get("email", "")).lower()
        for user_id, user in self.users.items():
            if email and str(user["profile"].get("email") or "").lower() == email:
                return {"user": self._user_object(user_id)}
        raise _MethodError("users_not_found")  # sic: Slack's error for this method is plural

    async def _users_list(self, args: JsonDict) -> JsonDict:
        """Paged like Slack: `cursor` is opaque (base64 of "user:<next id>"), the last page's
        `next_cursor` is "", and `limit` 0 or absent is treated as Slack's maximum page."""
        ids = sorted(self.users)
        start = 0
        if args.get("cursor"):
            try:
                kind, _, first = base64.b64decode(str(args["cursor"]), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise _MethodError("invalid_cursor") from None
            if kind != "user" or first not in self.users:
                raise _MethodError("invalid_cursor")
            start = ids.index(first)
        try:
            limit = int(args.get("limit") or 0)
        except ValueError:
            raise _MethodError("invalid_arguments") from None
        size = min(limit or 1000, 1000, self.users_page_max)
        page = ids[start : start + size]
        rest = ids[start + size :]
        cursor = base64.b64encode(f"user:{rest[0]}".encode()).decode() if rest else ""
        return {
            "members": [self._user_object(u) for u in page],
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": cursor},
        }

    async def _usergroups_users_list(self, args: JsonDict) -> JsonDict:
        group = args.get("usergroup")
        if group not in self.usergroups:
            raise _MethodError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    async def _conversations_info(self, args: JsonDict) -> JsonDict:
        channel = _require_channel(args)
        configured = self.channels.get(channel, {})
        is_im = channel.startswith("D")
        is_private = configured.get("is_private")
        if is_private is None:
            is_private = channel[0] in "GD"
        info: JsonDict = {
            "id": channel,
            "is_channel": not is_im,
            "is_group": False,
            "is_im": is_im,
            "is_private": bool(is_private),
            "is_archived": False,
            "is_member": True,
            "created": 1700000000,
        }
        if not is_im:
            name = configured.get("name", f"channel-{channel.lower()}")
            info.update(name=name, name_normalized=name)
        return {"channel": info}

    async def _conversations_open(self, args: JsonDict) -> JsonDict:
        # A bot opens a DM with one person: {"channel": {"id": "D…"}}, the same id every time (with
        # `return_im` Slack adds the whole conversation; amlbot does not ask). Needs im:write;
        # `users` is a comma-separated list: up to 8 people make a multi-person DM.
        if "im:write" not in self.scopes:
            raise _MethodError("missing_scope", needed="im:write", provided=",".join(self.scopes))
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users and not args.get("channel"):
            raise _MethodError("users_list_not_supplied")
        if args.get("channel"):
            return {"channel": {"id": _require_channel(args)}}
        if len(users) > 8:
            raise _MethodError("too_many_users")
        for user in users:
            if user not in self.users:
                raise _MethodError("user_not_found")
            if self.users[user]["deleted"]:
                raise _MethodError("user_disabled")
        if len(users) > 1:  # a multi-person DM: one private conversation for that set of people
            return {"channel": {"id": "G" + uuid.uuid5(uuid.NAMESPACE_OID, ",".join(sorted(users))).hex[:10].upper()}}
        return {"channel": {"id": self.dm_channel(users[0])}}

    def dm_channel(self, user_id: str) -> str:
        """The id of the bot's direct-message conversation with `user_id` (stable, as in Slack)."""
        return "D" + user_id[1:]

    def issue_trigger(self, user: str, *, issued_at: float | None = None) -> str:
        """A trigger id for a click or a command of `user`, as Slack puts in the payload."""
        from sandbox.standins.slack_signing import new_trigger_id

        trigger = new_trigger_id()
        self._triggers[trigger] = (user, time.time() if issued_at is None else issued_at)
        return trigger

    async def _views_open(self, args: JsonDict) -> JsonDict:
        view = args.get("view")
        trigger = args.get("trigger_id")
        if isinstance(trigger, str) and trigger in self._exchanged:
            raise _MethodError("exchanged_trigger_id")  # a trigger opens one view only
        if not isinstance(trigger, str) or trigger not in self._triggers:
            raise _MethodError("invalid_trigger_id")
        user, issued = self._triggers.pop(trigger)
        self._exchanged.add(trigger)
        if self.trigger_ttl is not None and time.time() - issued > self.trigger_ttl:
            raise _MethodError("expired_trigger_id")
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise _MethodError("invalid_arguments")
        title = (view.get("title") or {}).get("text", "")
        if not title or len(title) > 24 or len(view.get("blocks") or []) > 100 or len(view.get("private_metadata") or "") > 3000:
            raise _MethodError("invalid_arguments", response_metadata={"messages": ["[ERROR] view limits exceeded"]})
        opened = {
            "id": "V" + uuid.uuid4().hex[:10].upper(),
            "team_id": self.team_id,
            "type": "modal",
            "state": {"values": {}},
            "hash": uuid.uuid4().hex,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "private_metadata": "",
            "callback_id": "",
            **view,
        }
        self.modals.append({**opened, "user": user})
        return {"view": opened}

    async def _views_publish(self, args: JsonDict) -> JsonDict:
        view = args.get("view")
        if not args.get("user_id") or not isinstance(view, dict):
            raise _MethodError("invalid_arguments")
        if view.get("type") != "home":
            raise _MethodError("invalid_arguments", detail="views.publish only accepts type home")
        self.home_views[args["user_id"]] = view
        return {
            "view": {
                "id": "V" + uuid.uuid4().hex[:10].upper(),
                "team_id": self.team_id,
                "app_id": self.app_id,
                "bot_id": self.bot_id,
                "hash": uuid.uuid4().hex,
                "blocks": view.get("blocks", []),
                **view,
            }
        }

    async def _files_get_upload_url_external(self, args: JsonDict) -> JsonDict:
        filename = args.get("filename")
        try:
            length = int(args.get("length", ""))
        except ValueError:
            raise _MethodError("invalid_arguments") from None
        if not filename:
            raise _MethodError("invalid_arguments")
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        self._files[file_id] = UploadedFile(id=file_id, filename=filename, length=length)
        return {"upload_url": f"{self.root_url}/upload/v1/{file_id}", "file_id": file_id}

    async def _files_complete_upload_external(self, args: JsonDict) -> JsonDict:
        entries = args.get("files")
        if not isinstance(entries, list) or not entries:
            raise _MethodError("invalid_arguments")
        channels = [c for c in str(args.get("channels") or "").split(",") if c]
        if args.get("channel_id"):
            channels.insert(0, args["channel_id"])
        for channel in channels:
            if not _is_conversation_id(channel):
                raise _MethodError("channel_not_found")
        stored: list[UploadedFile] = []
        for entry in entries:
            found = self._files.get(entry.get("id")) if isinstance(entry, dict) else None
            # A file whose bytes never arrived cannot be completed.
            if found is None or not found.uploaded:
                raise _MethodError("file_not_found")
            stored.append(found)
        for found, entry in zip(stored, entries, strict=True):
            found.title = entry.get("title") or found.filename
            found.completed = True
            found.channel = channels[0] if channels else None
            found.thread_ts = args.get("thread_ts")
            found.initial_comment = args.get("initial_comment")
        # Sharing into a conversation posts a message carrying the files, as in Slack.
        shared = [{"id": f.id, "name": f.filename, "title": f.title, "size": len(f.content)} for f in stored]
        for channel in channels:
            self._store_message(
                channel, {"text": args.get("initial_comment") or ""}, thread_ts=args.get("thread_ts"), files=shared
            )
        return {"files": [{"id": f.id, "title": f.title} for f in stored]}


class _InvalidJson(str):
    """A JSON argument that did not decode; handlers answer with Slack's format error."""


def _bearer_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return None
    return auth.removeprefix("Bearer ").strip() or None


def _require_channel(args: JsonDict) -> str:
    channel = args.get("channel")
    if not _is_conversation_id(channel):
        raise _MethodError("channel_not_found")
    return str(channel)


def _require_content(args: JsonDict) -> None:
    blocks = args.get("blocks")
    if isinstance(blocks, _InvalidJson):
        raise _MethodError("invalid_blocks_format")
    if isinstance(args.get("attachments"), _InvalidJson):
        raise _MethodError("invalid_attachments")
    if blocks is not None:
        if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
            raise _MethodError("invalid_blocks")
        if len(blocks) > _MAX_MESSAGE_BLOCKS:
            raise _MethodError("invalid_blocks", errors=["no more than 50 items allowed [json-pointer:/blocks]"])
    if not args.get("text") and not blocks and not args.get("attachments"):
        raise _MethodError("no_text")


def _public(message: JsonDict) -> JsonDict:
    # Slack's message objects do not carry the channel; the stand-in keeps it only for its own lookups.
    return {k: copy.deepcopy(v) for k, v in message.items() if k != "channel"}


def _summarise(args: JsonDict, limit: int = 160) -> str:
    text = json.dumps(args, default=lambda o: f"<{len(o)} bytes>" if isinstance(o, bytes) else str(o))
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""The console: a page on localhost that looks and behaves like a Slack channel.

It is the Slack Web API stand-in that the bot calls (messages, updates, ephemeral replies, files,
response_url posts all land in its state) plus the pages and routes a person uses: typing `/aml …`
and pressing buttons become signed requests to the bot's /slack/events, built and signed as Slack
builds and signs them. The page follows changes live over server-sent events.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import mimetypes
import re
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from sandbox.parts import (
    SlackSender,
    SlackWebApiStandIn,
    app_home_opened_body,
    block_actions_body,
    home_click_body,
    slash_command_body,
    view_submission_body,
)

STATIC = Path(__file__).parent / "static"
KEEP_ALIVE = 15.0  # seconds between comments on an idle event stream
MAX_TEXT = 4000  # what the message box accepts, like Slack's composer
DM_NAME = "directmessage"  # the channel_name Slack sends for a command typed in a DM


def command_escapes(manifest: Path, command: str = "/aml") -> bool:
    """The `should_escape` of `command` in an app manifest: how Slack sends mentions to it."""
    for entry in yaml.safe_load(manifest.read_text())["features"]["slash_commands"]:
        if entry["command"] == command:
            return bool(entry.get("should_escape", False))
    raise ValueError(f"{manifest} has no {command} command")


class ConsoleStandIn(SlackWebApiStandIn):
    """The Web API stand-in, and a Slack-like channel page over the same state, on one port."""

    def __init__(
        self,
        *,
        roles: dict[str, str] | None = None,
        switchable: list[str] | None = None,
        title: str = "amlbot sandbox",
        suggestions: list[str] | None = None,
        should_escape: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.should_escape = should_escape  # the slash command's setting in manifest.yml
        self.roles = dict(roles or {})  # user id -> what the switcher calls them
        self.switchable = list(switchable or [])  # the people one may act as, in order
        self.title = title
        self.suggestions = list(suggestions or [])  # commands offered above the message box
        self._sender: SlackSender | None = None
        self._notes: list[dict[str, Any]] = []  # the console's own lines (commands typed, errors)
        self._closed: set[str] = set()  # ids of forms sent or closed
        self.version = 0
        self._changed: asyncio.Condition | None = None
        self._closing = False

    def connect(self, events_url: str, signing_secret: str) -> None:
        """Where the bot listens, and the secret Slack would sign its requests with."""
        self._sender = SlackSender(events_url, signing_secret, timeout=30)

    # ---- lifecycle: the stand-in's routes and the console's on one server ---------------------------

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._changed = asyncio.Condition()
        self._closing = False
        app = web.Application(client_max_size=256 * 1024 * 1024)
        # The Web API stand-in's own routes (as SlackWebApiStandIn.start adds them).
        app.router.add_get("/api/{method}", self._handle_api)
        app.router.add_post("/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{key}", self._handle_response_url)
        # The console.
        app.router.add_get("/", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/console/state", self._state)
        app.router.add_get("/console/events", self._events)
        app.router.add_post("/console/command", self._command)
        app.router.add_post("/console/message", self._message)
        app.router.add_post("/console/action", self._action)
        app.router.add_post("/console/form", self._form)
        app.router.add_post("/console/home", self._home)
        app.router.add_post("/console/home/action", self._home_action)
        app.router.add_get("/console/files/{file_id}/{name}", self._file)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
        await runner.setup()
        await web.TCPSite(runner, self._host, self._port).start()
        self._port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        self._closing = True
        await self._bump()
        if self._sender is not None:
            await self._sender.close()
        await super().stop()

    # ---- every change wakes the pages --------------------------------------------------------------

    async def _bump(self) -> None:
        self.version += 1
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    async def _handle_api(self, request: web.Request) -> web.Response:
        response = await super()._handle_api(request)
        await self._bump()
        return response

    async def _handle_upload(self, request: web.Request) -> web.Response:
        response = await super()._handle_upload(request)
        await self._bump()
        return response

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        response = await super()._handle_response_url(request)
        await self._bump()
        return response

    # ---- pages -----------------------------------------------------------------------------------

    async def _page(self, _: web.Request) -> web.Response:
        page = (STATIC / "console.html").read_text(encoding="utf-8").replace("{{title}}", html.escape(self.title))
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-store"})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the state's version, each time it changes."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        assert self._changed is not None
        seen = -1
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while not self._closing:
                if self.version != seen:
                    seen = self.version
                    await response.write(f"data: {seen}\n\n".encode())
                    continue
                idle = False
                async with self._changed:
                    try:
                        await asyncio.wait_for(self._changed.wait_for(lambda seen=seen: self.version != seen or self._closing), KEEP_ALIVE)
                    except TimeoutError:
                        idle = True
                if idle:
                    await response.write(b": idle\n\n")  # keeps proxies and the browser from giving up
        return response

    def _person(self, user_id: str) -> dict[str, Any]:
        user = self.users[user_id]
        return {
            "id": user_id,
            "name": user["name"],
            "real_name": user["real_name"],
            "role": self.roles.get(user_id, "bot" if user["is_bot"] else ""),
            "is_bot": user["is_bot"],
        }

    def _visible(self, me: str) -> list[dict[str, Any]]:
        """Every message as `me` sees it: the channel's, and the private ones meant for `me`."""
        shown: list[dict[str, Any]] = []
        for message in self._messages:
            if message["channel"].startswith("D") and message["channel"] != self.dm_channel(me):
                continue  # someone else's direct messages
            entry = {k: message.get(k) for k in ("channel", "ts", "thread_ts", "user", "text", "blocks", "edited")}
            if message.get("files"):
                entry["files"] = [
                    {**f, "url": f"/console/files/{f['id']}/{f['name']}"} for f in message["files"]
                ]
            shown.append(entry)
        for private in [*self._ephemerals, *self._notes]:
            if private.get("user") != me:
                continue
            entry = {k: private.get(k) for k in ("channel", "ts", "thread_ts", "text", "blocks")}
            entry.update(ephemeral=True, user=private.get("author", self.bot_user_id))
            shown.append(entry)
        return sorted(shown, key=lambda m: float(m["ts"]))

    async def _state(self, request: web.Request) -> web.Response:
        me = request.query.get("user") or (self.switchable[0] if self.switchable else "")
        if me not in self.users:
            raise web.HTTPBadRequest(text="unknown user")
        return web.json_response(
            {
                "version": self.version,
                "title": self.title,
                "team": {"id": self.team_id, "domain": self.team_domain},
                "bot": self.bot_user_id,
                "me": me,
                "switchable": self.switchable,
                "suggestions": self.suggestions,
                "users": {uid: self._person(uid) for uid in self.users},
                "channels": [
                    *({"id": cid, "name": c.get("name", cid)} for cid, c in self.channels.items()),
                    {"id": self.dm_channel(me), "name": "amlbot (direct messages)"},
                ],
                "messages": self._visible(me),
                "form": self._open_form(me),
                "home": self.home_views.get(me),
            },
            headers={"Cache-Control": "no-store"},
        )

    async def _file(self, request: web.Request) -> web.StreamResponse:
        found = self._files.get(request.match_info["file_id"])
        if found is None or not found.completed:
            raise web.HTTPNotFound()
        kind = mimetypes.guess_type(found.filename)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind == "application/json":
            kind += "; charset=utf-8"
        disposition = "attachment" if request.query.get("download") else "inline"
        return web.Response(
            body=found.content,
            headers={
                "Content-Type": kind,
                "Content-Disposition": f'{disposition}; filename="{found.filename}"',
                "Cache-Control": "no-store",
            },
        )

    # ---- what a person does: each becomes what Slack would send --------------------------------------

    async def _read(self, request: web.Request, *fields: str) -> dict[str, str]:
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="JSON expected") from None
        if not isinstance(body, dict) or not all(isinstance(body.get(f), str) for f in fields):
            raise web.HTTPBadRequest(text=f"expected {', '.join(fields)}")
        if body["user"] not in self.users or not self._reachable(body["user"], body["channel"]):
            raise web.HTTPBadRequest(text="unknown user or channel")
        return body

    def _reachable(self, user: str, channel: str) -> bool:
        """A channel of the workspace, or the person's own DM with the bot."""
        return channel in self.channels or channel == self.dm_channel(user)

    def _channel_name(self, channel: str) -> str:
        return self.channels.get(channel, {}).get("name") or DM_NAME

    def _note(self, user: str, channel: str, text: str, *, author: str | None = None, thread_ts: str | None = None) -> None:
        note: dict[str, Any] = {"channel": channel, "user": user, "text": text, "blocks": [], "ts": self._next_ts()}
        if author:
            note["author"] = author
        if thread_ts:
            note["thread_ts"] = thread_ts
        self._notes.append(note)

    def typed(self, text: str, *, command: bool = False) -> str:
        """What Slack sends for typed text: its three characters escaped, and `@name` of someone
        in the workspace sent as a mention — except in a slash command whose manifest entry says
        `should_escape: false`, which gets the plain text `@name`."""
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if command and not self.should_escape:
            return escaped
        by_name = {u["name"].lower(): uid for uid, u in self.users.items()}

        def mention(match: re.Match[str]) -> str:
            uid = by_name.get(match.group(1).lower())
            return f"<@{uid}|{self.users[uid]['name']}>" if uid else match.group(0)

        return re.sub(r"(?<![\w.])@([a-z0-9][a-z0-9._-]*)", mention, escaped, flags=re.IGNORECASE)

    async def _command(self, request: web.Request) -> web.Response:
        body = await self._read(request, "user", "channel", "text")
        user, channel, line = body["user"], body["channel"], body["text"].strip()[:MAX_TEXT]
        command, _, text = line.partition(" ")
        self._note(user, channel, line, author=user)
        if command != "/aml":
            self._note(user, channel, f"`{command}` is not a valid command. In this sandbox only `/aml` reaches amlbot.")
            await self._bump()
            return web.json_response({"ok": False, "error": "unknown_command"})
        status, answer = await self._deliver(
            slash_command_body(
                self.typed(text.strip(), command=True), user, channel, team_id=self.team_id, team_domain=self.team_domain,
                api_app_id=self.app_id, user_name=self.users[user]["name"],
                channel_name=self._channel_name(channel),
                response_url=self.response_url_for(channel, user=user),
            )
        )
        if status != 200:
            self._note(user, channel, f"/aml failed with the error \"{_slack_error(status)}\"")
        elif answer.strip():
            # A command acked with a body: Slack shows that body privately.
            self._note(user, channel, _ack_text(answer))
        await self._bump()
        return web.json_response({"ok": status == 200, "status": status})

    async def _message(self, request: web.Request) -> web.Response:
        """A plain message: posted to the channel as the person, like Slack's composer does."""
        body = await self._read(request, "user", "channel", "text")
        text = self.typed(body["text"].strip()[:MAX_TEXT])
        if text:
            message = self._store_message(body["channel"], {"text": text}, thread_ts=body.get("thread_ts") or None)
            for key in ("bot_id", "app_id"):
                message.pop(key, None)
            message["user"] = body["user"]
            await self._bump()
        return web.json_response({"ok": True})

    async def _action(self, request: web.Request) -> web.Response:
        body = await self._read(request, "user", "channel", "ts", "action_id")
        user, channel, ts = body["user"], body["channel"], body["ts"]
        message = self._find_message(channel, ts)
        if message is None:
            raise web.HTTPNotFound(text="message_not_found")
        element, block_id = _find_element(message, body["action_id"], body.get("block_id"))
        if element is None:
            raise web.HTTPNotFound(text="no such button on that message")
        status, _ = await self._deliver(
            block_actions_body(
                element["action_id"], element.get("value", ""), user, channel, ts, team_id=self.team_id,
                block_id=block_id, response_url=self.response_url_for(channel, ts, user=user, thread_ts=message.get("thread_ts")),
                trigger_id=self.issue_trigger(user),
                message={k: v for k, v in message.items() if k != "channel"},
                button_text=(element.get("text") or {}).get("text", ""),
                user_name=self.users[user]["name"], channel_name=self._channel_name(channel),
                team_domain=self.team_domain, api_app_id=self.app_id,
            )
        )
        if status != 200:
            self._note(user, channel, f"amlbot did not answer that click (\"{_slack_error(status)}\").")
            await self._bump()
        return web.json_response({"ok": status == 200, "status": status})

    def _open_form(self, me: str) -> dict[str, Any] | None:
        """The form (modal) the bot opened for `me` and `me` has not yet sent or closed."""
        return next((m for m in reversed(self.modals) if m["user"] == me and m["id"] not in self._closed), None)

    async def _form(self, request: web.Request) -> web.Response:
        """A form sent (its typed values) or closed; a sent one goes to the bot as Slack sends it."""
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="JSON expected") from None
        user = body.get("user") if isinstance(body, dict) else None
        form = self._open_form(user) if isinstance(user, str) else None
        if form is None or form["id"] != body.get("view_id"):
            raise web.HTTPNotFound(text="no such open form")
        self._closed.add(form["id"])
        status = 200
        if body.get("submit"):
            values = body.get("values") if isinstance(body.get("values"), dict) else {}
            typed = {str(b): {str(a): str(v) for a, v in actions.items()} for b, actions in values.items() if isinstance(actions, dict)}
            status, _ = await self._deliver(view_submission_body(form, user, typed, self.team_id, api_app_id=self.app_id))
        await self._bump()
        return web.json_response({"ok": status == 200, "status": status})

    async def _home(self, request: web.Request) -> web.Response:
        """The person opens amlbot's Home tab: Slack sends the bot `app_home_opened`."""
        body = await request.json()
        user = body.get("user") if isinstance(body, dict) else None
        if user not in self.users:
            raise web.HTTPBadRequest(text="unknown user")
        status, _ = await self._deliver(app_home_opened_body(user, self.team_id, api_app_id=self.app_id), "application/json")
        return web.json_response({"ok": status == 200, "status": status})

    async def _home_action(self, request: web.Request) -> web.Response:
        """A button on the person's Home tab, as Slack sends the click (no channel, no response_url)."""
        body = await request.json()
        user = body.get("user") if isinstance(body, dict) else None
        view = self.home_views.get(user) if isinstance(user, str) else None
        element = next(
            (e for b in (view or {}).get("blocks", []) if b.get("type") == "actions" for e in b.get("elements", [])
             if e.get("action_id") == body.get("action_id") and e.get("value") == body.get("value")),
            None,
        )
        if element is None:
            raise web.HTTPNotFound(text="no such button on the Home tab")
        status, _ = await self._deliver(
            home_click_body(element["action_id"], element.get("value", ""), user, self.team_id,
                            trigger_id=self.issue_trigger(user), api_app_id=self.app_id)
        )
        return web.json_response({"ok": status == 200, "status": status})

    async def _deliver(self, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> tuple[int, str]:
        if self._sender is None:
            return 503, ""
        try:
            return await self._sender.send(body, content_type=content_type)
        except (TimeoutError, OSError):
            return 504, ""


def _find_element(message: dict[str, Any], action_id: str, block_id: str | None) -> tuple[dict[str, Any] | None, str | None]:
    for block in message.get("blocks") or []:
        if block_id and block.get("block_id") not in (None, block_id):
            continue
        candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        for element in candidates:
            if element.get("action_id") == action_id:
                return element, block.get("block_id")
    return None, None


def _slack_error(status: int) -> str:
    # What Slack tells the person when an app does not ack properly.
    return {504: "operation_timeout", 401: "dispatch_failed", 503: "dispatch_failed"}.get(status, f"http_service_error ({status})")


def _ack_text(answer: str) -> str:
    with contextlib.suppress(ValueError):
        decoded = json.loads(answer)
        if isinstance(decoded, dict) and isinstance(decoded.get("text"), str):
            return decoded["text"]
    return answer

"""The running bot, wired to the Slack stand-in and Azurite, driven by signed requests."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from azure.storage.blob.aio import BlobServiceClient
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot import cards
from bot.doors import Doors
from bot.lifecycle import State
from bot.server import Bot, assemble, socket_mode_handler, web_app
from bot.settings import Settings, parse_config
from bot.store.store import RequestRecord
from commands.signing import Keyring, SigningKey
from sandbox.standins.azure.client import TEST_CLIENT_KWARGS, FakeCredential
from sandbox.standins.azure.server import AzureStandIn
from sandbox.standins.azure.state import AZURITE_ACCOUNT
from sandbox.standins.azurite import free_port
from sandbox.standins.graph import GraphStandIn
from sandbox.standins.slack_api import SlackWebApiStandIn
from sandbox.standins.slack_signing import SlackSender, block_actions_body, slash_command_body, view_submission_body
from sandbox.standins.slack_socket import SocketModeSender
from tests.contract.standin import assert_like_the_real_service

SIGNING_SECRET = "test-signing-secret"
APP_TOKEN = "xapp-1-A0AMLBOT01-1-test"
# How Slack reaches the bot: signed HTTP POSTs, or envelopes over the Socket Mode connection it opened.
Mode = Literal["http", "socket"]
AUDIT_KEYRING = Keyring(SigningKey.parse("test-audit-key"))
TEAM = "T0001"
CHANNEL = "C0AMLBOT1"
REQUESTER = "UREQ00001"
APPROVER_1 = "UAPP00001"
APPROVER_2 = "UAPP00002"
ADMIN = "UADM00001"
ONCALL = "UONC00001"
STRANGER = "UOUT00001"
PEOPLE = {REQUESTER: "riley", APPROVER_1: "avery", APPROVER_2: "blake", ADMIN: "drew", ONCALL: "casey", STRANGER: "sam"}
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
RESOURCE_GROUP = "rg-dev"
WORKSPACE = "mlw-dev"


@dataclass(frozen=True)
class Submitted(RequestRecord):
    """A request just submitted, with its plan read (`Store.plan_of`): tests look into what was planned."""

    plan: dict[str, Any] | None = None



def base_config(connection_string: str, artifact_container: str, **policy: Any) -> dict[str, Any]:
    return {
        "workspaces": {
            "dev": {
                "subscription_id": SUBSCRIPTION,
                "resource_group": RESOURCE_GROUP,
                "workspace_name": WORKSPACE,
                "storage_connection_string": connection_string,
                "artifact_container": artifact_container,
                "exports_container": f"exports-{artifact_container}",
            }
        },
        "policy": {
            "admins": [ADMIN],
            "requesters": {"*": {"users": [REQUESTER, APPROVER_1, APPROVER_2, ONCALL, ADMIN]}},
            "approvers": {"users": [APPROVER_1, APPROVER_2]},
            "oncall": {"users": [ONCALL]},
            **policy,
        },
    }


@dataclass
class Harness:
    bot: Bot
    slack: SlackWebApiStandIn
    sender: SlackSender
    blobs: BlobServiceClient
    container: str
    runner: web.AppRunner
    socket: AsyncSocketModeHandler | None = None  # in Socket Mode, the bot's connection to Slack
    _response_urls: dict[str, str] = field(default_factory=dict)
    # The workspace's control plane when the test brought none: the bot asks it which storage account
    # the workspace is bound to. With the process environment it changed, to restore.
    own_azure: AzureStandIn | None = None
    saved_environment: dict[str, str | None] = field(default_factory=dict)

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.bot.services.store

    async def command(self, text: str, user: str = REQUESTER, channel: str = CHANNEL, **kw: Any) -> tuple[int, str]:
        url = self.slack.response_url_for(channel, user=user)
        return await self.sender.command(text, user, channel, response_url=url, **kw)

    def command_body(self, text: str, user: str = REQUESTER, channel: str = CHANNEL) -> bytes:
        """One delivery of a slash command, as bytes: send it again to play one of Slack's retries."""
        url = self.slack.response_url_for(channel, user=user)
        return slash_command_body(text, user, channel, response_url=url)

    def click_body(self, action_id: str, value: str, user: str, *, card_ts: str = "", channel: str = CHANNEL) -> bytes:
        """One delivery of a button click (any value, any channel), as bytes, to send or resend."""
        url = self.slack.response_url_for(channel, card_ts or None, user=user)
        return block_actions_body(
            action_id, value, user, channel, card_ts, response_url=url, trigger_id=self.slack.issue_trigger(user)
        )

    async def click(self, action_id: str, request_id: str, user: str, **kw: Any) -> tuple[int, str]:
        record = self.request(request_id)
        url = self.slack.response_url_for(CHANNEL, record.card_ts, user=user)
        kw.setdefault("trigger_id", self.slack.issue_trigger(user))
        return await self.sender.click(action_id, request_id, user, CHANNEL, record.card_ts or "", response_url=url, **kw)

    async def open_reject_form(self, request_id: str, user: str) -> dict[str, Any]:
        """Press Reject and wait for the form asking why, as Slack opens it for `user`."""
        before = len(self.slack.modals)
        assert (await self.click(cards.ActionId.REJECT, request_id, user))[0] == 200
        return await self.slack.wait_for(
            lambda: next((m for m in self.slack.modals[before:] if m["user"] == user), None),
            description=f"the reject form of {request_id} for {user}",
        )

    def form_body(self, form: dict[str, Any], user: str, reason: str) -> bytes:
        key = cards.ActionId.REJECT_REASON
        return view_submission_body(form, user, {key: {key: reason}})

    async def send_form(self, form: dict[str, Any], user: str, reason: str) -> int:
        return (await self.sender.send(self.form_body(form, user, reason)))[0]

    async def reject(self, request_id: str, user: str, reason: str = "not needed any more") -> RequestRecord:
        """Reject through the form, as a person does: press Reject, say why, send."""
        form = await self.open_reject_form(request_id, user)
        assert await self.send_form(form, user, reason) == 200
        return await self.wait_state(request_id, State.REJECTED)

    def request(self, request_id: str) -> RequestRecord:
        record = self.store.get(request_id)
        assert record is not None, request_id
        return record

    def direct_messages(self, user: str) -> list[dict[str, Any]]:
        """What the bot sent `user` alone, in their DM with it."""
        return self.slack.messages(self.slack.dm_channel(user))

    def thread_texts(self, request_id: str) -> list[str]:
        return [m.get("text") or "" for m in self.thread(request_id)]

    async def wait_thread(self, request_id: str, containing: str) -> str:
        def found() -> str | None:
            return next((t for t in self.thread_texts(request_id) if containing in t), None)

        return await self.slack.wait_for(found, description=f"a thread post of {request_id} containing {containing!r}")

    async def receipt(self, request_id: str) -> dict[str, Any]:
        """The signed receipt file in the request's thread (a long plan is posted there as a file too)."""
        card_ts = self.request(request_id).card_ts
        files = await self.slack.wait_for(
            lambda: [f for f in self.slack.files if f.thread_ts == card_ts and f.filename.endswith("-receipt.json")],
            description=f"the receipt file of {request_id}",
        )
        return json.loads(files[0].content)

    def events(self, request_id: str | None = None) -> list[str]:
        """Audit events, oldest first."""
        return [entry.event for entry in self.store.audit_entries(request_id)]

    def replies(self, user: str | None = None) -> list[str]:
        """Private answers the bot gave (through response_url), newest last."""
        return [post.body.get("text", "") for post in self.slack.response_posts if user is None or post.user == user]

    async def wait_reply(self, user: str | None = None, containing: str = "") -> str:
        def found() -> str | None:
            return next((r for r in reversed(self.replies(user)) if containing in r), None)

        return await self.slack.wait_for(found, description=f"a private reply containing {containing!r}")

    async def submit(self, text: str, user: str = REQUESTER) -> Submitted:
        before = {r.id for r in self.store.list_requests(limit=1000)}
        status, _ = await self.command(text, user)
        assert status == 200

        def created() -> RequestRecord | None:
            fresh = [r for r in self.store.list_requests(limit=1000) if r.id not in before and r.card_ts]
            return fresh[0] if fresh else None

        # A bot in a fresh process loads the operations on its first preview: on a busy machine that
        # alone can take longer than the stand-in's default 10 s (the wait ends as soon as the card is there).
        record: RequestRecord = await self.slack.wait_for(created, timeout=60, description=f"a request card for {text!r}")
        # The private confirmation is the command's last act: after it, nothing more is in flight.
        await self.wait_reply(user, f"{record.id} is waiting for approval")
        stored = self.request(record.id)
        return Submitted(**{f.name: getattr(stored, f.name) for f in fields(stored)}, plan=self.store.plan_of(record.id))

    async def wait_state(self, request_id: str, *states: State, timeout: float = 20.0) -> RequestRecord:
        return await self.slack.wait_for(
            lambda: (r := self.request(request_id)).state in states and r, timeout=timeout,
            description=f"{request_id} in {states}",
        )

    def card(self, request_id: str) -> dict[str, Any]:
        record = self.request(request_id)
        message = self.slack.message(CHANNEL, record.card_ts or "")
        assert message is not None
        return message

    def thread(self, request_id: str) -> list[dict[str, Any]]:
        return self.slack.thread(CHANNEL, self.request(request_id).card_ts or "")[1:]

    async def seed(self, names: dict[str, bytes], container_name: str | None = None) -> None:
        """Write blobs into the artifact container, or into `container_name`."""
        container = self.blobs.get_container_client(container_name or self.container)
        if not await container.exists():
            await container.create_container()
        await asyncio.gather(*(container.upload_blob(n, data, overwrite=True) for n, data in names.items()))

    async def blob_names(self, prefix: str = "", container_name: str | None = None) -> set[str]:
        container = self.blobs.get_container_client(container_name or self.container)
        return {b.name async for b in container.list_blobs(name_starts_with=prefix)}


async def start_harness(
    tmp_path: Path, connection_string: str, azure: AzureStandIn | None = None, graph: GraphStandIn | None = None,
    mode: Mode = "http", config: dict[str, Any] | None = None, **policy: Any,
) -> Harness:
    """The bot on a free port; with `azure`, its control-plane calls go to that stand-in, and with
    `graph` its Microsoft Graph calls (without, it is set up without Graph). In `socket` mode the bot
    connects to the stand-in as to Slack in Socket Mode, and the harness's deliveries go over it.
    `config` adds top-level config keys; `policy`, keys of its policy."""
    container = f"azureml-{uuid.uuid4().hex[:10]}"
    slack = SlackWebApiStandIn(usergroups={"SAPPROVERS": [APPROVER_1]})
    for user_id, name in PEOPLE.items():  # members of the team, as in Slack: a DM to them opens
        slack.add_user(user_id, name)
    slack.trigger_ttl = None  # Slack's 3 s for opening a form: these tests must not depend on timing
    await slack.start()
    settings = Settings(
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token=APP_TOKEN if mode == "socket" else None,
        slack_api_url=slack.url,
        amlbot_database_url=f"sqlite:///{tmp_path / 'amlbot.db'}",
        amlbot_worker="inline",  # tests reach into the worker (and its doors point at stand-ins)
    )
    raw = base_config(connection_string, container, **policy) | (config or {})
    raw["graph_endpoint"] = graph.url if graph is not None else None
    own_azure, saved = None, {}
    if azure is None:
        # Only the workspace, bound to Azurite's account; the default datastore's container is named
        # in the config, so runs are planned from storage alone.
        own_azure = azure = await start_workspace_standin()
        saved = {"REQUESTS_CA_BUNDLE": os.environ.get("REQUESTS_CA_BUNDLE")}
        os.environ["REQUESTS_CA_BUNDLE"] = azure.ca_bundle
        raw["workspaces"]["dev"]["blobstore_container"] = f"blobstore-{container}"
    raw["workspaces"]["dev"]["arm_endpoint"] = azure.url
    config = parse_config(raw)
    doors = Doors(config.workspaces, credential=FakeCredential(), client_kwargs=TEST_CLIENT_KWARGS,
                  graph_endpoint=config.graph_endpoint)
    bot = assemble(settings, config, AUDIT_KEYRING, doors)
    bot.worker.poll = 0.05
    bot.worker.lease = timedelta(seconds=30)
    runner = web.AppRunner(web_app(bot))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    blobs = BlobServiceClient.from_connection_string(connection_string)
    if mode == "http":
        sender: SlackSender = SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
        socket = None
    else:
        socket = socket_mode_handler(bot, APP_TOKEN, ping_interval=1)  # a dropped link is noticed within a second
        await socket.connect_async()
        await slack.socket.wait_connected()
        sender = SocketModeSender(slack.socket)
    return Harness(bot, slack, sender, blobs, container, runner, socket, own_azure=own_azure, saved_environment=saved)


async def start_workspace_standin() -> AzureStandIn:
    """The control plane of the `dev` workspace alone, its storage account Azurite's."""
    standin = AzureStandIn()
    await standin.start()
    standin.state.add_workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, storage_account_name=AZURITE_ACCOUNT)
    return standin


async def stop_harness(harness: Harness) -> None:
    if harness.socket is not None:
        await harness.socket.close_async()
    await harness.sender.close()
    await harness.runner.cleanup()
    await harness.blobs.close()
    await harness.slack.stop()
    if harness.own_azure is not None:
        await harness.own_azure.stop()
        assert_like_the_real_service(harness.own_azure)
    for name, value in harness.saved_environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

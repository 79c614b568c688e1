"""The stand-ins speak the protocol the real slack_sdk client and Bolt speak."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond, AsyncSay
from slack_sdk.errors import SlackApiError

# The brief named slack_sdk.http_retry.async_handler; the class lives in builtin_async_handlers.
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.standins.slack_api import SlackWebApiStandIn
from sandbox.standins.slack_limits import SlackRateLimits
from sandbox.standins.slack_signing import SlackSender, block_actions_body, sign, slash_command_body

TOKEN = "xoxb-test-token"
SECRET = "test-signing-secret"
CHANNEL = "C0AMLOPS01"


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[SlackWebApiStandIn]:
    standin = SlackWebApiStandIn(
        users={
            "U0ALICE": {
                "name": "alice",
                "real_name": "Alice Example",
                "profile": {"email": "alice@example.com", "display_name": "alice"},
                "tz": "Europe/Berlin",
            }
        },
        usergroups={"S0APPROVERS": ["U0ALICE", "U0BOB"]},
        channels={CHANNEL: {"name": "aml-ops"}},
        invalid_tokens={"xoxb-revoked"},
    )
    async with standin:
        yield standin


@pytest.fixture
def client(slack: SlackWebApiStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.url)


# ---------------------------------------------------------------- Web API via the real client


async def test_auth_test(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    response = await client.auth_test()
    assert response["ok"] is True
    assert response["team_id"] == "T0001"
    assert response["user_id"] == slack.bot_user_id
    assert response["bot_id"] == slack.bot_id
    assert response["is_enterprise_install"] is False
    assert slack.calls_to("auth.test")[0].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_missing_and_invalid_tokens(slack: SlackWebApiStandIn) -> None:
    with pytest.raises(SlackApiError) as missing:
        await AsyncWebClient(base_url=slack.url).auth_test()
    assert missing.value.response["error"] == "not_authed"
    assert missing.value.response.status_code == 200
    with pytest.raises(SlackApiError) as invalid:
        await AsyncWebClient(token="xoxb-revoked", base_url=slack.url).auth_test()
    assert invalid.value.response["error"] == "invalid_auth"


async def test_unknown_method_is_404(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await client.api_call("chat.teleport")
    assert err.value.response.status_code == 404
    assert err.value.response["error"] == "unknown_method"


async def test_post_then_update_message(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Export* pending"}}]
    first = await client.chat_postMessage(channel=CHANNEL, text="pending", blocks=blocks)
    second = await client.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=first["ts"])
    assert first["channel"] == CHANNEL
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["blocks"] == blocks and first["message"]["user"] == slack.bot_user_id
    assert second["message"]["thread_ts"] == first["ts"]

    done = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Export* done"}}]
    updated = await client.chat_update(channel=CHANNEL, ts=first["ts"], text="done", blocks=done)
    assert (updated["ts"], updated["text"]) == (first["ts"], "done")

    messages = slack.messages(CHANNEL)
    assert [m["text"] for m in messages] == ["done", "reply"]
    assert messages[0]["blocks"] == done
    assert [m["text"] for m in slack.thread(CHANNEL, first["ts"])] == ["done", "reply"]
    # Form-encoded bodies (JSON strings for blocks) are decoded like JSON ones.
    await client.api_call("chat.update", data={"channel": CHANNEL, "ts": first["ts"], "blocks": json.dumps(blocks)})
    assert slack.message(CHANNEL, first["ts"])["blocks"] == blocks  # type: ignore[index]
    assert slack.calls_to("chat.update")[-1].args["blocks"] == blocks


async def test_message_errors(client: AsyncWebClient) -> None:
    for call, error in [
        (client.chat_postMessage(channel="#general", text="x"), "channel_not_found"),
        (client.api_call("chat.postMessage", json={"channel": CHANNEL}), "no_text"),
        (client.chat_update(channel=CHANNEL, ts="1.000001", text="x"), "message_not_found"),
        (client.chat_postMessage(channel=CHANNEL, text="x", blocks=[{"type": "divider"}] * 51), "invalid_blocks"),
    ]:
        with pytest.raises(SlackApiError) as err:
            await call
        assert err.value.response["error"] == error


async def test_post_ephemeral_and_permalink(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    response = await client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="only you")
    assert response["message_ts"]
    assert slack.ephemerals(CHANNEL, user="U0ALICE")[0]["text"] == "only you"
    assert slack.messages() == []

    posted = await client.chat_postMessage(channel=CHANNEL, text="hi")
    link = await client.chat_getPermalink(channel=CHANNEL, message_ts=posted["ts"])
    assert link["permalink"].endswith(f"/archives/{CHANNEL}/p{posted['ts'].replace('.', '')}")


async def test_conversations_open_gives_one_dm_per_person_and_needs_im_write(
    slack: SlackWebApiStandIn, client: AsyncWebClient
) -> None:
    opened = await client.conversations_open(users="U0ALICE")
    dm = opened["channel"]["id"]
    assert dm.startswith("D") and dm == slack.dm_channel("U0ALICE")
    assert (await client.conversations_open(users="U0ALICE"))["channel"]["id"] == dm  # the same DM again
    await client.chat_postMessage(channel=dm, text="just for you")
    assert [m["text"] for m in slack.messages(dm)] == ["just for you"]
    for users, error in (("U0NOBODY", "user_not_found"), (",".join(f"U0P{i}" for i in range(9)), "too_many_users")):
        with pytest.raises(SlackApiError) as err:
            await client.conversations_open(users=users)
        assert err.value.response["error"] == error
    slack.add_user("U0GONE", "gone", deleted=True)
    with pytest.raises(SlackApiError) as err:
        await client.conversations_open(users="U0GONE")
    assert err.value.response["error"] == "user_disabled"
    with pytest.raises(SlackApiError) as err:  # slack_sdk refuses to send this one itself
        await client.api_call("conversations.open", params={})
    assert err.value.response["error"] == "users_list_not_supplied"
    slack.scopes.remove("im:write")
    with pytest.raises(SlackApiError) as err:
        await client.conversations_open(users="U0ALICE")
    assert err.value.response["error"] == "missing_scope" and err.value.response["needed"] == "im:write"


async def test_users_and_groups(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    alice = await client.users_info(user="U0ALICE")
    assert alice["user"]["profile"]["email"] == "alice@example.com"
    assert alice["user"]["real_name"] == "Alice Example"
    assert alice["user"]["tz"] == "Europe/Berlin" and alice["user"]["deleted"] is False
    with pytest.raises(SlackApiError) as err:
        await client.users_info(user="U0NOBODY")
    assert err.value.response["error"] == "user_not_found"

    by_email = await client.users_lookupByEmail(email="Alice@Example.com")
    assert by_email["user"]["id"] == "U0ALICE"
    group = await client.usergroups_users_list(usergroup="S0APPROVERS")
    assert group["users"] == ["U0ALICE", "U0BOB"]
    with pytest.raises(SlackApiError) as err:
        await client.usergroups_users_list(usergroup="S0NOPE")
    assert err.value.response["error"] == "no_such_subteam"

    info = await client.conversations_info(channel=CHANNEL)
    assert info["channel"]["name"] == "aml-ops" and info["channel"]["is_private"] is False


async def test_users_list_pages_with_next_cursor(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    for n in range(5):
        slack.add_user(f"U0P{n}", f"person{n}")
    slack.users_page_max = 2  # Slack may answer fewer members than asked for
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await client.users_list(limit=200, cursor=cursor)
        seen += [m["id"] for m in page["members"]]
        pages += 1
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(slack.users) and len(seen) == len(set(seen)) and pages == 4
    with pytest.raises(SlackApiError) as err:
        await client.users_list(cursor="not-a-cursor")
    assert err.value.response["error"] == "invalid_cursor"


async def test_views_publish(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    response = await client.views_publish(user_id="U0ALICE", view=view)
    assert response["view"]["type"] == "home"
    assert slack.home_views["U0ALICE"] == view


async def test_rate_limited_call_retried_after_retry_after(slack: SlackWebApiStandIn) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    started = time.monotonic()
    response = await client.chat_postMessage(channel=CHANNEL, text="eventually")
    assert response["ok"] is True
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert len(slack.messages(CHANNEL)) == 1


async def test_rate_limited_call_without_handler_raises(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    slack.rate_limit("chat.update", times=1, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel=CHANNEL, ts="1.000001", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"


async def test_slack_rate_limits_per_channel_for_posts_and_per_workspace_for_tiers(
    slack: SlackWebApiStandIn, client: AsyncWebClient
) -> None:
    moment = [0.0]
    slack.rate_limits = SlackRateLimits(scale=0.5, clock=lambda: moment[0])
    # chat.postMessage: a burst of 3, then one a second per channel (here half a second: scale 0.5).
    for n in range(3):
        await client.chat_postMessage(channel=CHANNEL, text=f"burst {n}")
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel=CHANNEL, text="too soon")
    assert err.value.response.status_code == 429 and err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] == "1"  # whole seconds, rounded up, as Slack
    await client.chat_postMessage(channel="C0OTHER001", text="another channel has its own allowance")
    moment[0] = 0.5
    await client.chat_postMessage(channel=CHANNEL, text="after the wait")
    assert [m["text"] for m in slack.messages(CHANNEL)] == ["burst 0", "burst 1", "burst 2", "after the wait"]
    # chat.update is Tier 3: 50 a minute for the whole workspace, whatever the channel.
    ts = slack.messages(CHANNEL)[0]["ts"]
    for n in range(50):
        await client.chat_update(channel=CHANNEL, ts=ts, text=f"edit {n}")
    with pytest.raises(SlackApiError):
        await client.chat_update(channel=CHANNEL, ts=ts, text="edit 50")
    assert slack.message(CHANNEL, ts)["text"] == "edit 49"  # type: ignore[index]
    assert [c.method for c in slack.throttled] == ["chat.postMessage", "chat.update"]
    moment[0] += 60 * 0.5 / 50  # a fiftieth of a (scaled) minute: one more edit
    await client.chat_update(channel=CHANNEL, ts=ts, text="edit 50")


async def test_fail_and_reset(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    slack.fail("users.info", error="fatal_error", status=500)
    with pytest.raises(SlackApiError) as err:
        await client.users_info(user="U0ALICE")
    assert (err.value.response.status_code, err.value.response["error"]) == (500, "fatal_error")
    assert (await client.users_info(user="U0ALICE"))["ok"] is True
    slack.fail("auth.test", times=2)
    slack.reset()
    assert slack.calls == [] and (await client.auth_test())["ok"] is True
    assert (await client.users_info(user="U0ALICE"))["ok"] is True  # the directory survives reset()


async def test_files_upload_v2_end_to_end(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="export done")
    content = b"receipt line 1\nreceipt line 2\n" * 100
    response = await client.files_upload_v2(
        content=content,
        filename="receipt.csv",
        title="Receipt",
        channel=CHANNEL,
        thread_ts=parent["ts"],
        initial_comment="Your receipt",
    )
    assert response["file"]["title"] == "Receipt"
    [stored] = slack.files
    assert (stored.content, stored.filename, stored.title) == (content, "receipt.csv", "Receipt")
    assert (stored.channel, stored.thread_ts, stored.initial_comment) == (CHANNEL, parent["ts"], "Your receipt")
    assert slack.calls_to("files.getUploadURLExternal")[0].args["length"] == str(len(content))
    # The share shows up as a thread reply carrying the file.
    reply = slack.thread(CHANNEL, parent["ts"])[-1]
    assert reply["text"] == "Your receipt" and reply["files"][0]["id"] == stored.id


async def test_complete_without_upload_fails(client: AsyncWebClient) -> None:
    url = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    with pytest.raises(SlackApiError) as err:
        await client.files_completeUploadExternal(files=[{"id": url["file_id"], "title": "a"}], channel_id=CHANNEL)
    assert err.value.response["error"] == "file_not_found"


async def test_response_url_records_and_applies(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=CHANNEL, text="Approve?")
    url = slack.response_url_for(CHANNEL, posted["ts"], user="U0ALICE")
    async with aiohttp.ClientSession() as session:
        for body in ({"text": "just for you"}, {"replace_original": True, "text": "Approved"}):
            async with session.post(url, json=body) as response:
                assert response.status == 200
    assert slack.responses == [{"text": "just for you"}, {"replace_original": True, "text": "Approved"}]
    assert slack.ephemerals(CHANNEL, user="U0ALICE")[0]["text"] == "just for you"
    assert slack.message(CHANNEL, posted["ts"])["text"] == "Approved"  # type: ignore[index]


async def test_wait_for(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    async def post_later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel=CHANNEL, text="later")

    task = asyncio.create_task(post_later())
    found = await slack.wait_for(lambda: slack.messages(CHANNEL)[0]["text"] == "later", timeout=2)
    assert found is True
    await task
    with pytest.raises(AssertionError, match="condition not met within 0.05s"):
        await slack.wait_for(lambda: slack.messages("C0OTHER"), timeout=0.05)


# ---------------------------------------------------------------- signing


def test_sign_is_accepted_by_slack_sdk_verifier() -> None:
    body = slash_command_body("export ws-1", "U0ALICE", CHANNEL)
    now = int(time.time())
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, now, sign(SECRET, body, now))
    assert sign(SECRET, body, now) == verifier.generate_signature(timestamp=str(now), body=body)
    assert not verifier.is_valid(body, now, sign("other-secret", body, now))
    assert not verifier.is_valid(body, now - 301, sign(SECRET, body, now - 301))


def test_bodies_have_slack_fields() -> None:
    command = {k: v[0] for k, v in parse_qs(slash_command_body("help", "U0ALICE", CHANNEL).decode()).items()}
    assert set(command) >= {
        "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
        "command", "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id",
    }  # fmt: skip
    assert (command["command"], command["text"], command["team_id"]) == ("/aml", "help", "T0001")
    other = parse_qs(slash_command_body("help", "U0ALICE", CHANNEL).decode())
    assert other["trigger_id"][0] != command["trigger_id"]

    form = parse_qs(block_actions_body("approve", "req-1", "U0ALICE", CHANNEL, "1732540000.000100").decode())
    payload = json.loads(form["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["container"] == {
        "type": "message", "message_ts": "1732540000.000100", "channel_id": CHANNEL, "is_ephemeral": False,
    }  # fmt: skip
    assert payload["actions"][0]["action_id"] == "approve" and payload["actions"][0]["value"] == "req-1"
    assert payload["message"]["ts"] == "1732540000.000100"


# ---------------------------------------------------------------- both together, through real Bolt


@pytest_asyncio.fixture
async def bolt_app(slack: SlackWebApiStandIn) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    app = AsyncApp(signing_secret=SECRET, client=AsyncWebClient(token=TOKEN, base_url=slack.url))
    seen: list[dict[str, Any]] = []

    @app.command("/aml")
    async def on_command(ack: AsyncAck, body: dict[str, Any], say: AsyncSay, respond: AsyncRespond) -> None:
        await ack()
        seen.append(body)
        await say(f"working on {body['text']}")
        await respond("only you can see this")

    @app.action("approve")
    async def on_approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        seen.append(body)
        await respond(replace_original=True, text=f"approved {body['actions'][0]['value']}")

    runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/slack/events", seen
    await runner.cleanup()


async def test_bolt_app_end_to_end(slack: SlackWebApiStandIn, bolt_app: tuple[str, list[dict[str, Any]]]) -> None:
    events_url, seen = bolt_app
    async with SlackSender(events_url, SECRET) as sender:
        reply_url = slack.response_url_for(CHANNEL, user="U0ALICE")
        status, _ = await sender.command("export ws-1", "U0ALICE", CHANNEL, response_url=reply_url)
        assert status == 200
        await slack.wait_for(lambda: slack.messages(CHANNEL) and slack.responses)
        assert slack.messages(CHANNEL)[0]["text"] == "working on export ws-1"
        assert slack.responses[0]["text"] == "only you can see this"
        assert seen[0]["user_id"] == "U0ALICE"
        assert slack.calls_to("auth.test")  # Bolt checks the token on its first request

        card = slack.messages(CHANNEL)[0]
        url = slack.response_url_for(CHANNEL, card["ts"])
        status, _ = await sender.click(
            "approve", "req-7", "U0ALICE", CHANNEL, card["ts"], response_url=url, message=card
        )
        assert status == 200
        await slack.wait_for(
            lambda: slack.message(CHANNEL, card["ts"])["text"] == "approved req-7"  # type: ignore[index]
        )

        forged = slash_command_body("delete ws-1", "U0MALLORY", CHANNEL)
        status, _ = await sender.send(forged, signature="v0=" + "0" * 64)
        assert status == 401
        stale = int(time.time()) - 600
        status, _ = await sender.send(forged, timestamp=stale)
        assert status == 401
        assert len(seen) == 2


async def test_views_open_takes_a_trigger_once_within_three_seconds(slack: SlackWebApiStandIn, client: AsyncWebClient) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Why?"}, "blocks": []}
    trigger = slack.issue_trigger("U0ALICE")
    opened = await client.views_open(trigger_id=trigger, view=view)
    assert opened["view"]["id"].startswith("V") and opened["view"]["state"] == {"values": {}}
    assert slack.modals[-1]["user"] == "U0ALICE"
    for bad, error in (
        (trigger, "exchanged_trigger_id"),  # used once already
        ("12345.67890.abc", "invalid_trigger_id"),  # never issued
        (slack.issue_trigger("U0ALICE", issued_at=time.time() - 3.5), "expired_trigger_id"),
    ):
        with pytest.raises(SlackApiError) as err:
            await client.views_open(trigger_id=bad, view=view)
        assert err.value.response["error"] == error
    with pytest.raises(SlackApiError) as err:
        await client.views_open(trigger_id=slack.issue_trigger("U0ALICE"), view={**view, "title": {"type": "plain_text", "text": "x" * 25}})
    assert err.value.response["error"] == "invalid_arguments"

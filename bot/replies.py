"""Private answers to a command or a click.

A delivery's `response_url` takes 5 posts within 30 minutes of it (SLACK-FACTS.md). An answer that
comes later (a refusal after a long preview), or that Slack refuses, goes to the person with chat.postEphemeral
in the same channel: never to a URL Slack has expired.
"""

from __future__ import annotations

import logging
from time import monotonic

from slack_bolt.async_app import AsyncRespond
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.publisher import SLACK_TROUBLE, Publisher, Where, slack_error
from bot.slack_http import shared_session

log = logging.getLogger(__name__)

RESPONSE_URL_LIFETIME = 30 * 60  # seconds Slack takes posts to a response_url for
MARGIN = 60  # seconds short of that: a post must arrive before the URL expires, not just leave


def received() -> float:
    """The moment a delivery came in: what `answer` measures the response_url's age from."""
    return monotonic()


async def answer(
    publisher: Publisher, respond: AsyncRespond, where: Where, text: str, since: float, *, replace_original: bool | None = None
) -> None:
    """`text` to `where.user` alone, `since` the delivery was `received()`."""
    url = respond.response_url
    if not isinstance(url, str):  # the delivery named no response_url (or not as text)
        log.warning("no response_url to answer through")
    elif monotonic() - since < RESPONSE_URL_LIFETIME - MARGIN:
        # Not `respond(...)`: Bolt's opens a connection per answer; this one rides the Web API's session.
        client = publisher.client
        hook = AsyncWebhookClient(url, timeout=client.timeout, ssl=client.ssl, proxy=client.proxy, session=shared_session(client))
        try:
            posted = await hook.send(text=text, response_type="ephemeral", replace_original=replace_original)
            if posted.status_code == 200:
                return
            log.warning("response_url refused the answer", extra={"status": posted.status_code, "body": posted.body})
        except SLACK_TROUBLE as error:
            log.warning("response_url unreachable", extra={"error": slack_error(error)})
    await publisher.answer_privately(where, text)

"""One keep-alive HTTP session per event loop for everything this process sends to Slack: Web API
calls and response_url answers.

slack_sdk's clients, given no session, open a new aiohttp session (a new connection, and a TLS
handshake with slack.com) for every call and close it after: each reply of a burst paid a connection.
"""

from __future__ import annotations

import asyncio
import weakref

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

_LOOPS: weakref.WeakKeyDictionary[aiohttp.ClientSession, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()


def shared_session(client: AsyncWebClient) -> aiohttp.ClientSession:
    """`client`'s session, opened on first use in the running loop (a session belongs to one loop), with
    the timeout and proxy-environment rule the client would give a session of its own."""
    loop = asyncio.get_running_loop()
    session = client.session
    if session is None or session.closed or _LOOPS.get(session) is not loop:
        session = client.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=client.timeout), trust_env=client.trust_env_in_session
        )
        _LOOPS[session] = loop
    return session


async def close_session(client: AsyncWebClient) -> None:
    """Close `client`'s session at shutdown (a later call would open another)."""
    if client.session is not None and not client.session.closed:
        await client.session.close()

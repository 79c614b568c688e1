"""The Azure ML client is built off the event loop: its first build imports azure.ai.ml (seconds),
which on the loop would hold every Slack ack behind it."""

from __future__ import annotations

import threading
from typing import Any

from commands.azure.config import WorkspaceConfig
from commands.azure.control import WorkspaceControl
from sandbox.standins.azure.client import TEST_CLIENT_KWARGS, FakeCredential


async def test_an_operation_gets_the_ml_client_from_a_thread_not_the_loop() -> None:
    control = WorkspaceControl(
        WorkspaceConfig(subscription_id="sub", resource_group="rg", workspace_name="ws", arm_endpoint="https://127.0.0.1:1"),
        FakeCredential(),
        TEST_CLIENT_KWARGS,
    )
    built_on: list[threading.Thread] = []
    build = control.ml

    def recorded() -> Any:
        built_on.append(threading.current_thread())
        return build()

    control.ml = recorded  # type: ignore[method-assign]
    client = await control.client()
    assert built_on and built_on[0] is not threading.main_thread()
    assert client is await control.client()  # built once, then the same client

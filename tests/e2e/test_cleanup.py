"""On-call cleanups end to end: stale export archives go, fresh ones and other blobs stay."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from azure.storage.blob.aio import ContainerClient

from bot import cards
from bot.lifecycle import State
from commands.operations import cleanup_exports
from tests.e2e.harness import ONCALL, Harness


class _TwoHoursLater(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
        return datetime.now(tz) + timedelta(hours=2)


async def _exports(harness: Harness) -> ContainerClient:
    container = harness.blobs.get_container_client(harness.bot.services.config.workspaces["dev"].exports_container)
    if not await container.exists():
        await container.create_container()
    return container


async def test_oncall_cleans_up_old_exports_with_self_approval(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    container = await _exports(harness)
    for name in ("exports/R-OLD00001/R-OLD00001.zip", "exports/R-OLD00002/R-OLD00002.zip"):
        await container.upload_blob(name, b"zip", overwrite=True)
    await container.upload_blob("keep/not-an-export.txt", b"x", overwrite=True)
    # Azurite stamps blobs with the present; move the plan's clock instead of the blobs.
    monkeypatch.setattr(cleanup_exports, "datetime", _TwoHoursLater)

    request = await harness.submit("cleanup exports --older-than 1h", user=ONCALL)
    assert len(request.plan["items"]) == 2
    await harness.click(cards.ActionId.APPROVE, request.id, ONCALL)  # on-call, 2 items <= cap of 5
    await harness.wait_state(request.id, State.SUCCEEDED)
    assert {b.name async for b in container.list_blobs()} == {"keep/not-an-export.txt"}


async def test_nothing_stale_is_a_clear_private_answer(harness: Harness) -> None:
    container = await _exports(harness)
    await container.upload_blob("exports/R-NEW00001/R-NEW00001.zip", b"zip", overwrite=True)
    await harness.command("cleanup exports --older-than 1h", user=ONCALL)
    reply = await harness.wait_reply(ONCALL, "No exports older than")
    assert "`1h`" in reply
    assert harness.store.list_requests() == []

"""`/aml freeze|unfreeze` (admins) and `/aml revoke` (an export's requester or an approver)."""

from __future__ import annotations

import asyncio
import logging

from bot import cards, policy, wording
from bot.lifecycle import FINAL, State
from bot.publisher import Where
from bot.requests.desk import Desk
from commands.azure import sdk
from commands.azure.door import Status
from commands.operations.base import OperationError

log = logging.getLogger(__name__)

OPEN = frozenset(State) - FINAL  # requests whose card can still change


class Admin:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def freeze(self, frozen: bool, where: Where) -> str:
        desk = self.desk
        actor = await desk.actor(where)
        word = "freeze" if frozen else "unfreeze"
        if not policy.is_admin(desk.config.policy, actor):
            return await desk.refuse(where, f"{word}.refused", f"Only admins may {word} amlbot.")
        changed = await asyncio.to_thread(desk.store.set_frozen, frozen, where.user)
        if not changed:
            return f"amlbot was already {'frozen' if frozen else 'running'}."
        # Every open card says whether jobs may start: each one is re-rendered.
        for record in await asyncio.to_thread(desk.store.list_requests, states=OPEN, limit=None):
            await desk.publisher.refresh_card(record)
        if not frozen:
            desk.wake_worker.set()
        return ":ice_cube: Frozen: no new job will start." if frozen else ":arrow_forward: Unfrozen: jobs start again."

    async def revoke(self, request_id: str, where: Where) -> str:
        """Delete an export's archive, which kills its link; audited. Storage first, then the
        store, then Slack: the thread never says a link is dead while it still works."""
        desk = self.desk
        record = await desk.visible(request_id, where, "revoke.refused")
        if isinstance(record, str):
            return record
        actor = await desk.actor(where)
        allowed = policy.may_cancel(desk.config.policy, actor, requester=record.requester, workspace=record.workspace, verb="revoke")
        if not allowed.allowed:
            return await desk.refuse(where, "revoke.refused", allowed.reason, request_id=record.id)
        archive = ((record.result or {}).get("extras") or {}).get("archive")
        if not isinstance(archive, str):
            return await desk.refuse(where, "revoke.refused", f"{record.id} made no export archive: there is nothing to revoke.",
                                     request_id=record.id)
        from commands.operations.cleanup_exports import delete_archive  # the storage SDKs: loaded on first use, not at start

        try:
            outcome = await delete_archive(desk.contexts.for_request(record.workspace, record.id), record.id, archive)
            reason = outcome.reason if outcome.status is Status.FAILED else None
        except (sdk.AzureError, OperationError) as error:
            log.exception("revoke failed", extra={"request_id": record.id})
            reason = wording.failure_reason(error)
        if reason is not None:
            log.warning("revoke failed", extra={"request_id": record.id, "reason": reason})
            return cards.error_text(wording.failed(record.id, reason, f"Revoking {record.id}"))
        revoked = await asyncio.to_thread(
            desk.store.revoke_export, record.id, where.user, {"archive": archive, "outcome": outcome.status.value}
        )
        await desk.publisher.refresh_card(revoked)  # and the Home tabs showing its link
        await desk.publisher.tell(record, f"<@{where.user}> revoked the export of {record.id}: its archive is deleted, "
                                  "and its download link no longer works.")
        return f"The archive of {record.id} is deleted: its download link no longer works."

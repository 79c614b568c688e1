"""Plain words for people in Slack: where a request stands, why something failed.

Pure. Never the state machine's vocabulary, an exception's text, SQL or an Azure error body:
those go to the log, under the request id that the words here always name.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from bot.cards import when
from bot.lifecycle import State
from bot.store.store import RequestRecord
from commands.azure import sdk
from commands.operations.base import OperationError

FINISHED = frozenset({State.SUCCEEDED, State.PARTIALLY_SUCCEEDED, State.FAILED})
MAX_REASON = 300  # characters of one of our own messages (an OperationError) quoted back


def _at(moment: datetime) -> str:
    return when(moment)  # Slack's date formatting: each reader's own time zone


def expired(record: RequestRecord) -> str:
    return (
        f"{record.id} expired at {_at(record.expires_at)} before it had enough approvals, so nothing will run. "
        "Ask again if it is still needed."
    )


def already(record: RequestRecord) -> str:
    """Why a click or command about a request that has moved on changes nothing."""
    rid = record.id
    by = f" by <@{record.decided_by}>" if record.decided_by else ""
    match record.state:
        case State.PENDING:
            return f"{rid} is still waiting for approval."
        case State.APPROVED | State.QUEUED:
            return f"{rid} was already approved{by}."
        case State.RUNNING:
            return f"{rid} was already approved{by} and is running now."
        case State.REJECTED | State.CANCELLED:
            return f"{rid} was already {record.state.value}{by}."
        case State.EXPIRED:
            return expired(record)
    return f"{rid} has already run: it was approved{by} and has finished."


def failure_reason(error: BaseException) -> str:
    """A short reason for an error, fit for Slack; the full error belongs in the log."""
    if isinstance(error, OperationError):
        text = " ".join(str(error).split())
        return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"
    if isinstance(error, sdk.HttpResponseError) and error.status_code:
        # Azure's own code word (storage's enums print as their Python names): never its body.
        # Storage errors carry it as `error_code`, the management SDKs' in their parsed `error`.
        given = getattr(error, "error_code", None) or getattr(error.error, "code", None)
        code = sdk.response_header(error, "x-ms-error-code") or getattr(given, "value", given)
        return f"Azure refused a call (HTTP {error.status_code}{f', {code}' if code else ''})"
    if isinstance(error, sdk.AzureError):
        return "Azure could not be reached"
    if isinstance(error, SQLAlchemyError):
        return "amlbot's database failed"
    return f"an unexpected error ({type(error).__name__})"


def partly_done(request_id: str, reason: str) -> str:
    """A job that did part of its work before it failed: its receipt lists what was done."""
    return f"{request_id} is partly done: {reason}. The details are in amlbot's log under {request_id}."


def failed(request_id: str, reason: str, what: str | None = None) -> str:
    """What a person reads about a failure (of the request, or of `what` done to it): the
    reason, the request, where the details are."""
    return f"{what or request_id} failed: {reason}. The details are in amlbot's log under {request_id}."


def sent_privately(record: RequestRecord) -> str:
    return (
        f":lock: {record.id} is ready: its download link was sent privately to <@{record.requester}> "
        "(also on amlbot's Home tab). `/aml revoke " + record.id + "` deletes the archive."
    )

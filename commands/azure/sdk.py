"""The Azure SDK's names that code outside `commands.azure` needs: error types to catch (used as
`sdk.AzureError`, they load azure-core on first use), and two azure-ai-ml constants. Everything else
reaches Azure through the doors in this package, so this is the only place the SDK leaks through
(the import-linter contract in pyproject holds the rest back).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

_ERRORS = frozenset({"AzureError", "ClientAuthenticationError", "HttpResponseError", "ResourceNotFoundError", "ServiceRequestError"})

__all__ = [
    "AzureError",
    "ClientAuthenticationError",
    "HttpResponseError",
    "ResourceNotFoundError",
    "ServiceRequestError",
    "every_view",
    "response_header",
    "subscription_scope",
]


def __getattr__(name: str) -> Any:
    # The error types load azure-core when first asked for: `except sdk.AzureError` evaluates it
    # only once an exception reaches that clause, so serve's start does not import azure-core.
    if name in _ERRORS:
        from azure.core import exceptions

        return getattr(exceptions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def response_header(error: BaseException, name: str) -> str | None:
    """A header of the answer that made an Azure call fail (`x-ms-request-id`, `x-ms-error-code`).
    azure-core types `response` as a base that declares no headers; every transport's has them."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    return headers.get(name) if headers is not None else None


# azure.ai.ml takes seconds to import: these import it on first use, as the control door does.
def every_view() -> Any:
    """`list_view_type` for archived and active items alike."""
    from azure.ai.ml.constants import ListViewType

    return ListViewType.ALL


def subscription_scope() -> Any:
    """`scope` for every workspace of the subscription."""
    from azure.ai.ml.constants import Scope

    return Scope.SUBSCRIPTION

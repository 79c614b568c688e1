"""Microsoft Graph's directory of people, read through azure-core's pipeline (no Graph SDK).

Three reads, all under the application permission `User.Read.All`: a user by object id or UPN
(`GET /v1.0/users/{id|upn}`), users whose mail or other mails are an address
(`GET /v1.0/users?$filter=mail eq '…' or otherMails/any(…)`), and users of a display name
(`$filter=displayName eq '…'`). The client is synchronous, like the
control plane's, and every call runs in a worker thread.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from commands.azure.retry import MGMT_RETRY

PUBLIC_GRAPH = "https://graph.microsoft.com"
SELECT = "id,userPrincipalName,mail,displayName,otherMails,proxyAddresses,userType"
PERMISSION = "User.Read.All"


@dataclass(frozen=True)
class DirectoryUser:
    """A user as Graph returns them: `id` is the Entra object id; guests' UPNs read `…#EXT#@<tenant>`."""

    object_id: str
    upn: str
    mail: str | None
    display_name: str | None
    other_mails: tuple[str, ...] = ()
    proxy_addresses: tuple[str, ...] = ()  # "SMTP:primary@…", "smtp:alias@…"

    @classmethod
    def of(cls, body: dict[str, Any]) -> DirectoryUser:
        return cls(
            object_id=str(body["id"]).lower(),
            upn=str(body.get("userPrincipalName") or ""),
            mail=body.get("mail"),
            display_name=body.get("displayName"),
            other_mails=tuple(body.get("otherMails") or ()),
            proxy_addresses=tuple(body.get("proxyAddresses") or ()),
        )

    @property
    def addresses(self) -> frozenset[str]:
        """Every address mail reaches them at, lowercased."""
        smtp = (a.split(":", 1)[1] for a in self.proxy_addresses if a.lower().startswith("smtp:"))
        return frozenset(a.lower() for a in (self.mail, *self.other_mails, *smtp) if a)


class DirectoryError(Exception):
    """Graph could not answer; the message says why, for the person who asked and for the plan."""

    def __init__(self, message: str, *, denied: bool = False) -> None:
        super().__init__(message)
        self.denied = denied  # the identity lacks the permission (403)


def _quote_literal(value: str) -> str:
    """An OData string literal: a single quote is doubled."""
    return "'" + value.replace("'", "''") + "'"


def _error(error: Exception) -> DirectoryError:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    if isinstance(error, ClientAuthenticationError) and getattr(error, "status_code", None) is None:
        return DirectoryError(f"amlbot cannot sign in to Microsoft Graph: {str(error).splitlines()[0][:200]}")
    if isinstance(error, HttpResponseError):
        code, message = _graph_error(error)
        if error.status_code == 403:
            return DirectoryError(
                f"amlbot's identity lacks the Microsoft Graph application permission {PERMISSION} ({code}: {message})",
                denied=True,
            )
        return DirectoryError(f"Microsoft Graph answered {error.status_code} {code}: {message}")
    if isinstance(error, ServiceRequestError):
        return DirectoryError(f"Microsoft Graph cannot be reached: {str(error).splitlines()[0][:200]}")
    raise error


def _graph_error(error: Any) -> tuple[str, str]:
    """Graph's error body: `{"error": {"code", "message", "innerError": {…}}}`."""
    try:
        body = json.loads(error.response.text())["error"]
        return str(body.get("code") or ""), str(body.get("message") or "")
    except (AttributeError, KeyError, TypeError, ValueError):
        return f"HTTP {error.status_code}", str(error.message or "")


class Directory:
    """Graph at `endpoint` (the public cloud's, a national cloud's, or a test stand-in's)."""

    def __init__(self, endpoint: str, credential: Any | None = None, client_kwargs: dict[str, Any] | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._credential = credential
        self._kwargs = {**MGMT_RETRY, **(client_kwargs or {})}
        self._lock = threading.Lock()
        self._client: Any = None

    def _pipeline(self) -> Any:
        with self._lock:
            if self._client is None:
                from azure.core import PipelineClient
                from azure.core.pipeline.policies import (
                    BearerTokenCredentialPolicy,
                    HeadersPolicy,
                    RetryPolicy,
                    UserAgentPolicy,
                )

                from commands.azure.control import default_credential

                self._credential = self._credential or default_credential()
                policies = [
                    HeadersPolicy({"Accept": "application/json"}),
                    UserAgentPolicy(sdk_moniker="amlbot"),
                    RetryPolicy(**self._kwargs),
                    BearerTokenCredentialPolicy(self._credential, f"{self.endpoint}/.default"),
                    *self._kwargs.get("per_retry_policies", []),
                ]
                self._client = PipelineClient(self.endpoint, policies=policies)
            return self._client

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any] | None:
        """One GET; None on 404."""
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        try:
            response = self._pipeline().send_request(HttpRequest("GET", f"{self.endpoint}/v1.0/{path}", params=params))
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return dict(response.json())
        except AzureError as error:
            raise _error(error) from None

    def user(self, key: str) -> DirectoryUser | None:
        """The user with this object id or UPN (a guest's `#` is sent as `%23`), or None."""
        body = self._get(f"users/{quote(key, safe='@')}", {"$select": SELECT})
        return DirectoryUser.of(body) if body else None

    def with_address(self, address: str) -> list[DirectoryUser]:
        """Users whose mail, or one of whose other mails, is this address."""
        literal = _quote_literal(address)
        body = self._get("users", {"$filter": f"mail eq {literal} or otherMails/any(m:m eq {literal})", "$select": SELECT})
        return [DirectoryUser.of(user) for user in (body or {}).get("value", [])]

    def named(self, display_name: str) -> list[DirectoryUser]:
        """Users with this display name (a few are enough to tell it is shared)."""
        body = self._get("users", {"$filter": f"displayName eq {_quote_literal(display_name)}", "$select": SELECT, "$top": "10"})
        return [DirectoryUser.of(user) for user in (body or {}).get("value", [])]

    def probe(self) -> str:
        """One harmless read that needs the permission: the first user of the directory."""
        body = self._get("users", {"$top": "1", "$select": "id"})
        return "readable" if body is not None else "not found"

    def find(self, *, object_id: str | None = None, address: str | None = None) -> list[DirectoryUser]:
        """Who an object id or an address (a UPN, or a mail) is: none, one, or several people."""
        if object_id:
            found = self.user(object_id)
            return [found] if found else []
        assert address
        if found := self.user(address):  # a UPN
            return [found]
        return self.with_address(address)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

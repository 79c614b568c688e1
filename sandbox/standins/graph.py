"""A local stand-in of Microsoft Graph's users API (v1.0), for amlbot's `commands.azure.graph`.

Served over HTTPS with the Azure stand-in's CA, because azure-core sends bearer tokens only over
HTTPS. What it serves, as Graph documents it:
- `GET /v1.0/users/{id | userPrincipalName}`: one user (`#` of a guest's `…#EXT#@…` UPN must arrive
  encoded as `%23`, or it is a URL fragment and the path names someone else); 404
  `Request_ResourceNotFound` when nobody matches.
- `GET /v1.0/users?$filter=…`: `eq` on `id`, `userPrincipalName`, `mail`, `displayName`, and
  `otherMails/any(x:x eq '…')` / `proxyAddresses/any(x:x eq '…')`, joined by `or`; string literals
  with `''` for a quote; comparisons are case-insensitive. Anything else is 400
  `Request_UnsupportedQuery`. `$top`, `$select` (unknown properties are 400 `BadRequest`).
- Every request needs `Authorization: Bearer <token>` whose audience is this endpoint's
  `/.default` scope (401 `InvalidAuthenticationToken` otherwise); `deny = True` makes every read a
  403 `Authorization_RequestDenied`, as for an identity without `User.Read.All`.
Errors are `{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

from aiohttp import web

from sandbox.standins.azure.threaded import ThreadedServer

Json = dict[str, Any]
TENANT_DOMAIN = "contoso.onmicrosoft.com"
PROPERTIES = ("id", "userPrincipalName", "mail", "displayName", "otherMails", "proxyAddresses", "userType",
              "businessPhones", "givenName", "surname", "jobTitle", "mobilePhone", "officeLocation", "preferredLanguage")
# What a GET returns without $select (Graph's default set).
DEFAULT_SELECT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                  "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
_LITERAL = r"'((?:[^']|'')*)'"
_EQ = re.compile(rf"(id|userPrincipalName|mail|displayName) eq {_LITERAL}", re.IGNORECASE)
_ANY = re.compile(rf"(otherMails|proxyAddresses)/any\((\w+):\2 eq {_LITERAL}\)", re.IGNORECASE)


@dataclass(frozen=True)
class GraphCall:
    method: str
    path: str  # decoded, as the server saw it
    query: dict[str, str]


class GraphExchange(NamedTuple):
    """One request and its answer, for the contract check (`tests/contract/shapes/graph/`)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]
    body: bytes | None


class GraphStandIn(ThreadedServer):
    def __init__(self) -> None:
        super().__init__(tls=True, name="graph-standin")
        self.users: list[Json] = []
        self.calls: list[GraphCall] = []
        self.exchanges: list[GraphExchange] = []
        self.deny = False  # the identity lacks User.Read.All
        self.lock = threading.Lock()

    async def __aenter__(self) -> GraphStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- seeding ---------------------------------------------------------------------------
    def add_user(
        self,
        display_name: str,
        upn: str,
        *,
        object_id: str | None = None,
        mail: str | None = None,
        other_mails: tuple[str, ...] = (),
        proxy_addresses: tuple[str, ...] | None = None,
        user_type: str = "Member",
    ) -> Json:
        given, _, surname = display_name.partition(" ")
        user = {
            "id": object_id or str(uuid.uuid4()),
            "userPrincipalName": upn,
            "mail": mail,
            "displayName": display_name,
            "otherMails": list(other_mails),
            "proxyAddresses": list(proxy_addresses if proxy_addresses is not None else ([f"SMTP:{mail}"] if mail else [])),
            "userType": user_type,
            "businessPhones": [],
            "givenName": given or None,
            "surname": surname or None,
            "jobTitle": None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
        }
        with self.lock:
            self.users.append(user)
        return user

    def add_guest(self, display_name: str, address: str, *, object_id: str | None = None) -> Json:
        """A B2B guest: UPN `<address with @ as _>#EXT#@<tenant>`, mail and other mail the invited address."""
        upn = f"{address.replace('@', '_')}#EXT#@{TENANT_DOMAIN}"
        return self.add_user(display_name, upn, object_id=object_id, mail=address, other_mails=(address,), user_type="Guest")

    # ---- serving ---------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        with self.lock:
            self.calls.append(GraphCall(request.method, request.path, query))
        response = self._answer(request, query)
        with self.lock:
            self.exchanges.append(
                GraphExchange(request.method, request.path, query, response.status, dict(response.headers), response.body)
            )
        return response

    def _answer(self, request: web.Request, query: dict[str, str]) -> web.Response:
        if not self._authorised(request.headers.get("Authorization", "")):
            return _error(request, 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        if request.method != "GET" or not request.path.startswith("/v1.0/users"):
            return _error(request, 400, "BadRequest", f"Resource not found for the segment '{request.path}'.")
        if self.deny:
            return _error(request, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        select = tuple(query["$select"].split(",")) if "$select" in query else DEFAULT_SELECT
        unknown = [name for name in select if name not in PROPERTIES]
        if unknown:
            return _error(request, 400, "BadRequest", f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.user'.")
        context = f"{self.url}/v1.0/$metadata#users" + (f"({','.join(select)})" if "$select" in query else "")
        key = request.path.removeprefix("/v1.0/users").strip("/")
        with self.lock:
            users = list(self.users)
        if key:
            found = [u for u in users if key.lower() in (u["id"].lower(), u["userPrincipalName"].lower())]
            if not found:
                return _error(request, 404, "Request_ResourceNotFound",
                              f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.")
            return _json(request, {"@odata.context": context + "/$entity", **_pick(found[0], select)})
        if "$filter" in query:
            matches = _filter(query["$filter"])
            if matches is None:
                return _error(request, 400, "Request_UnsupportedQuery", "Unsupported Query.")
            users = [u for u in users if any(match(u) for match in matches)]
        if "$top" in query:
            users = users[: int(query["$top"])]
        return _json(request, {"@odata.context": context, "value": [_pick(u, select) for u in users]})

    def _authorised(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or token.count(".") != 2:
            return False
        claims = token.split(".")[1]
        try:
            audience = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["aud"]
        except (ValueError, KeyError):
            return False
        return audience in (f"{self.url}/.default", self.url)


def _filter(expression: str) -> list[Any] | None:
    """One predicate per `or` clause, or None for what this stand-in (and amlbot) does not use."""
    predicates = []
    for clause in re.split(r" or (?=(?:[^']*'[^']*')*[^']*$)", expression.strip()):
        if eq := _EQ.fullmatch(clause.strip()):
            name, value = _property(eq.group(1)), eq.group(2).replace("''", "'").lower()
            predicates.append(lambda u, n=name, v=value: (u.get(n) or "").lower() == v)
        elif any_ := _ANY.fullmatch(clause.strip()):
            name, value = _property(any_.group(1)), any_.group(3).replace("''", "'").lower()
            predicates.append(lambda u, n=name, v=value: v in (x.lower() for x in u.get(n) or ()))
        else:
            return None
    return predicates


def _property(name: str) -> str:
    return next(p for p in PROPERTIES if p.lower() == name.lower())


def _pick(user: Json, select: tuple[str, ...]) -> Json:
    return {name: user[name] for name in select}


def _headers(request: web.Request) -> dict[str, str]:
    return {
        "request-id": str(uuid.uuid4()),
        "client-request-id": request.headers.get("client-request-id", str(uuid.uuid4())),
        "Content-Type": "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
    }


def _json(request: web.Request, body: Json, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), headers=_headers(request))


def _error(request: web.Request, status: int, code: str, message: str) -> web.Response:
    headers = _headers(request)
    inner = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": headers["request-id"],
        "client-request-id": headers["client-request-id"],
    }
    return web.Response(status=status, body=json.dumps({"error": {"code": code, "message": message, "innerError": inner}}).encode(),
                        headers=headers)

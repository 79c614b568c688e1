"""A local stand-in for the Azure Files REST API, for the real azure-storage-file-share clients.

Azurite has no Files service, so this serves the subset amlbot and its tests use, path-style like
Azurite (``http://127.0.0.1:<port>/<account>/<share>/<path>``): create a share; create, get, list
(``restype=directory&comp=list``, paged with ``marker``/``maxresults``) and delete directories;
create a file (``x-ms-type: file``), write ranges (``comp=range``), get its properties (HEAD),
download it (whole or ``Range``d, 416 on an empty file) and delete it.

Requests must carry Shared Key authorization, checked against the documented string-to-sign with
the account key, plus ``x-ms-version`` and ``x-ms-date``. Errors are the service's XML body with
``x-ms-error-code``. Names are case-preserving and case-insensitive, as in Azure Files. A directory
with anything in it cannot be deleted (``DirectoryNotEmpty``).

Test controls: ``fail_next(method, path_regex, status=…, code=…)``, ``files(share)`` (path -> bytes),
``directories(share)``, ``add_file(share, path, data)`` (parents created), ``calls``, ``errors``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import NamedTuple
from urllib.parse import unquote
from xml.sax.saxutils import escape

from aiohttp import web

from sandbox.standins.azure.state import AZURITE_ACCOUNT, AZURITE_KEY
from sandbox.standins.azure.threaded import ThreadedServer

MAX_RESULTS = 5000  # the service's page size when the client names none
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
# The string-to-sign's standard headers, in order (Authorize with Shared Key).
_SIGNED_HEADERS = (
    "content-encoding", "content-language", "content-length", "content-md5", "content-type", "date",
    "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range",
)


class Call(NamedTuple):
    method: str
    path: str  # decoded, without the account
    query: dict[str, str]
    status: int


class FilesError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    code: str
    remaining: int


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _file_time(moment: dt.datetime) -> str:
    """The x-ms-file-*-time format: ISO 8601 with seven fractional digits."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass
class Node:
    """A directory (with children) or a file (with content)."""

    name: str
    is_directory: bool
    file_id: str = field(default_factory=lambda: str(uuid.uuid4().int % 2**63))
    created: dt.datetime = field(default_factory=_now)
    changed: dt.datetime = field(default_factory=_now)
    etag: str = field(default_factory=lambda: f'"0x{uuid.uuid4().hex[:15].upper()}"')
    content: bytearray = field(default_factory=bytearray)
    children: dict[str, Node] = field(default_factory=dict)  # by lower-case name

    def touch(self) -> None:
        self.changed = _now()
        self.etag = f'"0x{uuid.uuid4().hex[:15].upper()}"'

    def headers(self) -> dict[str, str]:
        headers = {
            "ETag": self.etag,
            "Last-Modified": format_datetime(self.changed, usegmt=True),
            "x-ms-file-attributes": "Directory" if self.is_directory else "Archive",
            "x-ms-file-creation-time": _file_time(self.created),
            "x-ms-file-last-write-time": _file_time(self.changed),
            "x-ms-file-change-time": _file_time(self.changed),
            "x-ms-file-permission-key": "4066528134148476695*1",
            "x-ms-file-id": self.file_id,
            "x-ms-file-parent-id": "0",
            "x-ms-server-encrypted": "true",
        }
        if not self.is_directory:
            headers |= {"x-ms-type": "File", "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        return headers


class AzureFilesStandIn(ThreadedServer):
    """Azure Files on 127.0.0.1 for one account (Azurite's by default, so one connection string
    reaches Azurite's blobs and these files). Use as ``async with AzureFilesStandIn() as files: …``."""

    def __init__(self, account: str = AZURITE_ACCOUNT, key: str = AZURITE_KEY, *, port: int = 0) -> None:
        super().__init__(tls=False, port=port, name="azure-files-standin")
        self.account, self._key = account, base64.b64decode(key)
        self.shares: dict[str, Node] = {}  # by lower-case name
        self.calls: list[Call] = []
        self.errors: list[str] = []  # stand-in bugs (answered 500); a test should expect this empty
        self.lock = threading.RLock()
        self._faults: list[_Fault] = []

    async def __aenter__(self) -> AzureFilesStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def endpoint(self) -> str:
        return f"{self.url}/{self.account}"

    @property
    def connection_setting(self) -> str:
        """What to add to a storage connection string so its clients find this Files service."""
        return f"FileEndpoint={self.endpoint};"

    # -------------------------------------------------------------------------- test controls
    def fail_next(self, method: str, path_regex: str, *, status: int = 500, code: str = "InternalError", times: int = 1) -> None:
        """Answer the next ``times`` matching requests (path without the account) with an error."""
        with self.lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_regex), status, code, times))

    def add_file(self, share: str, path: str, data: bytes) -> None:
        """Seed a file, creating the share and its parent directories."""
        with self.lock:
            node = self.shares.setdefault(share.lower(), Node(share, True))
            *folders, name = path.strip("/").split("/")
            for folder in folders:
                node = node.children.setdefault(folder.lower(), Node(folder, True))
            node.children[name.lower()] = Node(name, False, content=bytearray(data))

    def files(self, share: str) -> dict[str, bytes]:
        """Every file of a share by path, as it is now."""
        with self.lock:
            return {path: bytes(node.content) for path, node in self._walk(share) if not node.is_directory}

    def directories(self, share: str) -> set[str]:
        with self.lock:
            return {path for path, node in self._walk(share) if node.is_directory}

    def _walk(self, share: str) -> list[tuple[str, Node]]:
        found: list[tuple[str, Node]] = []

        def visit(node: Node, prefix: str) -> None:
            for child in node.children.values():
                path = f"{prefix}{child.name}"
                found.append((path, child))
                if child.is_directory:
                    visit(child, path + "/")

        if share.lower() in self.shares:
            visit(self.shares[share.lower()], "")
        return found

    # ------------------------------------------------------------------------------- plumbing
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self.lock:
            return self._respond(request, body)

    def _respond(self, request: web.Request, body: bytes) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        # Decode before splitting: the SDK sends a directory path's slashes as %2F.
        parts = unquote(request.raw_path.split("?", 1)[0]).strip("/").split("/")
        path = "/" + "/".join(parts[1:])
        query = {k.lower(): v for k, v in request.query.items()}
        try:
            if parts[0] != self.account:
                raise FilesError(400, "InvalidUri", f"The account `{parts[0]}` is not served here.")
            self._check_auth(request)
            self._inject_fault(request.method, path)
            response = self._dispatch(request, parts[1:], query, body)
        except FilesError as error:
            response = self._error(request, error, request_id)
        except Exception:  # a stand-in bug must be visible, not retried by the SDK into a timeout
            self.errors.append(f"{request.method} {path}\n{traceback.format_exc()}")
            response = self._error(request, FilesError(500, "InternalError", "stand-in error"), request_id)
        response.headers["x-ms-request-id"] = request_id
        response.headers["x-ms-version"] = request.headers.get("x-ms-version", "")
        response.headers["Date"] = format_datetime(_now(), usegmt=True)
        if client_id := request.headers.get("x-ms-client-request-id"):
            response.headers["x-ms-client-request-id"] = client_id
        self.calls.append(Call(request.method, path, query, response.status))
        return response

    @staticmethod
    def _error(request: web.Request, error: FilesError, request_id: str) -> web.Response:
        headers = {"x-ms-error-code": error.code}
        if request.method == "HEAD":  # a HEAD answer has no body: the code travels in the header only
            return web.Response(status=error.status, headers=headers)
        message = f"{error.message}\nRequestId:{request_id}\nTime:{_file_time(_now())}"
        xml = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{error.code}</Code><Message>{escape(message)}</Message></Error>'
        return web.Response(status=error.status, body=xml.encode(), content_type="application/xml", headers=headers)

    def _inject_fault(self, method: str, path: str) -> None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.method == method and fault.pattern.search(path):
                fault.remaining -= 1
                raise FilesError(fault.status, fault.code, f"Injected failure ({fault.status}).")

    def _check_auth(self, request: web.Request) -> None:
        if "x-ms-version" not in request.headers:
            raise FilesError(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified.")
        authorization = request.headers.get("Authorization", "")
        if not authorization:
            raise FilesError(401, "NoAuthenticationInformation", "Server failed to authenticate the request. "
                             "Please refer to the information in the www-authenticate header.")
        scheme, _, credential = authorization.partition(" ")
        account, _, signature = credential.partition(":")
        expected = base64.b64encode(hmac.new(self._key, self._string_to_sign(request).encode(), hashlib.sha256).digest()).decode()
        if scheme != "SharedKey" or account != self.account or not hmac.compare_digest(signature, expected):
            raise FilesError(403, "AuthenticationFailed", "Server failed to authenticate the request. Make sure the value "
                             "of Authorization header is formed correctly including the signature.")
        if "x-ms-date" not in request.headers and "Date" not in request.headers:
            raise FilesError(403, "AuthenticationFailed", "The Date header or x-ms-date is required.")

    def _string_to_sign(self, request: web.Request) -> str:
        """Authorize with Shared Key: verb, the standard headers, x-ms-* headers, canonical resource."""
        headers = {name.lower(): value for name, value in request.headers.items()}
        if headers.get("content-length") == "0":
            headers["content-length"] = ""  # "empty string when zero", from version 2015-02-21
        lines = [request.method, *(headers.get(name, "") for name in _SIGNED_HEADERS)]
        ms = sorted((name, value.strip()) for name, value in headers.items() if name.startswith("x-ms-"))
        resource = f"/{self.account}{request.raw_path.split('?', 1)[0]}"
        params: dict[str, list[str]] = {}
        for name, value in request.query.items():
            params.setdefault(name.lower(), []).append(value)
        query = "".join(f"\n{name}:{','.join(sorted(values))}" for name, values in sorted(params.items()))
        return "\n".join(lines) + "\n" + "".join(f"{n}:{v}\n" for n, v in ms) + resource + query

    # ------------------------------------------------------------------------------ resources
    def _share(self, name: str) -> Node:
        share = self.shares.get(name.lower())
        if share is None:
            raise FilesError(404, "ShareNotFound", "The specified share does not exist.")
        return share

    def _parent(self, share: str, names: list[str]) -> Node:
        node = self._share(share)
        for name in names[:-1]:
            child = node.children.get(name.lower())
            if child is None or not child.is_directory:
                raise FilesError(404, "ParentNotFound", "The specified parent path does not exist.")
            node = child
        return node

    def _node(self, share: str, names: list[str], *, directory: bool) -> Node:
        if not names:
            return self._share(share)
        node = self._parent(share, names).children.get(names[-1].lower())
        if node is None or node.is_directory != directory:
            raise FilesError(404, "ResourceNotFound", "The specified resource does not exist.")
        return node

    def _dispatch(self, request: web.Request, parts: list[str], query: dict[str, str], body: bytes) -> web.StreamResponse:
        if not parts or not parts[0]:
            raise FilesError(400, "InvalidUri", "Listing shares is not served by this stand-in.")
        share, names, method = parts[0], [p for p in parts[1:] if p], request.method
        restype, comp = query.get("restype", ""), query.get("comp", "")
        if restype == "share" and method == "PUT" and not comp:
            return self._create_share(share)
        if restype == "directory":
            if method == "GET" and comp == "list":
                return self._list(share, names, query)
            if method in ("GET", "HEAD") and not comp:
                return web.Response(status=200, headers=self._node(share, names, directory=True).headers())
            if method == "PUT" and not comp:
                return self._create(share, names, Node(names[-1], True) if names else None)
            if method == "DELETE" and not comp:
                return self._delete(share, names, directory=True)
        if not restype and names:
            if method == "PUT" and comp == "range":
                return self._write_range(request, share, names, body)
            if method == "PUT" and not comp and request.headers.get("x-ms-type", "").lower() == "file":
                return self._create_file(request, share, names)
            if method in ("GET", "HEAD") and not comp:
                return self._download(request, self._node(share, names, directory=False))
            if method == "DELETE" and not comp:
                return self._delete(share, names, directory=False)
        raise FilesError(400, "UnsupportedHttpVerb", f"{method} with {dict(query)} is not served by this stand-in.")

    def _create_share(self, name: str) -> web.Response:
        if name.lower() in self.shares:
            raise FilesError(409, "ShareAlreadyExists", "The specified share already exists.")
        self.shares[name.lower()] = share = Node(name, True)
        return web.Response(status=201, headers={"ETag": share.etag, "Last-Modified": format_datetime(share.changed, usegmt=True)})

    def _create(self, share: str, names: list[str], node: Node | None) -> web.Response:
        if node is None:
            raise FilesError(400, "InvalidUri", "The share root cannot be created as a directory.")
        parent = self._parent(share, names)
        if names[-1].lower() in parent.children:
            raise FilesError(409, "ResourceAlreadyExists", "The specified resource already exists.")
        parent.children[names[-1].lower()] = node
        parent.touch()
        return web.Response(status=201, headers=node.headers())

    def _create_file(self, request: web.Request, share: str, names: list[str]) -> web.Response:
        length = request.headers.get("x-ms-content-length", "")
        if not length.isdigit():
            raise FilesError(400, "MissingRequiredHeader", "x-ms-content-length is required.")
        parent = self._parent(share, names)
        existing = parent.children.get(names[-1].lower())
        if existing is not None and existing.is_directory:
            raise FilesError(409, "ResourceTypeMismatch", "The specified resource type does not match the type of the existing resource.")
        node = Node(names[-1], False, content=bytearray(int(length)))  # a new file is zero-filled
        parent.children[names[-1].lower()] = node
        return web.Response(status=201, headers=node.headers() | {"x-ms-request-server-encrypted": "true"})

    def _write_range(self, request: web.Request, share: str, names: list[str], body: bytes) -> web.Response:
        node = self._node(share, names, directory=False)
        match = _RANGE.fullmatch(request.headers.get("x-ms-range") or request.headers.get("Range") or "")
        if match is None or not match[2]:
            raise FilesError(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.")
        start, end = int(match[1]), int(match[2])
        if end >= len(node.content) or end < start:
            raise FilesError(416, "InvalidRange", "The range specified is invalid for the current size of the resource.")
        if request.headers.get("x-ms-write", "").lower() == "clear":
            node.content[start : end + 1] = bytes(end - start + 1)
        elif len(body) != end - start + 1:
            raise FilesError(400, "InvalidHeaderValue", "The range length does not match the body length.")
        else:
            node.content[start : end + 1] = body
        node.touch()
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        return web.Response(status=201, headers={"ETag": node.etag, "Last-Modified": format_datetime(node.changed, usegmt=True),
                                                 "Content-MD5": md5, "x-ms-request-server-encrypted": "true"})

    def _download(self, request: web.Request, node: Node) -> web.Response:
        size = len(node.content)
        headers = node.headers()
        asked = request.headers.get("x-ms-range") or request.headers.get("Range")
        if not asked:
            body = bytes(node.content) if request.method == "GET" else b""
            return web.Response(status=200, body=body, headers=headers | {"Content-Length": str(size)})
        match = _RANGE.fullmatch(asked)
        if match is None:
            raise FilesError(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.")
        start = int(match[1])
        if start >= size:
            raise FilesError(416, "InvalidRange", "The range specified is invalid for the current size of the resource.")
        end = min(int(match[2]) if match[2] else size - 1, size - 1)
        body = bytes(node.content[start : end + 1]) if request.method == "GET" else b""
        headers |= {"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(end - start + 1)}
        return web.Response(status=206, body=body, headers=headers)

    def _delete(self, share: str, names: list[str], *, directory: bool) -> web.Response:
        node = self._node(share, names, directory=directory)
        if not names:
            raise FilesError(400, "InvalidUri", "The share root cannot be deleted as a directory.")
        if node.children:
            raise FilesError(409, "DirectoryNotEmpty", "The specified directory is not empty.")
        parent = self._parent(share, names)
        del parent.children[names[-1].lower()]
        parent.touch()
        return web.Response(status=202)

    def _list(self, share: str, names: list[str], query: dict[str, str]) -> web.Response:
        directory = self._node(share, names, directory=True)
        prefix, marker = query.get("prefix", ""), query.get("marker", "")
        page = int(query["maxresults"]) if query.get("maxresults", "").isdigit() else MAX_RESULTS
        include = {part.strip().lower() for part in query.get("include", "").split(",") if part}
        entries = sorted(
            (n for n in directory.children.values() if n.name.lower().startswith(prefix.lower())),
            key=lambda n: n.name.lower(),
        )
        start = next((i for i, n in enumerate(entries) if n.name.lower() >= marker.lower()), len(entries)) if marker else 0
        shown, rest = entries[start : start + page], entries[start + page :]
        next_marker = rest[0].name if rest else ""
        xml = [
            '<?xml version="1.0" encoding="utf-8"?>',
            f'<EnumerationResults ServiceEndpoint="{escape(self.endpoint)}/" ShareName="{escape(share)}" '
            f'DirectoryPath="{escape("/".join(names))}">',
            f"<Prefix>{escape(prefix)}</Prefix>" if prefix else "",
            f"<Marker>{escape(marker)}</Marker>" if marker else "",
            f"<MaxResults>{page}</MaxResults>" if "maxresults" in query else "",
            f"<DirectoryId>{directory.file_id}</DirectoryId><Entries>",
            *(self._entry(node, include) for node in shown),
            f"</Entries><NextMarker>{escape(next_marker)}</NextMarker></EnumerationResults>",
        ]
        return web.Response(status=200, body="".join(xml).encode(), content_type="application/xml")

    @staticmethod
    def _entry(node: Node, include: set[str]) -> str:
        tag = "Directory" if node.is_directory else "File"
        properties = "" if node.is_directory else f"<Content-Length>{len(node.content)}</Content-Length>"
        if "timestamps" in include:
            when = _file_time(node.changed)
            properties += (f"<CreationTime>{_file_time(node.created)}</CreationTime><LastAccessTime>{when}</LastAccessTime>"
                           f"<LastWriteTime>{when}</LastWriteTime><ChangeTime>{when}</ChangeTime>"
                           f"<Last-Modified>{format_datetime(node.changed, usegmt=True)}</Last-Modified>")
        if "etag" in include:
            properties += f"<Etag>{node.etag}</Etag>"
        extra = ""
        if "attributes" in include:
            extra += f"<Attributes>{'Directory' if node.is_directory else 'Archive'}</Attributes>"
        if "permissionkey" in include:
            extra += "<PermissionKey>4066528134148476695*1</PermissionKey>"
        return f"<{tag}><FileId>{node.file_id}</FileId><Name>{escape(node.name)}</Name><Properties>{properties}</Properties>{extra}</{tag}>"

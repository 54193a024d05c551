"""File URLs: a model version's files over plain HTTP, for ``curl -O``, ``wget -c``, a
notebook's ``requests`` or a serving stack's HTTP storage initializer.

``GET``/``HEAD /v1/models/{model}/versions/{version_or_alias}/files/{path}`` streams one file;
``GET …/files`` (or ``…/files/{folder}/``) lists the version's files (under that folder) as
JSON. ``{version_or_alias}`` is a version number or an alias.

Authorisation is the one ``Read`` has: every request first resolves the version with
``ResolveModelVersion`` through this process's own gRPC server, with the caller's credential,
so the same interceptors authenticate it (401 without a valid credential) and check
``models.read`` on the model (403 without it); ``access/rpc/permissions.py`` gives both
``ResolveModelVersion`` and ``ArtifactService/Read`` that permission on the version's model.
Resolve answers only ``READY`` and ``ARCHIVED`` versions (an archived version's files stay
downloadable by number, as ``Read`` serves them too); the file must be in that version's
manifest. The bytes then come straight from the blob store port, with no gRPC hop, in the
store's 1 MiB chunks (one read ahead), each written with backpressure, so a download holds
at most a few MiB whatever the file's size.

Headers: ``Content-Length``, ``ETag: "<sha256>"``, ``Accept-Ranges: bytes``, the manifest's
media type (``application/octet-stream`` when it has none), ``Content-Disposition:
attachment`` with the base name, and ``X-Model-Version: models/{model}/versions/{n}`` (by
alias, that is how a caller learns which version it got). By number the answer never changes:
``Cache-Control: private, max-age=31536000, immutable``; by alias it may: ``private, no-cache``
(``private`` because a browser session authenticates with a cookie, which a shared cache
would not tell apart). One range (``bytes=a-b``, ``a-``, ``-n``) answers 206 with
``Content-Range``; one past the end answers 416 with ``Content-Range: bytes */size``;
several ranges are ignored and the whole file is sent with 200 (RFC 9110 lets a server
ignore ``Range``; no ``multipart/byteranges``). ``If-None-Match`` with the ETag answers 304,
and ``If-Range`` lets a range through only with the strong ETag.

Errors before the first byte are ``google.rpc.Status`` JSON with an ``ErrorInfo``; an error
after it (the store failing mid-file) closes the connection, so the client sees a short
body and resumes with a range. A client that goes away ends the download at the next write,
and the store's read is closed with it; one whose socket takes no byte for ``STALL_TIMEOUT_S``
is disconnected (a slow one that keeps reading is not).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import re
import sys
import termios
from collections.abc import AsyncGenerator, Sequence
from urllib.parse import quote, unquote

from aiohttp import web
from google.protobuf import descriptor
from google.rpc import code_pb2, error_details_pb2, status_pb2

from modelregistry.metadata.v1 import metadata_service_pb2, model_version_pb2
from modelregistry_server.artifacts.app.ports import BlobStore
from modelregistry_server.artifacts.domain.blob import BlobChunk
from modelregistry_server.artifacts.domain.errors import BlobNotFound, StoreUnavailable
from modelregistry_server.common.kernel.errors import RegistryError, quoted
from modelregistry_server.common.rpc.status import ERROR_DOMAIN
from modelregistry_server.web.api import error_response, status_response
from modelregistry_server.web.face import FileCounters, WebContext
from modelregistry_server.web.gateway import CallError, Gateway
from modelregistry_server.web.http_headers import (
    ByteRange,
    RangeNotSatisfiable,
    content_disposition,
    none_match,
    range_allowed,
    requested_range,
    safe_media_type,
)
from modelregistry_server.web.session import caller_of

_log = logging.getLogger(__name__)
# A client that takes no bytes for this long is disconnected (as a gRPC stream that moves no
# data for the default --stream-idle-timeout is ended).
STALL_TIMEOUT_S = 60.0
CACHE_BY_NUMBER = "private, max-age=31536000, immutable"
CACHE_BY_ALIAS = "private, no-cache"
# A file is served as a download, never rendered in this origin, and could not run anything
# if it were.
FILE_CSP = "default-src 'none'; sandbox"
_METADATA_SERVICE = metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"]
_RESOLVE = _METADATA_SERVICE.methods_by_name["ResolveModelVersion"]
_SERVABLE = frozenset(
    {
        model_version_pb2.MODEL_VERSION_STATE_READY,
        model_version_pb2.MODEL_VERSION_STATE_ARCHIVED,
    }
)
_FILES_URL = re.compile(r"/v1/models/([^/?]+)/versions/([^/?]+)/files(?:/([^?]*))?")
_MODEL_ID = re.compile(r"[a-z][a-z0-9-]{0,62}")
_VERSION_NUMBER = re.compile(r"[1-9][0-9]{0,18}")
_ALIAS_ID = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
BASE_PATH = "/v1/models/{model}/versions/{version}/files"


def install(app: web.Application, context: WebContext) -> None:
    """Add the file routes (GET, and HEAD with them) to ``app``."""
    files = FileUrls(context.gateway, context.store, context.services, context.files)
    app.router.add_get(BASE_PATH, files.handle)
    app.router.add_get(BASE_PATH + "/{path:.*}", files.handle)
    app.router.add_route("*", BASE_PATH, files.read_only)
    app.router.add_route("*", BASE_PATH + "/{path:.*}", files.read_only)


def _error(
    code: int, reason: str, message: str, http_status: int | None = None, **metadata: str
) -> web.Response:
    """A ``google.rpc.Status`` with an ``ErrorInfo`` (reasons from the protos' catalogues)."""
    status = status_pb2.Status(code=code, message=message)
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)
    status.details.add().Pack(info)
    response = status_response(status)
    if http_status is not None:
        response.set_status(http_status)
    return response


class _Request:
    """The parts of a file URL, percent-decoded from the raw path."""

    def __init__(self, request: web.Request) -> None:
        match = _FILES_URL.fullmatch(request.raw_path.split("?", 1)[0])
        if match is None:  # the route matched, so only odd encodings get here
            raise web.HTTPNotFound(reason="not a file URL")
        self.model = unquote(match.group(1))
        self.version = unquote(match.group(2))
        self.path = unquote(match.group(3) or "")
        self.by_alias = not self.version.isdigit()

    @property
    def ref(self) -> str:
        """The reference ``ResolveModelVersion`` takes for this URL."""
        if self.by_alias:
            return f"{self.model}@{self.version}"
        return f"{self.model}/versions/{self.version}"

    @property
    def valid(self) -> bool:
        """Whether the model and version parts could name anything (no other ref forms)."""
        if not _MODEL_ID.fullmatch(self.model):
            return False
        pattern = _ALIAS_ID if self.by_alias else _VERSION_NUMBER
        return pattern.fullmatch(self.version) is not None

    @property
    def cache_control(self) -> str:
        """By number the answer never changes; by alias it may at any time."""
        return CACHE_BY_ALIAS if self.by_alias else CACHE_BY_NUMBER


class FileUrls:
    """The handlers of file URLs.

    Args:
        gateway: Resolves versions through this process's gRPC server.
        store: The blob store, or None when this process does not serve artifacts.
        services: The services this process serves (the metadata service resolves versions).
        counters: Where the bytes sent are counted.
    """

    def __init__(
        self,
        gateway: Gateway,
        store: BlobStore | None,
        services: Sequence[descriptor.ServiceDescriptor],
        counters: FileCounters | None = None,
    ) -> None:
        self._counters = counters or FileCounters()
        self._gateway = gateway
        self._store = store
        self._resolves = any(s.full_name == _METADATA_SERVICE.full_name for s in services)

    async def read_only(self, request: web.Request) -> web.StreamResponse:
        """Any other method than GET or HEAD: files are changed by pushing a new version."""
        response = error_response(
            code_pb2.UNIMPLEMENTED,
            f"{request.method} is not supported on file URLs; use GET or HEAD",
        )
        response.set_status(405)
        response.headers["Allow"] = "GET, HEAD"
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """A file (path not ending in ``/``) or a listing (no path, or a folder ending in ``/``)."""
        url = _Request(request)
        if self._store is None or not self._resolves:
            return error_response(
                code_pb2.UNIMPLEMENTED,
                "this server process does not serve file URLs: they need the metadata and "
                "the artifact service in one process; download from a server started with "
                "'serve' (both services), or use the gRPC Read method",
            )
        if not url.valid:
            return _error(
                code_pb2.INVALID_ARGUMENT,
                "REFERENCE_INVALID",
                f"{quoted(url.model)} / {quoted(url.version)} is not a model id and a version "
                "number or alias id",
                field="version_or_alias",
            )
        version = await self._resolve(request, url)
        if isinstance(version, web.StreamResponse):
            return version
        if not url.path or url.path.endswith("/"):
            return _listing(url, version)
        entry = next((f for f in version.files if f.path == url.path), None)
        if entry is None:
            return _missing(url, version)
        return await self._serve(request, url, version, entry)

    async def _resolve(
        self, request: web.Request, url: _Request
    ) -> model_version_pb2.ModelVersion | web.StreamResponse:
        caller = caller_of(request)
        resolve_request = metadata_service_pb2.ResolveModelVersionRequest(ref=url.ref)
        try:
            reply = await self._gateway.call(_RESOLVE, resolve_request, caller.credential)
        except CallError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
            return status_response(exc.status, headers)
        assert isinstance(reply, model_version_pb2.ModelVersion)
        if reply.state not in _SERVABLE:
            return _error(
                code_pb2.FAILED_PRECONDITION,
                "VERSION_NOT_READY",
                f"{reply.name} is not READY: its files cannot be downloaded",
                resource=reply.name,
            )
        return reply

    async def _serve(
        self,
        request: web.Request,
        url: _Request,
        version: model_version_pb2.ModelVersion,
        entry: model_version_pb2.ManifestFile,
    ) -> web.StreamResponse:
        size, etag = entry.size_bytes, entry.sha256
        headers = {
            "ETag": f'"{etag}"',
            "Cache-Control": url.cache_control,
            "X-Model-Version": version.name,
        }
        if none_match(request.headers.get("If-None-Match"), etag):
            return web.Response(status=304, headers=headers)
        headers["Accept-Ranges"] = "bytes"
        chosen: ByteRange | None = None
        if range_allowed(request.headers.get("If-Range"), etag):
            try:
                chosen = requested_range(request.headers.get("Range"), size)
            except RangeNotSatisfiable:
                return _unsatisfiable(request, url, size, headers)
        response = web.StreamResponse(status=200 if chosen is None else 206, headers=headers)
        response.headers["Content-Type"] = safe_media_type(entry.media_type)
        response.headers["Content-Disposition"] = content_disposition(entry.path)
        response.headers["Content-Security-Policy"] = FILE_CSP
        if chosen is not None:
            response.headers["Content-Range"] = chosen.content_range(size)
        start, length = (0, size) if chosen is None else (chosen.start, chosen.length)
        response.content_length = length
        if request.method == "HEAD" or length == 0:
            await response.prepare(request)
            await response.write_eof()
            return response
        assert self._store is not None
        chunks = self._store.read(etag, start, length)
        return await _stream(request, response, chunks, url, self._counters)


def _unsatisfiable(
    request: web.Request, url: _Request, size: int, headers: dict[str, str]
) -> web.Response:
    """416: the one range asked for starts at or past the end of the file."""
    response = _error(
        code_pb2.OUT_OF_RANGE,
        "READ_OFFSET_OUT_OF_RANGE",
        f"the range {quoted(request.headers.get('Range', ''))} starts past the end of "
        f"{quoted(url.path, 200)} ({size} bytes)",
        http_status=416,
        size=str(size),
    )
    response.headers.update(headers)
    response.headers["Content-Range"] = f"bytes */{size}"
    return response


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    chunks: AsyncGenerator[BlobChunk, None],
    url: _Request,
    counters: FileCounters,
) -> web.StreamResponse:
    """Send ``chunks`` as the body of ``response``; ``chunks`` is closed however it ends.

    The first chunk is read before the status line is sent, so a blob the store cannot find
    or reach is still answered with an error status.
    """
    async with contextlib.aclosing(chunks):
        try:
            first = await anext(chunks)
        except BlobNotFound:
            # The manifest names it, so the store lost it: not the client's doing.
            _log.error("file %s of %s: blob missing from the store", url.path, url.ref)
            return _error(
                code_pb2.DATA_LOSS,
                "BLOB_NOT_FOUND",
                "the blob store no longer holds this file's bytes; tell the registry's operators",
            )
        except StoreUnavailable as exc:
            return _error(code_pb2.UNAVAILABLE, "STORAGE_UNAVAILABLE", exc.message)
        await response.prepare(request)
        try:
            await _write(request, response, first)
            counters.sent_bytes += len(first)
            async for chunk in chunks:
                await _write(request, response, chunk)
                counters.sent_bytes += len(chunk)  # once written: a client that left stops it
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away; closing the generator ends the store's read
        except TimeoutError:
            _log.info("file %s of %s: client stalled; disconnected", url.path, url.ref)
            _close(request)
        except RegistryError as exc:
            _log.warning("file %s of %s: the store failed mid-file: %s", url.path, url.ref, exc)
            _close(request)
        except Exception:
            # The status line is out: no error document can follow, a short body must do.
            _log.exception("file %s of %s failed mid-file", url.path, url.ref)
            _close(request)
    return response


async def _write(request: web.Request, response: web.StreamResponse, chunk: BlobChunk) -> None:
    """Write one chunk, waiting while the client's socket is full (backpressure).

    A slow client is fine; one whose socket took no byte for ``STALL_TIMEOUT_S`` (the bytes
    waiting to go out did not change) raises ``TimeoutError``.
    """
    writing = asyncio.ensure_future(response.write(chunk))
    try:
        loop = asyncio.get_running_loop()
        waiting, since = -1, loop.time()
        poll = min(STALL_TIMEOUT_S / 4, 5.0)
        while not (await asyncio.wait({writing}, timeout=poll))[0]:
            now_waiting = _bytes_waiting(request.transport)
            if now_waiting != waiting:
                waiting, since = now_waiting, loop.time()
            elif loop.time() - since >= STALL_TIMEOUT_S:
                raise TimeoutError
        writing.result()
    finally:
        if not writing.done():
            writing.cancel()


def _bytes_waiting(transport: asyncio.BaseTransport | None) -> int:
    """Bytes not yet taken by the client: the transport's buffer plus the kernel's send queue.

    The transport's buffer alone moves only when the kernel's send buffer (megabytes on
    loopback) has room again, which for a slow reader can take longer than the stall timeout
    although the client reads all the time; the kernel's queue shrinks with every read.
    """
    if transport is None:
        return 0
    waiting = transport.get_write_buffer_size()  # type: ignore[attr-defined]
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
            waiting += int.from_bytes(queued, sys.byteorder, signed=True)
    return int(waiting)


def _close(request: web.Request) -> None:
    """End the connection now, mid-body: the client sees fewer bytes than ``Content-Length``
    (``abort``, not ``close``, which would wait for a stalled client to take the rest)."""
    if request.transport is not None:
        request.transport.abort()


def _file_url(version: model_version_pb2.ModelVersion, path: str) -> str:
    """The file's URL by version number (its content can never change under it)."""
    model = version.name.split("/")[1]
    return f"/v1/models/{model}/versions/{version.version}/files/{quote(path, safe='/')}"


def _listing(url: _Request, version: model_version_pb2.ModelVersion) -> web.Response:
    """The files of the version (under ``url.path`` when it names a folder) as JSON."""
    entries = [f for f in version.files if f.path.startswith(url.path)]
    if url.path and not entries:
        return _missing(url, version)
    document = {
        "modelVersion": version.name,
        "files": [
            {
                "path": f.path,
                "sha256": f.sha256,
                "size": f.size_bytes,
                "mediaType": f.media_type,
                "url": _file_url(version, f.path),
            }
            for f in entries
        ],
    }
    headers = {"Cache-Control": url.cache_control, "X-Model-Version": version.name}
    return web.json_response(document, headers=headers)


def _missing(url: _Request, version: model_version_pb2.ModelVersion) -> web.Response:
    """404 for a path that is neither a file nor a folder of the version."""
    folder = url.path.rstrip("/") + "/"
    hint = ""
    if not url.path.endswith("/") and any(f.path.startswith(folder) for f in version.files):
        hint = f"; it is a folder: list it at …/files/{url.path}/"
    return _error(
        code_pb2.NOT_FOUND,
        "BLOB_NOT_FOUND",
        f"{version.name} has no file {quoted(url.path, 200)}{hint}",
        resource=f"{version.name}/files/{url.path}",
    )

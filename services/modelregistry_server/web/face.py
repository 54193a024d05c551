"""The HTTP face of the registry: one aiohttp application on its own port, in the server's
event loop, serving the JSON API (``/v1/…``), file URLs, ``/openapi.json`` and the UI (``/``).

Security headers go on every response: a Content-Security-Policy that allows scripts, styles
and images from this origin only (no inline script, no ``eval``), no framing, no MIME
sniffing, referrers only to this origin. CORS is off unless ``cors_origins`` names origins.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf import descriptor
from google.rpc import code_pb2

from modelregistry_server.artifacts.app.ports import BlobStore
from modelregistry_server.web.api import JsonApi, error_response
from modelregistry_server.web.gateway import Gateway
from modelregistry_server.web.openapi import openapi_document
from modelregistry_server.web.transcoding import routes_of

_log = logging.getLogger(__name__)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on our own
    # form posts, and the sign-in check needs the real origin.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_CORS_HEADERS = "Authorization, Content-Type, X-CSRF-Token, Last-Event-ID, Range, If-None-Match"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FileCounters:
    """Totals of file URL downloads since start-up (plain integers: one event loop).

    Attributes:
        sent_bytes: File bytes written to clients (the metric
            ``modelregistry.http.files.sent``).
    """

    sent_bytes: int = 0


@dataclass
class WebContext:
    """What the parts of the HTTP face share.

    Attributes:
        gateway: Calls into this process's gRPC services with the caller's credential.
        services: The descriptors of the services this process serves.
        store: The blob store, when this process serves the ArtifactService (file URLs).
        tls: Whether the port is served with TLS (the session cookie is then ``Secure``).
        cors_origins: Origins allowed to call the API from a browser; empty: CORS off.
        files: What file URLs have served.
    """

    gateway: Gateway
    services: Sequence[descriptor.ServiceDescriptor]
    store: BlobStore | None = None
    tls: bool = False
    cors_origins: frozenset[str] = field(default_factory=frozenset)
    files: FileCounters = field(default_factory=FileCounters)


# Parts of the face that add routes of their own (file URLs, the UI) register here, so this
# module does not need to import them and they can be built and tested separately.
RouteInstaller = Callable[[web.Application, WebContext], None]


def build_app(context: WebContext, installers: Sequence[RouteInstaller] = ()) -> web.Application:
    """The application: security headers, CORS, the JSON API, OpenAPI, and ``installers``."""
    app = web.Application(
        middlewares=[_cors(context), _errors_as_status], client_max_size=4 * 1024**2
    )
    app.on_response_prepare.append(_headers(context))
    api = JsonApi(routes_of(context.services), context.gateway)
    document = openapi_document(api.routes)

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/openapi.json", openapi)
    for install in installers:
        install(app, context)  # before the API's catch-all, so /v1/models/…/files/… wins
    app.router.add_route("*", "/v1/{tail:.*}", api.handle)
    return app


def _cors(context: WebContext) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and origin is not None and origin in context.cors_origins:
            response = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE"
            response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
            return response
        return await handler(request)

    return middleware


def _headers(context: WebContext) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    # A response-prepare hook, not a middleware: streamed responses (files, event streams)
    # send their headers before a middleware would see them.
    async def add(request: web.Request, response: web.StreamResponse) -> None:
        for key, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if not context.cors_origins:
            return
        # Whatever the request's origin: a response cached for one origin (files are, by the
        # browser) must not be reused for another, with or without the CORS header.
        vary = response.headers.get("Vary")
        response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
        origin = request.headers.get("Origin")
        if origin is not None and origin in context.cors_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = (
                "ETag, Content-Range, Content-Length, X-Model-Version"
            )

    return add


@web.middleware
async def _errors_as_status(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Unknown API paths and bugs answer as ``google.rpc.Status`` JSON under ``/v1/``."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not request.path.startswith("/v1/") or exc.status < 400:
            raise
        code = code_pb2.NOT_FOUND if exc.status == 404 else code_pb2.INVALID_ARGUMENT
        if exc.status == 405:
            code = code_pb2.UNIMPLEMENTED
        return error_response(code, exc.reason)
    except Exception:
        _log.exception("HTTP %s %s failed", request.method, request.path)
        if request.path.startswith("/v1/"):
            return error_response(code_pb2.INTERNAL, "internal error; the server log has details")
        raise


class WebFace:
    """The HTTP server: started after the gRPC server, stopped before it."""

    def __init__(self, app: web.Application, files: FileCounters | None = None) -> None:
        self._app = app
        self.files = files or FileCounters()  # what its file URLs served (metrics read it)
        self._runner: web.AppRunner | None = None
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self.port = 0
        self.url = ""

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` after the server stopped (to close what the routes used)."""
        self._on_stop.append(callback)

    async def start(self, listen: str, ssl_context: ssl.SSLContext | None) -> None:
        """Listen on ``host:port`` (port 0: any free port, then ``self.port``)."""
        host, _, port = listen.rpartition(":")
        # No access log: request lines are logged by nobody (a URL never holds a token, but
        # query strings may hold filters a team considers private).
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]"), int(port), ssl_context=ssl_context)
        await site.start()
        server = site._server  # aiohttp keeps the asyncio server here; the bound port is on it
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else int(port)
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - not a bind
        self.url = f"{'https' if ssl_context else 'http'}://{shown}:{self.port}/"

    async def stop(self) -> None:
        """Stop listening and end open requests (event streams included)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for callback in self._on_stop:
            await callback()
        self._on_stop.clear()

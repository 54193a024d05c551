"""The web UI: server-rendered pages (Jinja2) with a little JavaScript of our own and Chart.js.

Why this stack: every page is HTML the server renders from the same RPCs a client calls, so it
works without a build step and is fast with large models (the server pages and sorts); the
JavaScript only draws charts, confirms actions and listens to the event stream. Every asset is
in this package (``static/``): the UI needs no internet.

Routes: ``/`` models, ``/models/{model}`` a model, ``/models/{model}/versions/{version}`` a
version, ``/compare`` 2 to 4 versions, ``/audit`` the audit log, ``/signin`` and ``/signout``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web
from google.rpc import code_pb2

from modelregistry_server.web.face import WebContext
from modelregistry_server.web.gateway import CallError
from modelregistry_server.web.ui import (
    audit_page,
    auth_pages,
    compare_page,
    model_actions,
    model_page,
    models_page,
    version_actions,
    version_page,
)
from modelregistry_server.web.ui.page import CONTEXT, STATIC, TEMPLATES_KEY, Page, templates

_log = logging.getLogger(__name__)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HINTS = {
    code_pb2.PERMISSION_DENIED: "Your role does not allow this. Ask a registry admin for a role "
    "binding on this model (modelregistry access grant …).",
    code_pb2.NOT_FOUND: "Check the name in the address, or go back to the list of models.",
    code_pb2.UNAVAILABLE: "The registry cannot reach its database or blob store right now. "
    "Try again in a moment; if it persists, check the server's log.",
    code_pb2.INVALID_ARGUMENT: "Check the values in the address or the form.",
    code_pb2.FAILED_PRECONDITION: "The resource is not in a state that allows this.",
    code_pb2.RESOURCE_EXHAUSTED: "The server is busy. Try again in a moment.",
}


def install(app: web.Application, context: WebContext) -> None:
    """Add the UI's routes, static files and error pages to ``app``."""
    app[CONTEXT] = context
    app[TEMPLATES_KEY] = templates()
    app.middlewares.append(_error_pages)
    static = app.router.add_static("/static/", STATIC, name="static", append_version=True)
    # Asset URLs carry a hash of the file, so a new release is never served a stale copy.
    app[TEMPLATES_KEY].globals["static"] = lambda name: str(static.url_for(filename=name))
    # Each page module lists its routes as (method, path, handler).
    pages = (auth_pages, models_page, model_page, model_actions)
    for module in (*pages, version_page, version_actions, compare_page, audit_page):
        for method, path, handler in module.ROUTES:
            app.router.add_route(method, path, handler)


@web.middleware
async def _error_pages(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """A failed call renders a page that says what happened and what to do; no credential
    (or one no longer accepted) sends the user to sign in."""
    try:
        return await handler(request)
    except CallError as exc:
        if request.path.startswith("/v1/"):
            raise
        if exc.status.code == code_pb2.UNAUTHENTICATED:
            target = "/signin?" + urlencode({"next": request.path_qs})
            raise web.HTTPSeeOther(target) from None
        page = Page(request)
        return page.render(
            "error.html",
            status=exc.http_status,
            title=_title(exc.status.code),
            message=exc.status.message,
            reason=exc.reason,
            hint=_HINTS.get(exc.status.code, "Try again; if it persists, check the server's log."),
        )
    except web.HTTPNotFound:
        if request.path.startswith(("/v1/", "/static/")):
            raise
        return Page(request).render(
            "error.html",
            status=404,
            title="Page not found",
            message=f"There is no page at {request.path}.",
            reason="",
            hint="Go back to the list of models.",
        )


def _title(code: int) -> str:
    return {
        code_pb2.PERMISSION_DENIED: "Not allowed",
        code_pb2.NOT_FOUND: "Not found",
        code_pb2.UNAVAILABLE: "Registry unavailable",
        code_pb2.INVALID_ARGUMENT: "Invalid request",
        code_pb2.FAILED_PRECONDITION: "Not possible now",
        code_pb2.RESOURCE_EXHAUSTED: "Too busy",
    }.get(code, "Something went wrong")

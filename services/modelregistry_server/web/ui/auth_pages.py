"""Sign-in with a token, and sign-out.

The token is checked by asking the registry who it is (``WhoAmI``) before the session cookie
is set, so a mistyped token is refused on the sign-in page, not on the next one. Sign-in has
no session yet to tie a CSRF token to: it is protected by the ``Origin`` check (a page of
another site cannot post a token of its choosing to log the user in as someone else).
"""

from __future__ import annotations

import grpc
from aiohttp import web

from modelregistry.access.v1 import access_service_pb2_grpc
from modelregistry.access.v1.access_service_pb2 import WhoAmIRequest
from modelregistry_server.web.gateway import bearer_metadata, status_of
from modelregistry_server.web.session import (
    CSRF_FIELD,
    clear_session,
    csrf_ok,
    set_session,
)
from modelregistry_server.web.ui.page import CONTEXT, Page, safe_next

_MAX_TOKEN_CHARS = 8192


async def signin_form(request: web.Request) -> web.StreamResponse:
    """The sign-in page."""
    page = Page(request)
    return page.render("signin.html", error="", next=safe_next(request.query.get("next")))


async def signin(request: web.Request) -> web.StreamResponse:
    """Check the token, then keep it in the session cookie and go where the user was going."""
    page = Page(request)
    form = await request.post()
    target = safe_next(str(form.get("next", "")))
    if not _same_origin(request):
        return page.render(
            "signin.html", status=403, error="Sign-in must come from this site.", next=target
        )
    token = str(form.get("token", "")).strip()
    if not token or len(token) > _MAX_TOKEN_CHARS:
        return page.render("signin.html", status=400, error="Paste your token.", next=target)
    access = access_service_pb2_grpc.AccessServiceStub(request.app[CONTEXT].gateway.channel)
    try:
        await access.WhoAmI(WhoAmIRequest(), metadata=bearer_metadata(token), timeout=10)
    except grpc.aio.AioRpcError as exc:
        status = status_of(exc)
        return page.render(
            "signin.html",
            status=401,
            error=f"That token was not accepted: {status.message}",
            next=target,
        )
    # A plain 303 response (aiohttp deprecates returning its HTTPException classes).
    response = web.Response(status=303, headers={"Location": target})
    set_session(response, token, secure=request.app[CONTEXT].tls)
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    """End the session (a form post with the page's CSRF token)."""
    page = Page(request)
    form = await request.post()
    if not csrf_ok(request, page.caller, str(form.get(CSRF_FIELD, ""))):
        raise web.HTTPForbidden(text="The sign-out form is stale: reload the page and try again.")
    response = web.Response(status=303, headers={"Location": "/signin"})
    clear_session(response, secure=request.app[CONTEXT].tls)
    return response


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        # Browsers send Origin on every POST; a client without one is not a browser page.
        return origin is None
    return origin == f"{request.scheme}://{request.host}"


ROUTES = [
    ("GET", "/signin", signin_form),
    ("POST", "/signin", signin),
    ("POST", "/signout", signout),
]

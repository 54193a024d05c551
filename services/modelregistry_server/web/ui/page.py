"""What every page handler uses: the caller's gRPC stubs, templates, and error pages.

A page is rendered on the server from the same RPCs a gRPC client calls (through
``web.gateway``, with the signed-in user's credential), so a page can show only what its user
may read. Templates autoescape everything; there is no inline script or style (the CSP forbids
both): data a script needs travels in ``<script type="application/json">`` blocks.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import grpc
import jinja2
from aiohttp import web
from google.protobuf import timestamp_pb2

from modelregistry.access.v1 import access_service_pb2_grpc
from modelregistry.access.v1.access_service_pb2 import (
    TestPermissionsRequest,
    WhoAmIRequest,
    WhoAmIResponse,
)
from modelregistry.metadata.v1 import metadata_service_pb2_grpc, model_version_pb2
from modelregistry_server.web.face import WebContext
from modelregistry_server.web.gateway import CallError, bearer_metadata, status_of
from modelregistry_server.web.session import Caller, caller_of

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
CONTEXT: web.AppKey[WebContext] = web.AppKey("context", WebContext)
TEMPLATES_KEY: web.AppKey[jinja2.Environment] = web.AppKey("templates", jinja2.Environment)
_T = TypeVar("_T")
CALL_DEADLINE_S = 30.0


class Page:
    """One page request: who asks, their stubs, and rendering."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.caller: Caller = caller_of(request)
        context = request.app[CONTEXT]
        channel = context.gateway.channel
        self.metadata = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        self.access = access_service_pb2_grpc.AccessServiceStub(channel)
        self._me: WhoAmIResponse | None = None

    async def call(self, rpc: Callable[..., Awaitable[_T]], request: Any) -> _T:
        """``rpc(request)`` with the caller's credential.

        Raises:
            CallError: The call failed (the page's error handler renders it).
        """
        metadata = bearer_metadata(self.caller.credential)
        try:
            return await rpc(request, metadata=metadata, timeout=CALL_DEADLINE_S)
        except grpc.aio.AioRpcError as exc:
            raise CallError(status_of(exc)) from None

    async def me(self) -> WhoAmIResponse:
        """The signed-in principal (an unauthenticated caller gets the sign-in page)."""
        if self._me is None:
            self._me = await self.call(self.access.WhoAmI, WhoAmIRequest())
        return self._me

    async def allowed(self, resource: str, *permissions: str) -> set[str]:
        """Which of ``permissions`` the caller holds on ``resource`` (to show actions)."""
        answer = await self.call(
            self.access.TestPermissions,
            TestPermissionsRequest(resource=resource, permissions=list(permissions)),
        )
        return set(answer.permissions)

    def render(self, template: str, status: int = 200, **values: Any) -> web.Response:
        """``template`` with ``values`` and what every page shows (user, CSRF token)."""
        env = self.request.app[TEMPLATES_KEY]
        html = env.get_template(template).render(
            me=self._me,
            csrf_token=self.caller.csrf_token,
            path=self.request.path_qs,
            **values,
        )
        return web.Response(
            text=html,
            status=status,
            content_type="text/html",
            headers={"Cache-Control": "no-store"},
        )


def templates() -> jinja2.Environment:
    """The template environment: autoescaping on, undefined names an error."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        size=human_size,
        short=lambda digest: str(digest)[:12],
        state=state_name,
        param=param_text,
        metric=metric_text,
        urlq=lambda value: quote(str(value), safe=""),
    )
    env.globals.update(query=query_string)
    return env


def when(stamp: timestamp_pb2.Timestamp | None) -> str:
    """A timestamp as ``2026-12-03 09:25 UTC``; ``—`` when unset."""
    if stamp is None or (stamp.seconds == 0 and stamp.nanos == 0):
        return "—"
    moment = dt.datetime.fromtimestamp(stamp.seconds, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def human_size(size: int) -> str:
    """Bytes in binary units: ``1.5 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def state_name(state: int) -> str:
    """``READY`` for ``MODEL_VERSION_STATE_READY``."""
    name = model_version_pb2.ModelVersionState.Name(state)  # type: ignore[arg-type]
    return name.removeprefix("MODEL_VERSION_STATE_")


def param_text(value: model_version_pb2.ParamValue | None) -> str:
    """A parameter's value as text."""
    if value is None:
        return ""
    kind = value.WhichOneof("kind")
    if kind is None:
        return ""
    shown = getattr(value, kind)
    if kind == "bool_value":
        return "true" if shown else "false"
    return str(shown)


def metric_text(value: float | None) -> str:
    """A metric with up to 6 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}"


def query_string(base: Mapping[str, Any], **changes: Any) -> str:
    """``base`` (a request's query, repeated keys kept) with ``changes`` applied, as
    ``?a=1&b=2``; a change to None removes the key, a list value repeats it."""
    pairs = [(k, v) for k, v in base.items() if k not in changes]
    for key, value in changes.items():
        if isinstance(value, list | tuple):
            pairs.extend((key, item) for item in value)
        elif value is not None:
            pairs.append((key, value))
    kept = [(k, v) for k, v in pairs if v not in ("", None)]
    return "?" + urlencode(kept) if kept else "?"


def safe_next(target: str | None) -> str:
    """A same-site path to go to after signing in (anything else goes to ``/``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target

"""The JSON API: every annotated RPC at its HTTP route, in the proto JSON mapping.

Requests and responses are the proto JSON mapping (lowerCamelCase names; proto names are
accepted too). Errors are a ``google.rpc.Status`` in JSON, with the same ``ErrorInfo`` a gRPC
caller gets, and the HTTP status of its code. A server-streaming method (``WatchModelEvents``)
is served as Server-Sent Events: one ``data:`` line of JSON per message, its ``id:`` the
event id, and ``Last-Event-ID`` resumes after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from modelregistry_server.web.gateway import (
    HTTP_STATUS,
    CallError,
    Gateway,
    ServerStream,
    error_status,
)
from modelregistry_server.web.session import caller_of, csrf_ok
from modelregistry_server.web.transcoding import RequestShapeError, Route

_log = logging.getLogger(__name__)
# The largest JSON request body accepted; a gRPC request is at most 4 MiB too.
MAX_BODY_BYTES = 4 * 1024 * 1024
# An SSE comment line this often keeps proxies from closing an idle event stream.
SSE_HEARTBEAT_S = 15.0
# How long a streaming call that sends neither headers nor a message may take to start.
_SILENT_START_S = 0.5
# The response header of WatchModelEvents holding the event id its stream starts after.
WATCH_START_HEADER = "x-modelregistry-watch-after-event-id"


def status_response(
    status: status_pb2.Status, headers: dict[str, str] | None = None
) -> web.Response:
    """``status`` as ``google.rpc.Status`` JSON with its code's HTTP status."""
    document = json_format.MessageToDict(status)
    return web.json_response(
        document, status=HTTP_STATUS.get(status.code, 500), headers=headers, dumps=_dumps
    )


def error_response(code: int, message: str) -> web.Response:
    """An error found by the HTTP layer itself, in the same shape as the services' errors."""
    return status_response(error_status(code, message))


def message_response(message: Message) -> web.Response:
    """``message`` in the proto JSON mapping."""
    return web.json_response(json_format.MessageToDict(message), dumps=_dumps)


def _dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


class JsonApi:
    """Matches ``/v1/…`` requests to the generated routes and forwards them."""

    def __init__(self, routes: Sequence[Route], gateway: Gateway) -> None:
        self._routes = list(routes)
        self._gateway = gateway

    @property
    def routes(self) -> list[Route]:
        """The routes served, in matching order."""
        return list(self._routes)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one API request (the handler of ``/v1/{tail:.*}``)."""
        raw_path = request.raw_path.split("?", 1)[0]
        allowed: list[str] = []
        for route in self._routes:
            values = route.match(request.method, raw_path)
            if values is None:
                if route.pattern.fullmatch(raw_path):
                    allowed.append(route.http_method)
                continue
            return await self._serve(request, route, values)
        if allowed:
            return error_response(
                code_pb2.UNIMPLEMENTED,
                f"{request.method} is not supported on {raw_path}; use {', '.join(allowed)}",
            )
        return error_response(code_pb2.NOT_FOUND, f"no API method at {raw_path}; see /openapi.json")

    async def _serve(
        self, request: web.Request, route: Route, values: dict[str, str]
    ) -> web.StreamResponse:
        caller = caller_of(request)
        if not csrf_ok(request, caller):
            return error_response(
                code_pb2.PERMISSION_DENIED,
                "this request changes something but carries no valid CSRF token "
                "(send the page's X-CSRF-Token header, or an Authorization header instead)",
            )
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return error_response(
                code_pb2.INVALID_ARGUMENT, f"the request body is over {MAX_BODY_BYTES} bytes"
            )
        # Read even where the method takes no body, so that one sent (a DELETE's
        # ``{"force": true}``) is refused rather than silently ignored.
        body = await request.read() if route.body or request.body_exists else b""
        query = list(request.query.items())
        if route.streaming:
            last_event = request.headers.get("Last-Event-ID", "")
            if last_event.isdigit() and not any(
                k in ("after_event_id", "afterEventId") for k, _ in query
            ):
                query.append(("after_event_id", last_event))
        try:
            message = route.build_request(values, query, body)
        except RequestShapeError as exc:
            return error_response(code_pb2.INVALID_ARGUMENT, str(exc))
        if route.streaming:
            return await self._stream(request, route, message, caller.credential)
        try:
            response = await self._gateway.call(route.method, message, caller.credential)
        except CallError as exc:
            return status_response(exc.status)
        return message_response(response)

    async def _stream(
        self, request: web.Request, route: Route, message: Message, credential: str | None
    ) -> web.StreamResponse:
        """Server-Sent Events, once the call has started; a refusal is answered as JSON."""
        call = self._gateway.open_stream(route.method, message, credential)
        responses = call.messages()
        started = asyncio.ensure_future(anext(responses))
        first: asyncio.Future[Message] | None = started
        try:
            start_id = await _started(call, started)
        except CallError as exc:
            return status_response(exc.status)
        except StopAsyncIteration:
            first, start_id = None, ""
        stream = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await stream.prepare(request)
        # An id with no data sets the browser's Last-Event-ID without an event: a stream that
        # drops before its first event resumes where it started, missing nothing.
        await stream.write(
            b": connected\n" + (f"id: {start_id}\n\n" if start_id else "\n").encode()
        )
        pending = first
        try:
            while pending is not None:
                try:
                    event = await asyncio.wait_for(asyncio.shield(pending), SSE_HEARTBEAT_S)
                except TimeoutError:
                    await stream.write(b": heartbeat\n\n")
                    continue
                except StopAsyncIteration:
                    break
                await stream.write(_sse_event(event))
                pending = asyncio.ensure_future(anext(responses))
        except CallError as exc:
            await stream.write(
                b"event: error\ndata: "
                + _dumps(json_format.MessageToDict(exc.status)).encode()
                + b"\n\n"
            )
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if pending is not None and not pending.done():
                # The generator is running inside this task: closing it before the task has
                # ended fails ("already running") and would leave the call open.
                pending.cancel()
                await asyncio.wait({pending})
            await responses.aclose()
        return stream


async def _started(call: ServerStream, first: asyncio.Future[Message]) -> str:
    """Wait until the stream has started; return the event id it starts after, if it says.

    It has started when the server sends its headers (the watch sends them once its start is
    fixed, with that event id) or a first message. A refusal (no permission, an unknown
    model, a bad ``after_event_id``) comes before either and is raised here as a CallError,
    so that it can be answered with its HTTP status. A stream whose server says nothing
    starts after a short wait.

    Raises:
        CallError: The call was refused.
        StopAsyncIteration: The call ended at once without a message.
    """
    headers = asyncio.ensure_future(call.headers())
    try:
        waiting: set[asyncio.Future[Any]] = {first, headers}
        done, _ = await asyncio.wait(
            waiting, timeout=_SILENT_START_S, return_when=asyncio.FIRST_COMPLETED
        )
        if headers in done and not headers.result():
            # No headers: the call ended without starting (a refusal), or the server only
            # sends them with its first message.
            await asyncio.wait({first}, timeout=_SILENT_START_S)
        if first.done():
            first.result()
        start = headers.result().get(WATCH_START_HEADER, "") if headers.done() else ""
    finally:
        headers.cancel()
    return start if start.isdigit() else ""


def _sse_event(message: Message) -> bytes:
    document = json_format.MessageToDict(message)
    lines = []
    event_id = document.get("eventId")
    if event_id:
        lines.append(f"id: {event_id}")
    event_type = document.get("type")
    if isinstance(event_type, str):
        lines.append(f"event: {event_type}")
    lines.append("data: " + _dumps(document))
    return ("\n".join(lines) + "\n\n").encode()

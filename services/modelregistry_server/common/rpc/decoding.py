"""Requests that are not the message they claim to be: ``INVALID_ARGUMENT``, not ``UNKNOWN``.

grpc decodes a request before any handler or interceptor code runs, and a decoding failure
(a corrupt wire format, a string field that is not UTF-8) ends the call with ``UNKNOWN``
("Unexpected DecodeError"): to a client that looks like a server bug. So every handler gets a
deserializer that turns such bytes into an ``Undecodable`` marker instead of raising, and the
handler answers the marker with ``INVALID_ARGUMENT`` (reason ``REQUEST_MALFORMED``). A client
stream raises the error from its request iterator, where the servicer's own error handling
ends the call (and an upload cleans up as for any other bad chunk).

A request that decodes is then checked for control characters in its text
(``text_fields.py``), the one rule every string field of every RPC shares.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from modelregistry_server.common.kernel.errors import InvalidArgument
from modelregistry_server.common.rpc.auth import is_open
from modelregistry_server.common.rpc.status import abort_with
from modelregistry_server.common.rpc.text_fields import control_character_error

_Handler = Any


class Undecodable:
    """What a request's bytes became when they did not decode."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


def malformed(message_type: str, why: str) -> InvalidArgument:
    """The error of a request that is not a valid ``message_type``."""
    return InvalidArgument(
        "(request)",
        f"is not a valid {message_type} message ({why[:200]}); strings must be UTF-8",
        reason="REQUEST_MALFORMED",
    )


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # DecodeError, or a UnicodeDecodeError from a string field
            return Undecodable(str(exc) or type(exc).__name__)

    return decode


class RequestDecodingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Answers undecodable requests with ``INVALID_ARGUMENT``. Place it before every
    interceptor that reads the request (the permission check does)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """Wrap the method's handler with a deserializer that cannot fail."""
        handler = await continuation(handler_call_details)
        # grpc's own health and reflection servicers are left as they are (Health.Watch is a
        # coroutine that writes to the context, not an async generator).
        if handler is None or is_open(handler_call_details.method):
            return handler
        return _wrap(handler, handler_call_details.method.rsplit("/", 1)[-1])


def _problem(request: Any, what: str) -> InvalidArgument | None:
    if isinstance(request, Undecodable):
        return malformed(what, request.why)
    return control_character_error(request)


def _wrap(handler: _Handler, method: str) -> _Handler:
    serializers = {
        "request_deserializer": _tolerant(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    what = f"{method} request"

    async def refuse(request: Any, context: Any) -> None:
        error = _problem(request, what)
        if error is not None:
            await abort_with(context, error)

    if handler.unary_unary is not None:
        unary_unary = handler.unary_unary

        async def unary(request: Any, context: Any) -> Any:
            await refuse(request, context)
            return await unary_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(unary, **serializers)
    if handler.unary_stream is not None:
        unary_stream: Any = handler.unary_stream

        async def server_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            await refuse(request, context)
            async for response in unary_stream(request, context):
                yield response

        return grpc.unary_stream_rpc_method_handler(server_stream, **serializers)

    async def checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for request in requests:
            error = _problem(request, what)
            if error is not None:
                raise error
            yield request

    if handler.stream_unary is not None:
        stream_unary = handler.stream_unary

        async def client_stream(requests: Any, context: Any) -> Any:
            return await stream_unary(checked(requests), context)

        return grpc.stream_unary_rpc_method_handler(client_stream, **serializers)
    stream_stream: Any = handler.stream_stream

    async def bidi(requests: Any, context: Any) -> AsyncIterator[Any]:
        async for response in stream_stream(checked(requests), context):
            yield response

    return grpc.stream_stream_rpc_method_handler(bidi, **serializers)

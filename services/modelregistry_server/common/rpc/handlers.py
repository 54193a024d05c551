"""Error translation for servicer methods, shared by both services.

Each service passes a function that maps its own domain exceptions to a ``grpc.Status`` (so the
two services stay independent); anything unmapped is a bug and becomes ``INTERNAL`` without
leaking SQL text or stack traces to the client.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from modelregistry_server.common.rpc.status import internal_error_status, unimplemented_status

ErrorMapper = Callable[[Exception], grpc.Status | None]
_R = TypeVar("_R")
_Method = Callable[..., Awaitable[_R]]


async def _abort(context: grpc.aio.ServicerContext[Any, Any], status: grpc.Status) -> None:
    await context.abort(status.code, status.details, status.trailing_metadata)


def unary_errors(mapper: ErrorMapper) -> Callable[[_Method[_R]], _Method[_R]]:
    """Decorate a unary servicer method so that domain errors become rich statuses."""

    def decorate(method: _Method[_R]) -> _Method[_R]:
        @functools.wraps(method)
        async def wrapper(self: Any, request: Any, context: Any) -> _R:
            try:
                return await method(self, request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                status = mapper(exc) or internal_error_status(exc)
                await _abort(context, status)
                raise AssertionError("unreachable: abort raises") from exc

        return wrapper

    return decorate


def stream_errors(
    mapper: ErrorMapper,
) -> Callable[[Callable[..., AsyncIterator[_R]]], Callable[..., AsyncIterator[_R]]]:
    """Decorate a server-streaming servicer method (an async generator) likewise."""

    def decorate(method: Callable[..., AsyncIterator[_R]]) -> Callable[..., AsyncIterator[_R]]:
        @functools.wraps(method)
        async def wrapper(self: Any, request: Any, context: Any) -> AsyncIterator[_R]:
            try:
                async for item in method(self, request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                status = mapper(exc) or internal_error_status(exc)
                await _abort(context, status)

        return wrapper

    return decorate


def fill_unimplemented(servicer: type, service: ServiceDescriptor) -> None:
    """Give ``servicer`` an UNIMPLEMENTED handler for every RPC of ``service`` it lacks.

    The generated base class already answers UNIMPLEMENTED, but with a bare "Method not
    implemented!"; ours names the method and says it is planned, with an ``ErrorInfo``.
    """
    # Ours: defined on the servicer or a mixin of it, not on the generated base class.
    ours = [k for k in servicer.__mro__ if not k.__module__.endswith("_pb2_grpc")]
    for method in service.methods:
        if any(method.name in vars(k) for k in ours):
            continue
        setattr(servicer, method.name, _unimplemented_handler(method.name, method.server_streaming))


def _unimplemented_handler(name: str, streaming: bool) -> Callable[..., Any]:
    async def unary(self: Any, request: Any, context: Any) -> Any:
        status = unimplemented_status(name)
        await _abort(context, status)

    async def stream(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
        status = unimplemented_status(name)
        await _abort(context, status)
        yield  # unreachable; makes this an async generator like every streaming handler

    handler = stream if streaming else unary
    handler.__name__ = name
    handler.__doc__ = f"{name} is not implemented in this server version yet."
    return handler

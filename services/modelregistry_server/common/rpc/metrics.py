"""Per-RPC metrics: how long each call took, under which status, and the streams open now.

OpenTelemetry's semantic conventions for RPC: the histogram ``rpc.server.duration`` (ms) with
``rpc.system`` (``grpc``), ``rpc.service``, ``rpc.method`` and ``rpc.grpc.status_code``; its
count is the number of calls. Streaming calls are measured from the first message to the
status, and counted in ``rpc.server.active_streams`` while they are open.

The interceptor is the outermost one, so a call refused by authentication, by the permission
check or by a stream bound is counted with the status it got (16, 7, 8). Health checks are
not measured: orchestrators poll them every second or two, and their watches never end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import grpc

from modelregistry_server.common.metrics import CumulativeHistogram, HistogramSeries

if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Handler = Any
    _Interceptor = grpc.aio.ServerInterceptor

_HEALTH = "/grpc.health.v1.Health/"
_OK, _CANCELLED, _UNKNOWN = 0, 1, 2
_CODE_VALUES: dict[grpc.StatusCode, int] = {code: code.value[0] for code in grpc.StatusCode}


class MethodMetrics:
    """One method's histogram series (one per status code, made once) and open streams."""

    def __init__(self, full_method: str, duration: CumulativeHistogram) -> None:
        service, _, method = full_method.lstrip("/").partition("/")
        self.base: Mapping[str, str] = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": method,
        }
        self._duration = duration
        self._by_code: dict[int, HistogramSeries] = {}
        self.streaming = False
        self.open_streams = 0

    def series(self, code: int) -> HistogramSeries:
        """The series of calls that ended with ``code`` (the same object every time: nothing
        is built per call)."""
        series = self._by_code.get(code)
        if series is None:
            attributes: dict[str, str | int] = {**self.base, "rpc.grpc.status_code": code}
            series = self._by_code[code] = self._duration.series(attributes)
        return series


def _status(context: Any, error: BaseException | None) -> int:
    """The status code a call ended with: the one set or aborted with, else by ``error``."""
    code: object = context.code()
    if isinstance(code, grpc.StatusCode):
        return _CODE_VALUES[code]
    if isinstance(code, int):
        return code
    if error is None:
        return _OK
    # A client that went away cancels the handler's task (or closes its stream's generator).
    cancelled = isinstance(error, asyncio.CancelledError | GeneratorExit)
    return _CANCELLED if cancelled else _UNKNOWN


class RpcMetricsInterceptor(_Interceptor):
    """Records every call's duration and status, and counts open streams per method."""

    def __init__(self, duration: CumulativeHistogram) -> None:
        self._duration = duration
        self.methods: dict[str, MethodMetrics] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        """Wrap the handler (whatever the inner interceptors made of it) in a measurement."""
        handler = await continuation(handler_call_details)
        name: str = handler_call_details.method
        if handler is None or name.startswith(_HEALTH):
            return handler
        method = self.methods.get(name)
        if method is None:
            method = self.methods[name] = MethodMetrics(name, self._duration)
        return self._measured(handler, method)

    def _measured(self, handler: _Handler, method: MethodMetrics) -> _Handler:
        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }

        def finish(started: float, context: Any, error: BaseException | None) -> None:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            method.series(_status(context, error)).record(elapsed_ms)

        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def unary_unary(request: Any, context: Any) -> Any:
                started, error = time.perf_counter(), None
                try:
                    return await unary(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    finish(started, context, error)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **serializers)
        method.streaming = True
        if handler.stream_unary is not None:
            client_stream = handler.stream_unary

            async def stream_unary(requests: Any, context: Any) -> Any:
                started, error = time.perf_counter(), None
                method.open_streams += 1
                try:
                    return await client_stream(requests, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    method.open_streams -= 1
                    finish(started, context, error)

            return grpc.stream_unary_rpc_method_handler(stream_unary, **serializers)
        # Server streams are async generators here (as in common/rpc/auth.py).
        streaming: Any = handler.unary_stream or handler.stream_stream

        async def server_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            started, error = time.perf_counter(), None
            method.open_streams += 1
            try:
                async for response in streaming(request, context):
                    yield response
            except BaseException as exc:
                error = exc
                raise
            finally:
                method.open_streams -= 1
                finish(started, context, error)

        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(server_stream, **serializers)
        return grpc.stream_stream_rpc_method_handler(server_stream, **serializers)

    def open_streams(self) -> list[tuple[float, Mapping[str, str]]]:
        """Streams open now, per streaming method that has had one (for an observable)."""
        return [(m.open_streams, m.base) for m in list(self.methods.values()) if m.streaming]

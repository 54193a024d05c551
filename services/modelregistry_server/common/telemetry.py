"""OpenTelemetry tracing of every RPC and database call, and trace ids in the logs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from modelregistry_server.common.telemetry_config import Exporter

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s] %(message)s"
_HEALTH_METHODS = "/grpc.health.v1.Health/"
# What configure_tracing decided: None until it runs (then RPCs get OpenTelemetry's full
# server interceptor, for whatever tracer provider the embedding program installed).
_recording: bool | None = None
# The SDK's own generator (what a TracerProvider uses): random, never the invalid id 0.
_IDS = RandomIdGenerator()

if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor


class TraceIdFilter(logging.Filter):
    """Adds ``trace_id`` (32 hex, or ``-`` outside a span) to every log record.

    Lets an operator jump from a log line to the trace of the call that wrote it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the current span's trace id."""
        context = trace.get_current_span().get_span_context()
        record.trace_id = format(context.trace_id, "032x") if context.is_valid else "-"
        return True


def current_trace_id() -> str:
    """Return the current trace id as 32 hex characters, or "" outside a span."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def configure_logging(level: str) -> None:
    """Send logs to stderr with trace ids."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    handler.addFilter(TraceIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def configure_tracing(
    exporter: Exporter,
    service_name: str = "modelregistry",
    extra_exporter: SpanExporter | None = None,
) -> TracerProvider:
    """Install a tracer provider; instrument asyncpg when spans go somewhere.

    With exporter ``none`` (and no ``extra_exporter``) nothing would ever read a span, so the
    provider samples nothing (``ALWAYS_OFF``) and asyncpg is not instrumented: recording spans
    that are then thrown away cost ~0.5 ms of server CPU per ``ResolveModelVersion``
    (bench/README.md). The SDK still gives every unsampled span a valid trace id, so log lines,
    audit rows and internal-error messages keep their ``trace_id``. With an exporter, spans are
    sampled by the SDK's default (``OTEL_TRACES_SAMPLER``, else every span, parent-based).
    ``otlp`` honours the standard ``OTEL_EXPORTER_OTLP_*`` environment variables.
    ``extra_exporter`` receives every span as well (tests use an in-memory one).
    """
    global _recording  # one process-wide decision, like the tracer provider
    recording = exporter != "none" or extra_exporter is not None
    _recording = recording
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        # None = the SDK default: OTEL_TRACES_SAMPLER, else parent-based always-on.
        sampler=None if recording else ALWAYS_OFF,
    )
    if exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        # Imported lazily: the OTLP exporter pulls in its own gRPC channel set-up.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if extra_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(extra_exporter))
    trace.set_tracer_provider(provider)
    if recording:
        instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
    return provider


def rpc_tracing_interceptor() -> grpc.aio.ServerInterceptor[Any, Any]:
    """Return the interceptor that opens a server span for every RPC.

    Health checks are left out: they are polled constantly (noise), and the interceptor
    expects streaming handlers to be async generators, which the aio health servicer's
    ``Watch`` (a coroutine writing through the context) is not.

    When ``configure_tracing`` chose not to record (no exporter), unary calls get only a trace
    id (see ``_TraceIdInterceptor``); streaming calls keep the full interceptor.
    """
    interceptor: grpc.aio.ServerInterceptor[Any, Any] = aio_server_interceptor(  # type: ignore[no-untyped-call]
        filter_=filters.negate(filters.health_check())
    )
    if _recording is False:
        return _TraceIdInterceptor(interceptor)
    return interceptor


class _TraceIdInterceptor(_Interceptor):
    """Gives each unary call a trace id (for logs, audit rows, error messages), and no span.

    OpenTelemetry's server interceptor costs ~0.15 ms of CPU per call even when nothing is
    sampled (its method-name filter alone is a third of that), as much as the whole rest of a
    cached ``ResolveModelVersion`` (bench/README.md). Without an exporter its spans are never
    read, so unary calls get a non-recording span with a fresh random trace id instead.
    Streaming calls are rare and long: they go through ``full`` unchanged.
    """

    def __init__(self, full: grpc.aio.ServerInterceptor[Any, Any]) -> None:
        self._full = full

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        """Wrap unary-unary handlers; hand anything else to the full interceptor."""
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_HEALTH_METHODS):
            return handler
        if handler.unary_unary is None:

            async def resolved(_details: grpc.HandlerCallDetails) -> _Handler:
                return handler

            full: _Handler = await self._full.intercept_service(resolved, handler_call_details)
            return full
        behavior = handler.unary_unary

        async def with_trace_id(request: Any, context: Any) -> Any:
            span = trace.NonRecordingSpan(
                trace.SpanContext(
                    trace_id=_IDS.generate_trace_id(),
                    span_id=_IDS.generate_span_id(),
                    is_remote=False,
                )
            )
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                return await behavior(request, context)
            finally:
                otel_context.detach(token)

        return grpc.unary_unary_rpc_method_handler(
            with_trace_id,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

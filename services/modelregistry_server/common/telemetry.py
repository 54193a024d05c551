"""OpenTelemetry tracing of every RPC and database call, and trace ids in the logs."""

from __future__ import annotations

import logging
import sys
from typing import Any

import grpc
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

from modelregistry_server.common.config import Exporter

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s] %(message)s"


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
    """Install a tracer provider and instrument asyncpg.

    Spans are recorded (and trace ids exist for the logs) even with exporter ``none``; the
    exporter only decides where finished spans go. ``otlp`` honours the standard
    ``OTEL_EXPORTER_OTLP_*`` environment variables. ``extra_exporter`` receives every span
    as well (tests use an in-memory one).
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    span_exporter: SpanExporter | None = None
    if exporter == "console":
        span_exporter = ConsoleSpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    elif exporter == "otlp":
        # Imported lazily: the OTLP exporter pulls in its own gRPC channel set-up.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if extra_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(extra_exporter))
    trace.set_tracer_provider(provider)
    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
    return provider


def rpc_tracing_interceptor() -> grpc.aio.ServerInterceptor[Any, Any]:
    """Return the interceptor that opens a server span for every RPC.

    Health checks are left out: they are polled constantly (noise), and the interceptor
    expects streaming handlers to be async generators, which the aio health servicer's
    ``Watch`` (a coroutine writing through the context) is not.
    """
    interceptor: grpc.aio.ServerInterceptor[Any, Any] = aio_server_interceptor(  # type: ignore[no-untyped-call]
        filter_=filters.negate(filters.health_check())
    )
    return interceptor

"""Tracing of RPCs and database calls, trace ids in logs, and graceful shutdown order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2
from modelregistry_server.common.telemetry import TraceIdFilter, configure_tracing
from modelregistry_server.server import RegistryServer
from tests.conftest import RunningRegistry, _start_registry

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

_SPANS = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    # The global tracer provider can be set once per process; tracers created earlier (by
    # other tests' servers) delegate to it from then on.
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        pytest.fail("a tracer provider was installed before this module; run it first")
    configure_tracing("none", extra_exporter=_SPANS)
    return _SPANS


async def test_an_rpc_and_its_database_calls_share_one_trace(
    spans: InMemorySpanExporter, registry: RunningRegistry
) -> None:
    spans.clear()
    await registry.metadata.CreateModel(
        ms.CreateModelRequest(model_id="traced", model=model_pb2.Model())
    )
    finished = spans.get_finished_spans()
    rpc = [s for s in finished if s.name.endswith("MetadataService/CreateModel")]
    assert len(rpc) == 1, [s.name for s in finished]
    trace_id = rpc[0].context.trace_id
    database = [
        s
        for s in finished
        if s.context.trace_id == trace_id and (s.attributes or {}).get("db.system") == "postgresql"
    ]
    assert database, f"no PostgreSQL span in the RPC's trace: {[s.name for s in finished]}"


def test_log_records_carry_the_current_trace_id(spans: InMemorySpanExporter) -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    with trace.get_tracer("test").start_as_current_span("work") as span:
        TraceIdFilter().filter(record)
        expected = format(span.get_span_context().trace_id, "032x")
    assert record.__dict__["trace_id"] == expected
    outside = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    TraceIdFilter().filter(outside)
    assert outside.__dict__["trace_id"] == "-"


@pytest.fixture
async def own_registry(database_url: str, tmp_path: Path) -> AsyncIterator[RegistryServer]:
    """A registry the test stops itself, with a shutdown grace to observe NOT_SERVING in."""
    async for running in _start_registry(database_url, tmp_path / "data", ["--shutdown-grace=2"]):
        yield running.server


async def test_shutdown_reports_not_serving_before_the_server_stops(
    own_registry: RegistryServer,
) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{own_registry.port}")
    health = health_pb2_grpc.HealthStub(channel)
    watch = health.Watch(
        health_pb2.HealthCheckRequest(service="modelregistry.metadata.v1.MetadataService")
    )
    statuses = []
    first = await watch.read()
    statuses.append(first.status)
    stopping = asyncio.create_task(own_registry.stop())
    try:
        reply = await asyncio.wait_for(watch.read(), timeout=5)
        statuses.append(reply.status)
    finally:
        await stopping
        await channel.close(None)
    assert statuses == [
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    ]

"""OpenTelemetry metrics: one meter provider per server, its exporters, and ``/metrics``.

The provider is the server's own, not the process-global one: a process (a test) may run
several servers, each with its own readers, and stopping one flushes and ends only its
exporters. What is measured, and what it costs per call: deploy/docs/metrics.md.

Nothing on a call's path goes through the SDK's synchronous instruments:

- Histograms (call durations, pool waits) are ``CumulativeHistogram``s: one series per
  attribute set, looked up once and kept by the caller, so recording is a bisect and a few
  additions (~1 µs). The SDK's ``Histogram.record`` cleans and hashes the attribute set on
  every call: ~10 µs idle, and it was most of the metrics' cost on a cached resolve (about
  +25% of the server's CPU per call under load, bench/README.md). At each collection the
  series are handed to the exporters as an ordinary cumulative OpenTelemetry histogram.
- Everything else is a plain integer the code already keeps (bytes of each Write and Read
  message, cache hits, open streams, pool sizes, GC totals, refusals), read by an observable
  instrument only when a reader collects: a scrape or an OTLP export. Counting a 1 MiB message
  is one integer add.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from modelregistry_server.common.telemetry_config import MetricsConfig

_log = logging.getLogger(__name__)
SCOPE = "modelregistry"
# Milliseconds: a cached resolve takes ~1 ms, a push's commit tens, an upload stream seconds
# to minutes (a watch lasts as long as its client; it lands in the last bucket).
DURATION_BUCKETS_MS = (
    0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
)  # fmt: skip
# Seconds a database connection took to come out of the pool: ~0 while one is idle; 10 s is
# the acquire timeout (common/adapters/db.py), after which the call fails.
WAIT_BUCKETS_S = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10)
Attributes = Mapping[str, str | int]
# Reads the current values: (value, attributes) pairs, at collection time only.
Reading = Callable[[], Iterable[tuple[float, Attributes]]]
# Updates values that take I/O to read (a database count), which a collection cannot await.
Refresh = Callable[[], Awaitable[None]]
# How often those are refreshed for the OTLP reader (a scrape refreshes them first itself).
REFRESH_INTERVAL_S = 15.0
REFRESH_TIMEOUT_S = 2.0


class HistogramSeries:
    """One attribute set's buckets (``counts[i]``: values in ``(bounds[i-1], bounds[i]]``)."""

    __slots__ = ("_bounds", "attributes", "counts", "max", "min", "sum")

    def __init__(self, bounds: tuple[float, ...], attributes: Attributes) -> None:
        self._bounds = bounds
        self.attributes = dict(attributes)
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def record(self, value: float) -> None:
        """Count one measurement (the event loop's thread only)."""
        self.counts[bisect.bisect_left(self._bounds, value)] += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value


class CumulativeHistogram:
    """An explicit-bucket histogram aggregated here and exported as an OpenTelemetry one."""

    def __init__(self, name: str, unit: str, description: str, bounds: Iterable[float]) -> None:
        self.name, self.unit, self.description = name, unit, description
        self.bounds = tuple(bounds)
        self._series: list[HistogramSeries] = []
        self._start = time.time_ns()

    def series(self, attributes: Attributes) -> HistogramSeries:
        """A new series for ``attributes``; the caller keeps it and records into it."""
        series = HistogramSeries(self.bounds, attributes)
        self._series.append(series)
        return series

    def metric(self, now: int) -> Metric | None:
        """The series as a cumulative histogram; None before anything was recorded."""
        points = []
        for series in list(self._series):
            counts = list(series.counts)  # one copy: an OTLP export reads from its own thread
            count = sum(counts)
            if count:
                points.append(
                    HistogramDataPoint(
                        attributes=series.attributes,
                        start_time_unix_nano=self._start,
                        time_unix_nano=now,
                        count=count,
                        sum=series.sum,
                        bucket_counts=counts,
                        explicit_bounds=self.bounds,
                        min=series.min,
                        max=series.max,
                    )
                )
        if not points:
            return None
        data = Histogram(points, AggregationTemporality.CUMULATIVE)
        return Metric(self.name, self.description, self.unit, data)


class RegistryMetrics:
    """The server's meter provider, its instruments, and the Prometheus endpoint if any."""

    def __init__(self, config: MetricsConfig, service_name: str = "modelregistry") -> None:
        readers: list[MetricReader] = []
        self.registry: Any = None  # prometheus_client's CollectorRegistry with --metrics prometheus
        self._histograms: list[CumulativeHistogram] = []
        self._resource = Resource.create({"service.name": service_name})
        # Each reader adds the histograms' series to what the SDK collected, then exports.
        add_histograms = self._add_histograms
        if "prometheus" in config.exporters:
            # Imported here: a server without metrics never loads prometheus_client.
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import CollectorRegistry

            class PrometheusReader(PrometheusMetricReader):
                def _receive_metrics(
                    self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kw: Any
                ) -> None:
                    super()._receive_metrics(add_histograms(metrics_data), timeout_millis, **kw)

            self.registry = CollectorRegistry()
            # Scope labels (otel_scope_name=…) would repeat the same value on every series.
            readers.append(PrometheusReader(registry=self.registry, scope_info_enabled=False))
        if "otlp" in config.exporters:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            class OtlpReader(PeriodicExportingMetricReader):
                def _receive_metrics(
                    self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kw: Any
                ) -> None:
                    super()._receive_metrics(add_histograms(metrics_data), timeout_millis, **kw)

            # OTEL_METRIC_EXPORT_INTERVAL and OTEL_EXPORTER_OTLP_* apply, as for spans.
            readers.append(OtlpReader(OTLPMetricExporter()))
        self.provider = MeterProvider(
            metric_readers=readers,
            resource=self._resource,
            # Exemplars link a measurement to its trace; spans are off by default and the
            # filter's check is part of every record's cost.
            exemplar_filter=AlwaysOffExemplarFilter(),
        )
        self._meter = self.provider.get_meter(SCOPE)
        self._listen = config.listen
        self._runner: web.AppRunner | None = None
        self._refreshes: list[Refresh] = []
        self._refresher: asyncio.Task[None] | None = None
        self._pushes = "otlp" in config.exporters
        self.port = 0

    def histogram(
        self, name: str, unit: str, description: str, buckets: Iterable[float]
    ) -> CumulativeHistogram:
        """A histogram recorded into series the caller keeps (see the module docstring)."""
        histogram = CumulativeHistogram(name, unit, description, buckets)
        self._histograms.append(histogram)
        return histogram

    def _add_histograms(self, data: MetricsData | None) -> MetricsData:
        """``data`` (what the SDK collected) with the histograms' series in this scope."""
        now = time.time_ns()
        extra = [m for m in (h.metric(now) for h in self._histograms) if m is not None]
        resources = list(data.resource_metrics) if data is not None else []
        if not extra:
            return data if data is not None else MetricsData(resources)
        if not resources:
            resources = [ResourceMetrics(self._resource, [], "")]
        scopes = list(resources[0].scope_metrics)
        ours = next((i for i, s in enumerate(scopes) if s.scope.name == SCOPE), None)
        if ours is None:
            scopes.append(ScopeMetrics(InstrumentationScope(SCOPE), extra, ""))
        else:
            scopes[ours] = dataclasses.replace(
                scopes[ours], metrics=[*scopes[ours].metrics, *extra]
            )
        resources[0] = dataclasses.replace(resources[0], scope_metrics=scopes)
        return MetricsData(resources)

    def observe(self, kind: str, name: str, unit: str, description: str, read: Reading) -> None:
        """An observable instrument: ``counter`` (monotonic total), ``updown`` (a total that
        goes both ways, e.g. open streams) or ``gauge``, whose values ``read`` returns."""

        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(value, dict(attributes)) for value, attributes in read()]

        create = {
            "counter": self._meter.create_observable_counter,
            "updown": self._meter.create_observable_up_down_counter,
            "gauge": self._meter.create_observable_gauge,
        }[kind]
        create(name, callbacks=[callback], unit=unit, description=description)

    def refresh_with(self, refresh: Refresh) -> None:
        """Run ``refresh`` before each scrape and, with OTLP, every ``REFRESH_INTERVAL_S``."""
        self._refreshes.append(refresh)

    async def refresh(self) -> None:
        """Run every refresh; one that fails or hangs leaves its last values (logged)."""
        for refresh in self._refreshes:
            try:
                await asyncio.wait_for(refresh(), REFRESH_TIMEOUT_S)
            except Exception as exc:  # a database outage must not break the scrape
                _log.debug("metrics refresh failed: %s", type(exc).__name__)

    async def _refresh_forever(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_INTERVAL_S)

    async def start_endpoint(self, ssl_context: ssl.SSLContext | None) -> None:
        """Start refreshing for OTLP, and serve ``GET /metrics`` (only with Prometheus on)."""
        if self._pushes and self._refreshes:
            self._refresher = asyncio.create_task(self._refresh_forever())
        if self.registry is None or self._listen is None:
            return
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        registry = self.registry

        async def scrape(_request: web.Request) -> web.Response:
            await self.refresh()
            # Collected on the event loop: the observed integers belong to it, and a
            # collection of a few hundred series takes about a millisecond.
            response = web.Response(body=generate_latest(registry))
            response.headers["Content-Type"] = CONTENT_TYPE_LATEST
            return response

        app = web.Application()
        app.router.add_get("/metrics", scrape)
        host, _, port = self._listen.rpartition(":")
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]"), int(port), ssl_context=ssl_context)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []  # the bound port (port 0)
        self.port = int(sockets[0].getsockname()[1]) if sockets else int(port)
        _log.info("Prometheus metrics on %s://%s:%d/metrics",
                  "https" if ssl_context else "http", host, self.port)  # fmt: skip

    async def stop(self) -> None:
        """Stop the endpoint; export what the OTLP reader has not sent yet, then end it."""
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        try:
            # In a thread: an OTLP collector that does not answer holds the final export up to
            # the timeout, and the event loop must go on draining calls meanwhile.
            await asyncio.to_thread(self.provider.shutdown, 5000)
        except Exception:  # a collector that is gone must not stop a shutdown
            _log.warning("metrics exporters did not shut down cleanly", exc_info=True)

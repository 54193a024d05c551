"""The registry's metrics, wired to what each part already counts (kept out of ``server.py``).

Every instrument and its Prometheus name is listed in deploy/docs/metrics.md; the dashboard
(deploy/grafana) and the alerts (deploy/prometheus/alerts.yaml) use those names, and
tests/e2e/test_metrics.py checks that a running server exports each one they use.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import asyncpg

from modelregistry_server.artifacts.adapters.postgres.repository import (
    PostgresUploadSessionRepository,
)
from modelregistry_server.common.adapters.db import Database, observe_acquire_wait
from modelregistry_server.common.metrics import (
    DURATION_BUCKETS_MS,
    WAIT_BUCKETS_S,
    Attributes,
    RegistryMetrics,
)
from modelregistry_server.common.rpc import status
from modelregistry_server.common.rpc.metrics import RpcMetricsInterceptor
from modelregistry_server.common.telemetry_config import MetricsConfig

if TYPE_CHECKING:
    from modelregistry_server.server import RegistryServer

_POOL = {"db.client.connection.pool.name": "modelregistry"}
# Every RESOURCE_EXHAUSTED reason (the protos' ErrorReason catalogue; a unit test keeps the two
# equal), reported from 0 so that the first refusal of each is a visible increase.
BOUND_REASONS = (
    "TOO_MANY_STREAMS", "TOO_MANY_WATCH_STREAMS", "STREAM_IDLE",
    "UPLOAD_SESSIONS_EXHAUSTED", "UPLOAD_BYTES_EXHAUSTED", "STORAGE_FULL",
)  # fmt: skip
_NONE: Attributes = {}
Values = Iterable[tuple[float, Attributes]]


class ServerMetrics:
    """The metrics of one ``RegistryServer``: the RPC interceptor (installed when the gRPC
    server is built) and the observed totals (wired once the services exist)."""

    def __init__(self, config: MetricsConfig) -> None:
        self.metrics = RegistryMetrics(config)
        self.rpc = RpcMetricsInterceptor(
            self.metrics.histogram(
                "rpc.server.duration", "ms",
                "duration of gRPC calls served, by service, method and status code",
                DURATION_BUCKETS_MS,
            )
        )  # fmt: skip
        self._pool: asyncpg.Pool | None = None

    async def start(self, server: RegistryServer, pool: asyncpg.Pool) -> None:
        """Observe ``server``'s parts and its database ``pool``, and serve ``/metrics`` (with
        the gRPC port's TLS)."""
        self._pool = pool
        observe = self.metrics.observe
        observe("updown", "rpc.server.active_streams", "{stream}",
                "streaming calls open now, by method", self.rpc.open_streams)  # fmt: skip
        self._observe_artifacts(server, pool)
        self._observe_metadata(server)
        self._observe_database(pool)
        observe("counter", "modelregistry.auth.denied", "{call}",
                "calls refused PERMISSION_DENIED for want of a permission",
                lambda: [(server.denied_calls.count, _NONE)])  # fmt: skip
        observe("counter", "modelregistry.limits.refused", "{call}",
                "calls refused RESOURCE_EXHAUSTED because a bound was reached, by reason",
                self._refusals)  # fmt: skip
        ssl_context = server.config.tls.server_context if server.config.tls else None
        await self.metrics.start_endpoint(ssl_context)

    @staticmethod
    def _refusals() -> Values:
        reasons = {reason: 0 for reason in BOUND_REASONS} | dict(status.REFUSALS)
        return [(count, {"reason": reason}) for reason, count in reasons.items()]

    def _observe_artifacts(self, server: RegistryServer, pool: asyncpg.Pool) -> None:
        counters = server.artifact_counters
        if counters is None:
            return
        observe = self.metrics.observe
        # Sessions are rows every replica shares: a count of the whole registry, read from the
        # database before each scrape (or every 15 s for OTLP), so chart the max across
        # replicas, not the sum.
        sessions = PostgresUploadSessionRepository(Database(pool))
        unfinished = [0, 0]

        async def refresh() -> None:
            unfinished[:] = await sessions.unfinished()

        self.metrics.refresh_with(refresh)
        observe("gauge", "modelregistry.artifact.upload_sessions.open", "{session}",
                "unfinished, unexpired upload sessions of the whole registry",
                lambda: [(unfinished[0], _NONE)])  # fmt: skip
        observe("gauge", "modelregistry.artifact.upload_sessions.unwritten", "By",
                "bytes those sessions declared and have yet to receive",
                lambda: [(unfinished[1], _NONE)])  # fmt: skip
        observe("counter", "modelregistry.artifact.received", "By",
                "blob bytes received by ArtifactService Write streams",
                lambda: [(counters.write_bytes, _NONE)])  # fmt: skip
        observe("counter", "modelregistry.artifact.sent", "By",
                "blob bytes sent by ArtifactService Read streams",
                lambda: [(counters.read_bytes, _NONE)])  # fmt: skip
        observe("updown", "modelregistry.artifact.uploads.active", "{upload}",
                "Write streams in progress: upload sessions being written now",
                lambda: [(counters.writes_open, _NONE)])  # fmt: skip
        if server.web is not None:  # file URLs send blob bytes from the store too
            files = server.web.files
            observe("counter", "modelregistry.http.files.sent", "By",
                    "blob bytes sent to clients by the HTTP face's file URLs",
                    lambda: [(files.sent_bytes, _NONE)])  # fmt: skip
        observe("counter", "modelregistry.artifact.download_urls", "{url}",
                "presigned download URLs handed out",
                lambda: [(counters.download_urls, _NONE)])  # fmt: skip
        observe("counter", "modelregistry.artifact.direct_upload_urls", "{url}",
                "presigned direct-upload URLs handed out (their bytes bypass Write)",
                lambda: [(counters.direct_upload_urls, _NONE)])  # fmt: skip

    def _observe_metadata(self, server: RegistryServer) -> None:
        observe = self.metrics.observe
        cache = server.resolve_cache
        if cache is not None:
            observe("counter", "modelregistry.resolve_cache.requests", "{request}",
                    "ResolveModelVersion lookups in the in-process cache, by result",
                    lambda: [(cache.hits, {"result": "hit"}),
                             (cache.misses, {"result": "miss"})])  # fmt: skip
            observe("gauge", "modelregistry.resolve_cache.entries", "{entry}",
                    "resolve answers cached now", lambda: [(len(cache), _NONE)])  # fmt: skip
        gc = server.gc
        if gc is not None:
            observe("counter", "modelregistry.gc.runs", "{run}",
                    "garbage collection runs (not dry runs), scheduled or called",
                    lambda: [(gc.runs, _NONE)])  # fmt: skip
            observe("counter", "modelregistry.gc.deleted_blobs", "{blob}",
                    "blobs deleted by garbage collection",
                    lambda: [(gc.deleted_blobs, _NONE)])  # fmt: skip
            observe("counter", "modelregistry.gc.freed", "By",
                    "bytes of blobs deleted by garbage collection",
                    lambda: [(gc.freed_bytes, _NONE)])  # fmt: skip

    def _observe_database(self, pool: asyncpg.Pool) -> None:
        def connections() -> Values:
            size, idle = pool.get_size(), pool.get_idle_size()
            return [(idle, {**_POOL, "state": "idle"}), (size - idle, {**_POOL, "state": "used"})]

        observe = self.metrics.observe
        # OpenTelemetry's semantic conventions for database client connection pools.
        observe("updown", "db.client.connection.count", "{connection}",
                "pool connections, by state (used: lent to a call)", connections)  # fmt: skip
        observe("updown", "db.client.connection.max", "{connection}",
                "the most connections the pool may open",
                lambda: [(pool.get_max_size(), _POOL)])  # fmt: skip
        wait = self.metrics.histogram(
            "db.client.connection.wait_time", "s",
            "time a call waited for a pooled connection", WAIT_BUCKETS_S,
        )  # fmt: skip
        observe_acquire_wait(pool, wait.series(_POOL).record)

    async def stop(self) -> None:
        """Stop serving ``/metrics`` and flush the OTLP exporter."""
        if self._pool is not None:
            observe_acquire_wait(self._pool, None)
        await self.metrics.stop()

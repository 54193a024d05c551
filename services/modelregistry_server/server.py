"""Composition root: builds the configured services, serves them, and shuts them down cleanly.

This is the only module that knows every adapter; the services themselves depend on ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AsyncHealthServicer
from grpc_reflection.v1alpha import reflection

from modelregistry.access.v1 import access_service_pb2, access_service_pb2_grpc
from modelregistry.artifact.v1 import artifact_service_pb2
from modelregistry.metadata.v1 import metadata_service_pb2, metadata_service_pb2_grpc
from modelregistry_server.access.adapters.postgres import MIGRATIONS_DIR as ACCESS_MIGRATIONS
from modelregistry_server.access.adapters.postgres.repository import (
    PostgresBindingStore,
    PostgresDeniedCallLog,
    PostgresTokenStore,
)
from modelregistry_server.access.adapters.postgres.repository import (
    page_token_secret as access_page_token_secret,
)
from modelregistry_server.access.app.denied_calls import DeniedCalls
from modelregistry_server.access.app.policy import AccessPolicy
from modelregistry_server.access.app.tokens import Authenticator, TokenService
from modelregistry_server.access.rpc.permissions import AuthorizationInterceptor
from modelregistry_server.access.rpc.servicer import AccessServicer
from modelregistry_server.artifacts.adapters.localfs import LocalDirBlobStore
from modelregistry_server.artifacts.adapters.metadata_client import (
    GrpcManifestLookup,
    UnconfiguredManifestLookup,
)
from modelregistry_server.artifacts.adapters.postgres import MIGRATIONS_DIR as ARTIFACT_MIGRATIONS
from modelregistry_server.artifacts.adapters.postgres.repository import (
    PostgresBlobIndex,
    PostgresUploadSessionRepository,
)
from modelregistry_server.artifacts.adapters.postgres.repository import (
    page_token_secret as artifact_page_token_secret,
)
from modelregistry_server.artifacts.adapters.s3 import S3BlobStore
from modelregistry_server.artifacts.app.blobs import BlobService
from modelregistry_server.artifacts.app.ports import BlobStore, ManifestLookup
from modelregistry_server.artifacts.app.read_access import ReadAccess
from modelregistry_server.artifacts.app.uploads import UploadService
from modelregistry_server.artifacts.domain.upload import UploadQuota
from modelregistry_server.artifacts.rpc.servicer import ArtifactServicer, RequestCounters
from modelregistry_server.artifacts.rpc.wire import register_artifact_service
from modelregistry_server.bootstrap import ensure_admin_token
from modelregistry_server.common.adapters.audit_log import MIGRATIONS_DIR as AUDIT_MIGRATIONS
from modelregistry_server.common.adapters.audit_log import SCHEMA as AUDIT_SCHEMA
from modelregistry_server.common.adapters.db import Database, create_pool, ensure_database
from modelregistry_server.common.adapters.embedded_postgres import EmbeddedPostgres
from modelregistry_server.common.adapters.migrations import apply_migrations
from modelregistry_server.common.adapters.postgres_supervisor import PostgresSupervisor
from modelregistry_server.common.config import ServerConfig, TlsConfig
from modelregistry_server.common.kernel.page_token import PageTokenCodec
from modelregistry_server.common.kernel.paging import Paginator
from modelregistry_server.common.rpc.auth import AuthInterceptor
from modelregistry_server.common.rpc.decoding import RequestDecodingInterceptor
from modelregistry_server.common.rpc.health import Dependency, HealthMonitor
from modelregistry_server.common.rpc.link import ServiceLink
from modelregistry_server.common.rpc.options import client_credentials, server_options
from modelregistry_server.common.rpc.stream_limits import (
    StreamBounds,
    StreamLimiter,
    StreamLimitInterceptor,
)
from modelregistry_server.common.telemetry import rpc_tracing_interceptor
from modelregistry_server.metadata.adapters.artifact_client import GrpcBlobChecker
from modelregistry_server.metadata.adapters.postgres.events import (
    PostgresAuditLog,
    PostgresEventFeed,
)
from modelregistry_server.metadata.adapters.postgres.repository import (
    MIGRATIONS_DIR as METADATA_MIGRATIONS,
)
from modelregistry_server.metadata.adapters.postgres.repository import (
    PostgresModelRepository,
    PostgresSecretStore,
)
from modelregistry_server.metadata.adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from modelregistry_server.metadata.adapters.postgres.versions import PostgresVersionRepository
from modelregistry_server.metadata.app.events import EventService
from modelregistry_server.metadata.app.gc import GarbageCollector
from modelregistry_server.metadata.app.governance import GovernanceService
from modelregistry_server.metadata.app.models import ModelService
from modelregistry_server.metadata.app.resolve_cache import ResolveCache
from modelregistry_server.metadata.app.versions import VersionService
from modelregistry_server.metadata.rpc.servicer import MetadataServicer
from modelregistry_server.scheduled_jobs import Housekeeping, build_housekeeping
from modelregistry_server.server_metrics import ServerMetrics
from modelregistry_server.server_parts import (
    ModelScanner,
    build_oidc,
    build_scanner,
    start_web_face,
    transport_security,
)
from modelregistry_server.web.face import WebFace

_log = logging.getLogger(__name__)

METADATA_SERVICE = metadata_service_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name
ARTIFACT_SERVICE = artifact_service_pb2.DESCRIPTOR.services_by_name["ArtifactService"].full_name
ACCESS_SERVICE = access_service_pb2.DESCRIPTOR.services_by_name["AccessService"].full_name
EMBEDDED_DATABASE = "modelregistry"
# Chunks are at most 1 MiB of data; leave headroom for the envelope and other fields.
_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def schema_migrations(services: str) -> list[tuple[str, Path]]:
    """The schemas a process serving ``services`` migrates, in the order it must.

    Every process needs ``access`` (it checks every call's credential) and ``audit`` (it
    records refused calls); ``audit`` comes before ``metadata``, whose 0003 moves the audit
    log into it.
    """
    schemas = [("access", ACCESS_MIGRATIONS), (AUDIT_SCHEMA, AUDIT_MIGRATIONS)]
    if services in ("all", "metadata"):
        schemas.append(("metadata", METADATA_MIGRATIONS))
    if services in ("all", "artifacts"):
        schemas.append(("artifacts", ARTIFACT_MIGRATIONS))
    return schemas


@dataclass
class RegistryServer:
    """The running registry: gRPC server, health, database pool and embedded PostgreSQL."""

    config: ServerConfig
    port: int = 0
    _server: grpc.aio.Server | None = None
    _health: AsyncHealthServicer | None = None
    _health_monitor: HealthMonitor | None = None
    _pool: asyncpg.Pool | None = None
    _postgres: EmbeddedPostgres | None = None
    _supervisor: PostgresSupervisor | None = None
    _store: BlobStore | None = None
    _blob_checker: GrpcBlobChecker | None = None
    _manifests: ManifestLookup | None = None
    _event_feed: PostgresEventFeed | None = None
    _sweeper: asyncio.Task[None] | None = None
    # With TLS, metadata reaches the artifact service in this process over a Unix socket in a
    # private (0700) folder: the public port then accepts TLS only.
    _internal_dir: Path | None = None
    uploads: UploadService | None = None
    housekeeping: Housekeeping | None = None  # retention and scheduled GC (metadata only)
    scanner: ModelScanner | None = None  # model files scanned after each commit (metadata only)
    # Totals of byte-moving artifact calls; tests read them to prove a pull hit the cache.
    artifact_counters: RequestCounters | None = None
    resolve_cache: ResolveCache | None = None
    gc: GarbageCollector | None = None
    metrics: ServerMetrics | None = None  # with --metrics: the interceptor and observed totals
    # Checks every call's credential; its tokens are managed through the AccessService.
    authenticator: Authenticator = field(init=False)
    # Role bindings.
    policy: AccessPolicy = field(init=False)
    # Calls refused for want of a permission: counted, and recorded in the audit log.
    denied_calls: DeniedCalls = field(default_factory=lambda: DeniedCalls(None))
    _served: list[str] = field(default_factory=list)
    # Open streams per server and principal, and the idle-stream watchdog; its counters show
    # the bounds being hit.
    streams: StreamLimiter | None = None
    # Set when the server cannot go on (its embedded PostgreSQL cannot be restarted): serve()
    # then stops and the process exits non-zero. ``failure`` says why.
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str | None = None
    # The HTTP face (JSON API, file URLs, UI) when --http-listen is set; ``http_port`` its port.
    web: WebFace | None = None

    async def start(self) -> None:
        """Start everything; on failure, whatever was started is stopped again."""
        try:
            await self._start()
        except BaseException:
            await self.stop(grace=0)
            raise

    async def _start(self) -> None:
        config = self.config
        dsn = config.database_url
        if dsn is None:
            self._postgres = EmbeddedPostgres(config.data_dir / "postgres")
            # Spawned on this (the event loop's) thread: see EmbeddedPostgres.start.
            self._postgres.spawn()
            await asyncio.to_thread(self._postgres.wait_ready)
            self._supervisor = PostgresSupervisor(self._postgres, self._fail)
            self._supervisor.start()
            await ensure_database(self._postgres.dsn(), EMBEDDED_DATABASE)
            dsn = self._postgres.dsn(EMBEDDED_DATABASE)
        self._pool = await create_pool(dsn)
        # Through Database: a database that drops out during start-up is reported as
        # DATABASE_UNAVAILABLE, like in any call, not as an unexplained crash.
        async with Database(self._pool).connection() as conn:
            for schema, migrations in schema_migrations(config.services):
                await apply_migrations(conn, schema, migrations)
        access = await self._build_access()
        self.streams = StreamLimiter(StreamBounds.of(config.limits))

        self.metrics = ServerMetrics(config.metrics) if config.metrics else None
        server = grpc.aio.server(
            interceptors=[
                # Outermost: a call refused by any check below is measured with its status.
                *([self.metrics.rpc] if self.metrics else []),
                rpc_tracing_interceptor(),
                AuthInterceptor(
                    self.authenticator.authenticate,
                    # Mutual TLS: the server verified the certificate, so it names the caller.
                    trust_client_certificates=config.tls is not None and config.tls.mutual,
                ),
                # After authentication (a stranger's garbage is UNAUTHENTICATED), before the
                # permission check, which reads the request.
                RequestDecodingInterceptor(),
                AuthorizationInterceptor(self.policy, self.denied_calls),
                StreamLimitInterceptor(self.streams),
            ],
            options=server_options(config.limits, _MAX_MESSAGE_BYTES),
        )
        # Bind first: when both services run here, metadata reaches artifacts on this port.
        self.port = self._add_port(server, config.listen, config.tls)
        access_service_pb2_grpc.add_AccessServiceServicer_to_server(access, server)
        self._served.append(ACCESS_SERVICE)
        if config.services in ("all", "metadata"):
            metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(
                await self._build_metadata(dsn), server
            )
            self._served.append(METADATA_SERVICE)
        if config.services in ("all", "artifacts"):
            servicer = await self._build_artifacts()
            self.artifact_counters = servicer.counters
            # The generated registration, with zero-copy codecs for Write and Read (rpc/wire.py).
            register_artifact_service(servicer, server)
            self._served.append(ARTIFACT_SERVICE)

        self._health = AsyncHealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [*self._served, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        await server.start()
        self._server = server
        self._health_monitor = self._build_health_monitor(self._health)
        await self._health_monitor.set_all_serving()
        self._health_monitor.start()
        self.web = await start_web_face(config, self._internal_target(), self._served, self._store)
        if self.metrics is not None:
            await self.metrics.start(self, self._pool)
        _log.info(
            "modelregistry serving %s on %s (%s; database: %s, blobs: %s; web: %s)",
            ", ".join(self._served),
            config.listen.rsplit(":", 1)[0] + f":{self.port}",
            transport_security(config),
            "embedded" if config.embedded_database else "external",
            f"s3 {config.s3.endpoint}" if config.s3 else str(config.blob_dir),
            self.web.url if self.web else "off",
        )

    def _fail(self, why: str) -> None:
        self.failure = why
        self.failed.set()

    def _build_health_monitor(self, health: AsyncHealthServicer) -> HealthMonitor:
        """Each service is SERVING only while the database (and, for artifacts, the object
        store) answers the background probes."""
        assert self._pool is not None
        database = Dependency("database", Database(self._pool).ping)
        needs = {service: [database] for service in self._served}
        if self._store is not None:
            needs[ARTIFACT_SERVICE] = [database, Dependency("object store", self._store.check)]
        return HealthMonitor(health, needs, self.config.limits.health_check_interval_s)

    async def _build_access(self) -> AccessServicer:
        """Tokens, role bindings, and the checks every call goes through; the bootstrap admin."""
        assert self._pool is not None
        database = Database(self._pool)
        store = PostgresTokenStore(database)
        self.authenticator = Authenticator(store, oidc=await build_oidc(self.config))
        self.policy = AccessPolicy(PostgresBindingStore(database))
        self.denied_calls = DeniedCalls(PostgresDeniedCallLog(database))
        paginator = Paginator(PageTokenCodec(await access_page_token_secret(database)))
        tokens = TokenService(store, self.authenticator, paginator)
        await ensure_admin_token(tokens, self.policy, self.config.admin_token_path)
        return AccessServicer(tokens, self.policy)

    def _add_port(self, server: grpc.aio.Server, listen: str, tls: TlsConfig | None) -> int:
        """Listen on ``listen`` (with TLS if configured); return the port bound."""
        if tls is None:
            port = server.add_insecure_port(listen)
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.private_key, tls.cert_chain)],
                root_certificates=tls.client_ca,
                require_client_auth=tls.mutual,
            )
            port = server.add_secure_port(listen, credentials)
            if self.config.services == "all" or self.config.http is not None:
                self._internal_dir = Path(tempfile.mkdtemp(prefix="modelregistry-"))
                server.add_insecure_port(f"unix:{self._internal_dir / 'artifacts.sock'}")
        if port == 0:
            raise RuntimeError(f"could not listen on {listen}: address in use?")
        return port

    def _internal_target(self) -> str:
        """Where one service reaches the other in this process: the private socket with TLS,
        else this port."""
        if self._internal_dir is not None:
            return f"unix:{self._internal_dir / 'artifacts.sock'}"
        return f"127.0.0.1:{self.port}"

    async def _build_metadata(self, dsn: str) -> MetadataServicer:
        """Wire the metadata use cases to PostgreSQL and to the artifact service."""
        assert self._pool is not None
        database = Database(self._pool)
        uow = PostgresUnitOfWorkFactory(database)
        paginator = Paginator(
            PageTokenCodec(await PostgresSecretStore(database).page_token_secret())
        )
        # Resolve answers cached in this process; the event feed keeps it current (and
        # switches it off while it is not listening), writes here invalidate at once.
        self.resolve_cache = ResolveCache()
        model_repository = PostgresModelRepository(database)
        models = ModelService(uow, model_repository, paginator, self.resolve_cache)
        # Together in one process, metadata calls its own port (or socket) with the process's
        # internal credential; alone, with the token it was given for the ArtifactService.
        self._blob_checker = GrpcBlobChecker(
            ServiceLink(
                self.config.artifact_service_url or self._internal_target(),
                self.config.artifact_service_token or self.authenticator.internal_secret,
                client_credentials(
                    self.config.artifact_service_tls, self.config.artifact_service_url
                ),
                service=ARTIFACT_SERVICE,
            )
        )
        version_repository = PostgresVersionRepository(database)
        self.scanner = build_scanner(self.config, database, self._blob_checker, self.resolve_cache)
        versions = VersionService(
            uow, version_repository, model_repository, self._blob_checker, paginator,
            self.resolve_cache, on_ready=self.scanner.schedule if self.scanner else None,
        )  # fmt: skip
        self.gc = gc = GarbageCollector(uow, version_repository, self._blob_checker)
        self.housekeeping = build_housekeeping(database, gc, self.config.limits)
        self.housekeeping.start()
        self._event_feed = PostgresEventFeed(database, dsn)
        self._event_feed.subscribe(self.resolve_cache)
        self._event_feed.start()
        events = EventService(PostgresAuditLog(database), self._event_feed, paginator)
        return MetadataServicer(models, versions, events, gc, GovernanceService(uow))

    async def _build_artifacts(self) -> ArtifactServicer:
        config = self.config
        assert self._pool is not None
        store: BlobStore
        if config.s3 is not None:
            s3 = S3BlobStore.from_config(
                config.s3.endpoint,
                config.s3.access_key,
                config.s3.secret_key,
                config.s3.bucket,
                config.s3.secure,
                config.s3.region,
            )
            await s3.ensure_bucket()
            store = s3
        else:
            store = LocalDirBlobStore(
                config.blob_dir, reserve_bytes=config.limits.disk_reserve_bytes
            )
        self._store = store
        database = Database(self._pool)
        index = PostgresBlobIndex(database)
        self.uploads = UploadService(
            PostgresUploadSessionRepository(database),
            index,
            store,
            part_size=config.upload_part_size_mib * 1024 * 1024,
            parts_in_flight=config.upload_parts_in_flight,
            session_ttl=timedelta(seconds=config.upload_session_ttl_s),
            direct_uploads=config.direct_uploads,
            quota=UploadQuota(
                config.limits.max_upload_sessions_per_principal,
                config.limits.max_unwritten_bytes_per_principal,
            ),
        )
        if config.sweep_interval_s > 0:
            self._sweeper = asyncio.create_task(self._sweep_forever(self.uploads))
        secret = await artifact_page_token_secret(database)
        blobs = BlobService(
            index,
            store,
            Paginator(PageTokenCodec(secret)),
            url_ttl=timedelta(seconds=config.download_url_ttl_s),
        )
        # Which blobs a version holds: asked of the MetadataService on this port (or socket)
        # with the internal credential, or of the one --metadata-service-url names.
        manifests: ManifestLookup
        if config.services == "artifacts" and not config.metadata_service_url:
            manifests = UnconfiguredManifestLookup()
        else:
            manifests = GrpcManifestLookup(
                ServiceLink(
                    config.metadata_service_url or self._internal_target(),
                    config.metadata_service_token or self.authenticator.internal_secret,
                    client_credentials(config.metadata_service_tls, config.metadata_service_url),
                    service=METADATA_SERVICE,
                )
            )
        self._manifests = manifests
        return ArtifactServicer(self.uploads, blobs, ReadAccess(manifests), references=manifests)

    async def _sweep_forever(self, uploads: UploadService) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval_s)
            try:
                await uploads.sweep()
            except Exception:
                _log.exception("sweep of expired upload sessions failed")

    async def stop(self, grace: float | None = None) -> None:
        """Graceful stop: report NOT_SERVING, drain in-flight calls, then close the database."""
        grace = self.config.shutdown_grace_s if grace is None else grace
        if self._supervisor is not None:
            await self._supervisor.stop()  # the database is stopped on purpose below
            self._supervisor = None
        if self._health_monitor is not None:
            await self._health_monitor.stop()
            self._health_monitor = None
        if self._health is not None:
            # Load balancers stop sending new calls once health says NOT_SERVING.
            await self._health.enter_graceful_shutdown()
        if self.housekeeping is not None:
            await self.housekeeping.stop()
        if self.scanner is not None:
            await self.scanner.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self.web is not None:
            await self.web.stop()  # before the gRPC server it calls into
            self.web = None
        if self.streams is not None and self._server is not None:
            await asyncio.sleep(min(0.1, grace))  # NOT_SERVING reaches health watchers first
            self.streams.begin_shutdown()  # streams end now; unary calls have the grace
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        if self.streams is not None:
            await self.streams.stop()
        await self.denied_calls.flush()  # refusals still being written to the audit log
        if self.metrics is not None:  # after the drain: the last OTLP export counts every call
            await self.metrics.stop()
            self.metrics = None
        if self._store is not None:
            await self._store.close()
            self._store = None
        if self._blob_checker is not None:
            await self._blob_checker.close()
            self._blob_checker = None
        if self._manifests is not None:
            await self._manifests.close()
            self._manifests = None
        if self._event_feed is not None:
            await self._event_feed.close()
            self._event_feed = None
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), timeout=2)
            self._pool = None
        if self._postgres is not None:
            await asyncio.to_thread(self._postgres.stop)
            self._postgres = None
        if self._internal_dir is not None:
            shutil.rmtree(self._internal_dir, ignore_errors=True)
            self._internal_dir = None

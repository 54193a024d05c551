"""Metrics of a real server process (PostgreSQL, MinIO), read from its Prometheus endpoint.

Each step (a push, a Read, two resolves, refused calls, a garbage collection) is bracketed by
two scrapes, and the counters must have moved by exactly what the step did. The server runs
with model scanning off: the scanner's own Reads of committed blobs would move the byte
counters by amounts this test does not control.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2

from modelregistry import Client, PermissionDeniedError, UnauthenticatedError
from modelregistry.artifact.v1 import artifact_service_pb2 as apb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as mpb
from modelregistry.metadata.v1 import metadata_service_pb2_grpc
from modelregistry_server.common.adapters.embedded_postgres import free_loopback_port
from modelregistry_server.common.config import load_config
from modelregistry_server.server import RegistryServer
from tests.support.auth import ADMIN_TOKEN, bearer, install_admin_token
from tests.support.files import MiB, write_random
from tests.support.metrics import Samples, rpc_calls, sample_names, scrape, value
from tests.support.minio import MinioServer
from tests.support.promql import PROMETHEUS_SERIES, REPO, used_metric_names
from tests.support.registry_process import RegistryProcess, s3_flags
from tests.support.tls import TestCA

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
METADATA = "modelregistry.metadata.v1.MetadataService"
ARTIFACTS = "modelregistry.artifact.v1.ArtifactService"
RECEIVED = "modelregistry_artifact_received_bytes_total"
SENT = "modelregistry_artifact_sent_bytes_total"
METRICS_DOC = REPO / "deploy" / "docs" / "metrics.md"


class MeteredRegistry:
    """A server process with ``--metrics prometheus`` and the URL of its ``/metrics``."""

    def __init__(self, process: RegistryProcess, metrics_url: str) -> None:
        self.process = process
        self.target = process.target
        self.metrics_url = metrics_url

    def scrape(self) -> Samples:
        """One scrape of the endpoint."""
        return scrape(self.metrics_url)

    def scrape_when(self, ready: Callable[[Samples], bool]) -> Samples:
        """A scrape that shows ``ready`` (within 10 s).

        A call is measured once its handler returns, and gRPC may deliver an error status to
        the client a moment before the server's event loop gets back to that handler (the
        status is sent from inside ``abort``): a scrape right after a call can miss it.
        """
        deadline = time.monotonic() + 10
        samples = self.scrape()
        while not ready(samples) and time.monotonic() < deadline:
            time.sleep(0.05)
            samples = self.scrape()
        return samples


@pytest.fixture
def metered(
    database_url: str, tmp_path: Path, minio_server: MinioServer, minio_bucket: str
) -> Iterator[MeteredRegistry]:
    """Both services and the HTTP face in one process on PostgreSQL and MinIO, metrics on
    their own port."""
    port = free_loopback_port()
    process = RegistryProcess(
        tmp_path, "--metrics=prometheus", f"--metrics-listen=127.0.0.1:{port}",
        # The HTTP face on too (any free port): its file URLs have a metric of their own.
        "--http-listen=127.0.0.1:0", "--scan-models=off", "--sweep-interval=0",
        *s3_flags(minio_server, minio_bucket), database_url=database_url,
    )  # fmt: skip
    process.start()
    try:
        yield MeteredRegistry(process, f"http://127.0.0.1:{port}/metrics")
    finally:
        process.stop()


def _delta(
    before: Samples, after: Samples, name: str, labels: dict[str, str] | None = None
) -> float:
    return value(after, name, labels) - value(before, name, labels)


def _calls(before: Samples, after: Samples, service: str, method: str, code: int = 0) -> float:
    return rpc_calls(after, service, method, code) - rpc_calls(before, service, method, code)


def test_a_push_moves_the_rpc_counts_and_received_bytes_by_what_it_sent(
    metered: MeteredRegistry, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    write_random(model / "weights.bin", 3 * MiB + 17)  # several 1 MiB Write messages
    (model / "config.json").write_text('{"layers": 3}\n')
    pushed = sum(path.stat().st_size for path in model.iterdir())
    client = Client(metered.target, cache_dir=tmp_path / "cache")

    before = metered.scrape()
    # Through Write: a direct upload (the default on MinIO) sends no bytes to the server.
    version = client.push(model, model="metered", direct_upload=False)
    after = metered.scrape_when(lambda s: _calls(before, s, METADATA, "CommitModelVersion") >= 1)

    assert version.version == 1
    assert _delta(before, after, RECEIVED) == pushed
    assert _calls(before, after, METADATA, "CreateModelVersion") == 1
    assert _calls(before, after, METADATA, "CommitModelVersion") == 1
    assert _calls(before, after, ARTIFACTS, "CreateUploadSession") == 2
    assert _calls(before, after, ARTIFACTS, "Write") == 2
    assert _calls(before, after, ARTIFACTS, "FindMissingBlobs") >= 1
    # Nothing is left open once the push returned.
    assert value(after, "modelregistry_artifact_uploads_active") == 0
    assert value(after, "modelregistry_artifact_upload_sessions_open") == 0
    assert value(after, "modelregistry_artifact_upload_sessions_unwritten_bytes") == 0
    write = {"rpc_system": "grpc", "rpc_service": ARTIFACTS, "rpc_method": "Write"}
    assert value(after, "rpc_server_active_streams", write) == 0
    # Every call is in the histogram's last bucket, and only calls are in it.
    write_ok = {**write, "rpc_grpc_status_code": "0"}
    count = value(after, "rpc_server_duration_milliseconds_count", write_ok)
    every = {**write_ok, "le": "+Inf"}
    assert value(after, "rpc_server_duration_milliseconds_bucket", every) == count
    assert value(after, "rpc_server_duration_milliseconds_sum", write_ok) > 0
    # The push took database connections, each after a (short) wait.
    pool = {"db_client_connection_pool_name": "modelregistry"}
    assert _delta(before, after, "db_client_connection_wait_time_seconds_count", pool) > 0
    assert value(after, "db_client_connection_max", pool) == 20
    used = value(after, "db_client_connection_count", {**pool, "state": "used"})
    idle = value(after, "db_client_connection_count", {**pool, "state": "idle"})
    assert used >= 0
    assert 1 <= used + idle <= 20


def test_read_resolve_and_denials_move_their_counters(
    metered: MeteredRegistry, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    write_random(model / "weights.bin", 2 * MiB + 5)
    client = Client(metered.target, cache_dir=tmp_path / "cache")
    version = client.push(model, model="metered")
    sha256 = version.files[0].sha256

    with grpc.insecure_channel(metered.target) as channel:
        artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(channel)

        # A download through the ArtifactService: bytes sent.
        before = metered.scrape()
        request = apb.ReadRequest(sha256=sha256, model_version=version.name)
        received = sum(len(r.data) for r in artifacts.Read(request, metadata=bearer(ADMIN_TOKEN)))
        after = metered.scrape_when(lambda s: _calls(before, s, ARTIFACTS, "Read") >= 1)
        assert received == 2 * MiB + 5
        assert _delta(before, after, SENT) == received
        assert _calls(before, after, ARTIFACTS, "Read") == 1

        # The same reference three times: the first since the commit reaches the database, the
        # next come from the cache (unless the push's own change notification, which empties
        # the model's entries again, arrives only after the first: hence "at least one hit").
        before = metered.scrape()
        for _ in range(3):
            client.resolve("metered")
        after = metered.scrape_when(
            lambda s: _calls(before, s, METADATA, "ResolveModelVersion") >= 3
        )
        requests = "modelregistry_resolve_cache_requests_total"
        misses = _delta(before, after, requests, {"result": "miss"})
        hits = _delta(before, after, requests, {"result": "hit"})
        assert misses >= 1
        assert hits >= 1
        assert misses + hits == 3
        assert _calls(before, after, METADATA, "ResolveModelVersion") == 3

        # A token without role bindings, and a token the server does not know.
        stranger = client.create_token("metrics-stranger").secret
        before = metered.scrape()
        with pytest.raises(PermissionDeniedError):
            Client(metered.target, token=stranger, cache_dir=tmp_path / "c2").resolve("metered")
        with pytest.raises(UnauthenticatedError):
            Client(metered.target, token="mr1_x_y", cache_dir=tmp_path / "c3").resolve("metered")
        after = metered.scrape_when(
            lambda s: (
                _calls(before, s, METADATA, "ResolveModelVersion", code=16) >= 1
                and _calls(before, s, METADATA, "ResolveModelVersion", code=7) >= 1
            )
        )
        assert _delta(before, after, "modelregistry_auth_denied_total") == 1
        assert _calls(before, after, METADATA, "ResolveModelVersion", code=7) == 1
        assert _calls(before, after, METADATA, "ResolveModelVersion", code=16) == 1


def test_an_upload_session_and_a_gc_run_move_their_counters(metered: MeteredRegistry) -> None:
    with grpc.insecure_channel(metered.target) as channel:
        artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        metadata = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        # A blob no version names, collected by name: one run, one blob, its bytes freed.
        orphan = b"orphan bytes " * 1000
        digest = hashlib.sha256(orphan).hexdigest()
        session = artifacts.CreateUploadSession(
            apb.CreateUploadSessionRequest(
                blob=blob_pb2.BlobRef(sha256=digest, size_bytes=len(orphan))
            ),
            metadata=bearer(ADMIN_TOKEN),
        )
        waiting = metered.scrape()  # a session nothing was written to yet: open, all unwritten
        assert value(waiting, "modelregistry_artifact_upload_sessions_open") == 1
        unwritten = "modelregistry_artifact_upload_sessions_unwritten_bytes"
        assert value(waiting, unwritten) == len(orphan)
        artifacts.Write(
            iter([apb.WriteRequest(upload_session=session.name, data=orphan, finish_write=True)]),
            metadata=bearer(ADMIN_TOKEN),
        )
        before = metered.scrape()
        metadata.RunGarbageCollection(
            mpb.RunGarbageCollectionRequest(blobs=[f"blobs/{digest}"]),
            metadata=bearer(ADMIN_TOKEN),
        )
        after = metered.scrape_when(
            lambda s: _calls(before, s, METADATA, "RunGarbageCollection") >= 1
        )
        assert _delta(before, after, "modelregistry_gc_runs_total") == 1
        assert _delta(before, after, "modelregistry_gc_deleted_blobs_total") == 1
        assert _delta(before, after, "modelregistry_gc_freed_bytes_total") == len(orphan)
        assert value(after, "modelregistry_artifact_upload_sessions_open") == 0


def test_a_direct_push_counts_its_url_and_sends_the_server_no_bytes(
    metered: MeteredRegistry, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    write_random(model / "weights.bin", 2 * MiB + 5)
    before = metered.scrape()
    Client(metered.target, cache_dir=tmp_path / "cache").push(model, model="direct")
    after = metered.scrape_when(lambda s: _calls(before, s, METADATA, "CommitModelVersion") >= 1)

    assert _delta(before, after, "modelregistry_artifact_direct_upload_urls_total") == 1
    assert _calls(before, after, ARTIFACTS, "FinishDirectUpload") == 1
    assert _calls(before, after, ARTIFACTS, "Write") == 0
    assert _delta(before, after, RECEIVED) == 0


def test_every_metric_the_dashboard_and_alerts_use_is_exported_and_documented(
    metered: MeteredRegistry, tmp_path: Path
) -> None:
    # After a push every instrument has data: the call histogram, the pool waits, the totals.
    model = tmp_path / "model"
    write_random(model / "weights.bin", 1000)
    # Through Write, so that the stream instruments have data too.
    Client(metered.target, cache_dir=tmp_path / "cache").push(
        model, model="drift", direct_upload=False
    )
    exported = sample_names(metered.scrape())

    used = used_metric_names() - PROMETHEUS_SERIES
    assert used, "the dashboard and the alerts name no metric at all"
    assert used - exported == set(), "the dashboard or the alerts use metrics the server lacks"
    # And the operator's list names every metric the server exports.
    documented = METRICS_DOC.read_text()
    histograms = {name.removesuffix("_bucket") for name in exported if name.endswith("_bucket")}
    parts = {h + suffix for h in histograms for suffix in ("_bucket", "_count", "_sum")}
    families = (exported - parts) | histograms
    assert {name for name in families if f"`{name}`" not in documented} == set()


class _Collector(metrics_service_pb2_grpc.MetricsServiceServicer):
    """An OTLP receiver that keeps every export request."""

    def __init__(self) -> None:
        self.requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []

    def Export(  # noqa: N802 - the OTLP service's method name
        self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: object
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self.requests.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def metrics(self) -> dict[str, object]:
        """The latest export's metrics by name (cumulative: the latest has everything)."""
        latest: dict[str, object] = {}
        for request in list(self.requests):
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    latest.update({metric.name: metric for metric in scope.metrics})
        return latest


def test_otlp_exports_the_call_histogram_and_the_observed_totals(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = _Collector()
    receiver = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(collector, receiver)  # type: ignore[no-untyped-call]
    port = receiver.add_insecure_port("127.0.0.1:0")
    receiver.start()
    # The standard OpenTelemetry variables reach the server process through its environment.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    process = RegistryProcess(
        tmp_path, "--metrics=otlp", "--http-listen=off", "--sweep-interval=0",
        database_url=database_url,
    )  # fmt: skip
    process.start()
    try:
        client = Client(process.target, cache_dir=tmp_path / "cache")
        assert client.whoami().principal == "admin"
        deadline = time.monotonic() + 30
        while "rpc.server.duration" not in collector.metrics() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.stop()  # SIGTERM: the last export runs after the calls drained
        receiver.stop(grace=None)
    exported = collector.metrics()
    duration = exported["rpc.server.duration"]
    assert isinstance(duration, metrics_pb2.Metric)
    assert duration.unit == "ms"
    assert duration.histogram.aggregation_temporality == (
        metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    whoami = [
        point
        for point in duration.histogram.data_points
        if {a.key: a.value.string_value for a in point.attributes}.get("rpc.method") == "WhoAmI"
    ]
    assert [point.count for point in whoami] == [1]
    assert sum(whoami[0].bucket_counts) == 1
    pool_max = exported["db.client.connection.max"]
    assert isinstance(pool_max, metrics_pb2.Metric)
    assert pool_max.sum.data_points[0].as_int == 20
    resource = collector.requests[-1].resource_metrics[0].resource
    names = {a.key: a.value.string_value for a in resource.attributes}
    assert names["service.name"] == "modelregistry"


async def test_the_metrics_port_speaks_the_grpc_ports_tls(
    database_url: str, tmp_path: Path
) -> None:
    ca = TestCA(tmp_path / "pki")
    pair = ca.server_cert()
    config = load_config(
        [
            "serve", "--listen=127.0.0.1:0", "--http-listen=off", f"--database-url={database_url}",
            f"--data-dir={tmp_path / 'data'}", "--sweep-interval=0", "--shutdown-grace=0",
            f"--tls-cert={pair.cert}", f"--tls-key={pair.key}",
            "--metrics=prometheus", "--metrics-listen=127.0.0.1:0",
        ],
        environ={},
    )  # fmt: skip
    server = RegistryServer(config)
    await server.start()
    try:
        assert server.metrics is not None
        port = server.metrics.metrics.port
        trusting = ssl.create_default_context(cafile=str(ca.cert))

        def get(url: str, context: ssl.SSLContext | None) -> bytes:
            with urllib.request.urlopen(url, timeout=10, context=context) as response:  # noqa: S310
                return bytes(response.read())

        body = await asyncio.to_thread(get, f"https://127.0.0.1:{port}/metrics", trusting)
        assert b"db_client_connection_max" in body
        # Plaintext to a TLS port: the handshake fails, no scrape is answered.
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            await asyncio.to_thread(get, f"http://127.0.0.1:{port}/metrics", None)
    finally:
        await server.stop(grace=0)


async def test_file_urls_count_the_bytes_they_send(database_url: str, tmp_path: Path) -> None:
    config = load_config(
        [
            "serve", "--listen=127.0.0.1:0", "--http-listen=127.0.0.1:0", "--scan-models=off",
            f"--database-url={database_url}", f"--data-dir={tmp_path / 'data'}",
            "--sweep-interval=0", "--shutdown-grace=0",
            "--metrics=prometheus", "--metrics-listen=127.0.0.1:0",
        ],
        environ={},
    )  # fmt: skip
    install_admin_token(tmp_path / "data")
    server = RegistryServer(config)
    await server.start()
    try:
        assert server.metrics is not None
        assert server.web is not None
        model = tmp_path / "model"
        write_random(model / "weights.bin", MiB + 7)
        client = Client(f"127.0.0.1:{server.port}", cache_dir=tmp_path / "cache")
        await asyncio.to_thread(client.push, model, model="served")
        metrics_url = f"http://127.0.0.1:{server.metrics.metrics.port}/metrics"
        file_url = f"{server.web.url}v1/models/served/versions/1/files/weights.bin"
        sent = "modelregistry_http_files_sent_bytes_total"

        def download(byte_range: str | None) -> int:
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            if byte_range:
                headers["Range"] = byte_range
            request = urllib.request.Request(file_url, headers=headers)  # noqa: S310
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return len(response.read())

        before = await asyncio.to_thread(scrape, metrics_url)
        whole = await asyncio.to_thread(download, None)
        part = await asyncio.to_thread(download, "bytes=100-1099")
        after = await asyncio.to_thread(scrape, metrics_url)
        assert (whole, part) == (MiB + 7, 1000)
        assert _delta(before, after, sent) == whole + part
        assert _delta(before, after, SENT) == 0  # no gRPC Read was involved
    finally:
        await server.stop(grace=0)

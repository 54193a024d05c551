"""Metrics of a real server process (PostgreSQL, MinIO), read from its Prometheus endpoint.

Each step (a push, a Read, two resolves, refused calls, a garbage collection) is bracketed by
two scrapes, and the counters must have moved by exactly what the step did. The server runs
with model scanning off: the scanner's own Reads of committed blobs would move the byte
counters by amounts this test does not control.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from modelregistry import Client, PermissionDeniedError, UnauthenticatedError
from modelregistry.artifact.v1 import artifact_service_pb2 as apb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as mpb
from modelregistry.metadata.v1 import metadata_service_pb2_grpc
from modelregistry_server.common.adapters.embedded_postgres import free_loopback_port
from tests.support.auth import ADMIN_TOKEN, bearer
from tests.support.files import MiB, write_random
from tests.support.metrics import Samples, rpc_calls, scrape, value
from tests.support.minio import MinioServer
from tests.support.registry_process import RegistryProcess, s3_flags

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
METADATA = "modelregistry.metadata.v1.MetadataService"
ARTIFACTS = "modelregistry.artifact.v1.ArtifactService"
RECEIVED = "modelregistry_artifact_received_bytes_total"
SENT = "modelregistry_artifact_sent_bytes_total"


class MeteredRegistry:
    """A server process with ``--metrics prometheus`` and the URL of its ``/metrics``."""

    def __init__(self, process: RegistryProcess, metrics_url: str) -> None:
        self.process = process
        self.target = process.target
        self.metrics_url = metrics_url

    def scrape(self) -> Samples:
        """One scrape of the endpoint."""
        return scrape(self.metrics_url)


@pytest.fixture
def metered(
    database_url: str, tmp_path: Path, minio_server: MinioServer, minio_bucket: str
) -> Iterator[MeteredRegistry]:
    """Both services in one process on PostgreSQL and MinIO, metrics on their own port."""
    port = free_loopback_port()
    process = RegistryProcess(
        tmp_path, "--metrics=prometheus", f"--metrics-listen=127.0.0.1:{port}",
        "--http-listen=off", "--scan-models=off", "--sweep-interval=0",
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
    version = client.push(model, model="metered")
    after = metered.scrape()

    assert version.version == 1
    assert _delta(before, after, RECEIVED) == pushed
    assert _calls(before, after, METADATA, "CreateModelVersion") == 1
    assert _calls(before, after, METADATA, "CommitModelVersion") == 1
    assert _calls(before, after, ARTIFACTS, "CreateUploadSession") == 2
    assert _calls(before, after, ARTIFACTS, "Write") == 2
    assert _calls(before, after, ARTIFACTS, "FindMissingBlobs") >= 1
    # Nothing is left open once the push returned.
    assert value(after, "modelregistry_artifact_uploads_active") == 0
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


def test_read_resolve_denials_and_gc_move_their_counters(
    metered: MeteredRegistry, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    write_random(model / "weights.bin", 2 * MiB + 5)
    client = Client(metered.target, cache_dir=tmp_path / "cache")
    version = client.push(model, model="metered")
    sha256 = version.files[0].sha256

    with grpc.insecure_channel(metered.target) as channel:
        artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        metadata = metadata_service_pb2_grpc.MetadataServiceStub(channel)

        # A download through the ArtifactService: bytes sent.
        before = metered.scrape()
        request = apb.ReadRequest(sha256=sha256, model_version=version.name)
        received = sum(len(r.data) for r in artifacts.Read(request, metadata=bearer(ADMIN_TOKEN)))
        after = metered.scrape()
        assert received == 2 * MiB + 5
        assert _delta(before, after, SENT) == received
        assert _calls(before, after, ARTIFACTS, "Read") == 1

        # The same reference twice: the first after the commit reaches the database.
        before = metered.scrape()
        client.resolve("metered")
        client.resolve("metered")
        after = metered.scrape()
        requests = "modelregistry_resolve_cache_requests_total"
        assert _delta(before, after, requests, {"result": "miss"}) == 1
        assert _delta(before, after, requests, {"result": "hit"}) == 1
        assert _calls(before, after, METADATA, "ResolveModelVersion") == 2

        # A token without role bindings, and a token the server does not know.
        stranger = client.create_token("metrics-stranger").secret
        before = metered.scrape()
        with pytest.raises(PermissionDeniedError):
            Client(metered.target, token=stranger, cache_dir=tmp_path / "c2").resolve("metered")
        with pytest.raises(UnauthenticatedError):
            Client(metered.target, token="mr1_x_y", cache_dir=tmp_path / "c3").resolve("metered")
        after = metered.scrape()
        assert _delta(before, after, "modelregistry_auth_denied_total") == 1
        assert _calls(before, after, METADATA, "ResolveModelVersion", code=7) == 1
        assert _calls(before, after, METADATA, "ResolveModelVersion", code=16) == 1

        # A blob no version names, collected by name: one run, one blob, its bytes freed.
        orphan = b"orphan bytes " * 1000
        digest = hashlib.sha256(orphan).hexdigest()
        session = artifacts.CreateUploadSession(
            apb.CreateUploadSessionRequest(
                blob=blob_pb2.BlobRef(sha256=digest, size_bytes=len(orphan))
            ),
            metadata=bearer(ADMIN_TOKEN),
        )
        artifacts.Write(
            iter([apb.WriteRequest(upload_session=session.name, data=orphan, finish_write=True)]),
            metadata=bearer(ADMIN_TOKEN),
        )
        before = metered.scrape()
        metadata.RunGarbageCollection(
            mpb.RunGarbageCollectionRequest(blobs=[f"blobs/{digest}"]),
            metadata=bearer(ADMIN_TOKEN),
        )
        after = metered.scrape()
        assert _delta(before, after, "modelregistry_gc_runs_total") == 1
        assert _delta(before, after, "modelregistry_gc_deleted_blobs_total") == 1
        assert _delta(before, after, "modelregistry_gc_freed_bytes_total") == len(orphan)

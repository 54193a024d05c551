"""A registry whose PostgreSQL (or MinIO) stops under it answers UNAVAILABLE, never INTERNAL.

Each test runs its own server process for the dependency it stops (the session's shared
PostgreSQL and MinIO are never touched), and an in-process registry on top of it. Every
unary MetadataService method is called, found through the service descriptor so a new
method cannot be forgotten: each must fail with ``UNAVAILABLE`` and reason
``DATABASE_UNAVAILABLE`` well within its deadline, and succeed again once PostgreSQL is back.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import blob_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2
from modelregistry_server.common.adapters.db import ensure_database
from modelregistry_server.common.adapters.embedded_postgres import EmbeddedPostgres
from tests.conftest import RunningRegistry, _start_registry
from tests.support.artifacts import aiter_of, download, sha256_hex, upload, write_requests
from tests.support.metadata import new_model, push
from tests.support.minio import MinioServer, ensure_minio_binary
from tests.support.registry_process import s3_flags
from tests.support.rpc import error_info
from tests.support.rpc_requests import requests_by_rpc

pytestmark = pytest.mark.e2e

# The deadline every call gets; an outage must be reported well before it passes.
DEADLINE_S = 15.0
METADATA = ms.DESCRIPTOR.services_by_name["MetadataService"]

MODEL = "models/m"
VERSION = "models/m/versions/1"
FILE = b"weights"


def _metadata_requests() -> dict[str, Message]:
    """One valid request per MetadataService method: each passes validation, so only the
    database can make it fail."""
    everything = requests_by_rpc()
    return {method.name: everything[method.name] for method in METADATA.methods}


async def _call(registry: RunningRegistry, method: str, request: Message) -> Any:
    """Invoke ``method`` on the metadata stub; a server stream is read to its first message."""
    rpc = getattr(registry.metadata, method)
    if METADATA.methods_by_name[method].server_streaming:
        stream = rpc(request, timeout=DEADLINE_S)
        try:
            async for first in stream:
                return first
            return None
        finally:
            stream.cancel()
    return await rpc(request, timeout=DEADLINE_S)


async def _expect_unavailable(
    call: Callable[[], Any], reason: str, what: str
) -> tuple[float, grpc.aio.AioRpcError]:
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call()
    elapsed = time.monotonic() - started
    error = failure.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE, (what, error.code(), error.details())
    assert error_info(error).reason == reason, (what, error.details())
    # Reported by the server, not by the client's deadline running out.
    assert elapsed < DEADLINE_S - 5, (what, elapsed)
    return elapsed, error


@pytest.fixture
def private_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, to be stopped and started again under the server."""
    # Under /tmp, not tmp_path: when run as root the server runs as another user, which must
    # be able to reach its data directory (tmp_path's parents are private).
    with tempfile.TemporaryDirectory(prefix="mr-test-pg-down-") as tmp:
        server = EmbeddedPostgres(Path(tmp), durable=False)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
async def registry_on_private_postgres(
    private_postgres: EmbeddedPostgres, tmp_path: Path
) -> AsyncIterator[RunningRegistry]:
    """Both services (blobs in a local directory) on the private PostgreSQL."""
    await ensure_database(private_postgres.dsn(), "registry")
    async for running in _start_registry(private_postgres.dsn("registry"), tmp_path / "data", []):
        yield running


async def test_every_metadata_call_is_unavailable_while_postgres_is_down(
    registry_on_private_postgres: RunningRegistry, private_postgres: EmbeddedPostgres
) -> None:
    registry = registry_on_private_postgres
    requests = _metadata_requests()
    # A method added to the service without a request here fails this test.
    assert set(requests) == {m.name for m in METADATA.methods}

    # Working calls first: a model, a READY version, an alias, so that every request above
    # names things that exist and the resolve cache holds an answer it could serve stale.
    await new_model(registry, "m")
    version = await push(registry, "m", {"w.bin": FILE})
    assert version.name == VERSION
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model=MODEL, alias="production", version=VERSION)
    )
    resolved = await registry.metadata.ResolveModelVersion(
        ms.ResolveModelVersionRequest(ref="m@production")
    )
    assert resolved.name == VERSION

    stopped = time.monotonic()
    await asyncio.to_thread(private_postgres.stop)
    timings: dict[str, float] = {}
    for method, request in requests.items():
        timings[method], _ = await _expect_unavailable(
            lambda m=method, r=request: _call(registry, m, r),  # type: ignore[misc]
            "DATABASE_UNAVAILABLE",
            method,
        )
    # The artifact service's database calls too (its blobs are in a local directory here).
    artifacts = registry.artifacts
    blob = f"blobs/{sha256_hex(FILE)}"
    ref = blob_pb2.BlobRef(sha256=sha256_hex(FILE), size_bytes=len(FILE))
    artifact_calls: dict[str, Callable[[], Any]] = {
        "GetBlob": lambda: artifacts.GetBlob(pb.GetBlobRequest(name=blob), timeout=DEADLINE_S),
        "ListBlobs": lambda: artifacts.ListBlobs(pb.ListBlobsRequest(), timeout=DEADLINE_S),
        "FindMissingBlobs": lambda: artifacts.FindMissingBlobs(
            pb.FindMissingBlobsRequest(blobs=[ref]), timeout=DEADLINE_S
        ),
        "CreateUploadSession": lambda: artifacts.CreateUploadSession(
            pb.CreateUploadSessionRequest(blob=ref), timeout=DEADLINE_S
        ),
        "QueryWriteStatus": lambda: artifacts.QueryWriteStatus(
            pb.QueryWriteStatusRequest(upload_session="uploadSessions/" + "0" * 32),
            timeout=DEADLINE_S,
        ),
        "DeleteBlob": lambda: artifacts.DeleteBlob(
            pb.DeleteBlobRequest(name=blob), timeout=DEADLINE_S
        ),
    }
    for method, call in artifact_calls.items():
        timings[method], _ = await _expect_unavailable(call, "DATABASE_UNAVAILABLE", method)
    outage_s = time.monotonic() - stopped
    print(f"\nall {len(timings)} calls UNAVAILABLE within {outage_s:.2f} s after stop;")
    print("  " + ", ".join(f"{m} {t:.3f}s" for m, t in sorted(timings.items())))

    # PostgreSQL back on the same port: the pool reconnects, the calls succeed again.
    await asyncio.to_thread(private_postgres.start)
    got = await _eventually(
        lambda: registry.metadata.GetModel(ms.GetModelRequest(name=MODEL), timeout=DEADLINE_S)
    )
    assert got.name == MODEL
    versions = await registry.metadata.ListModelVersions(
        ms.ListModelVersionsRequest(parent=MODEL), timeout=DEADLINE_S
    )
    assert [v.name for v in versions.model_versions] == [VERSION]
    created = await registry.metadata.CreateModel(
        ms.CreateModelRequest(model_id="after", model=model_pb2.Model()), timeout=DEADLINE_S
    )
    assert created.name == "models/after"


async def _eventually(call: Callable[[], Any], within_s: float = 30.0) -> Any:
    """Retry ``call`` while it is UNAVAILABLE (the pool may still hold dead connections)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture
def private_minio() -> Iterator[MinioServer]:
    """A MinIO of this test's own, to be stopped under the server."""
    server = MinioServer(binary=ensure_minio_binary()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def registry_on_private_minio(
    private_minio: MinioServer, database_url: str, tmp_path: Path
) -> AsyncIterator[RunningRegistry]:
    """Both services with blobs on the private MinIO (the session's PostgreSQL)."""
    flags = s3_flags(private_minio, "blobs")
    async for running in _start_registry(database_url, tmp_path / "data", flags):
        yield running


async def test_blob_calls_are_storage_unavailable_while_minio_is_down(
    registry_on_private_minio: RunningRegistry, private_minio: MinioServer
) -> None:
    registry = registry_on_private_minio
    stored = await upload(registry.artifacts, FILE)
    assert stored.committed_size == len(FILE)
    assert await download(registry.artifacts, sha256_hex(FILE)) == FILE
    session = await registry.artifacts.CreateUploadSession(
        pb.CreateUploadSessionRequest(
            blob=blob_pb2.BlobRef(sha256=sha256_hex(b"new"), size_bytes=3)
        )
    )

    private_minio.stop()
    artifacts = registry.artifacts
    name = f"blobs/{sha256_hex(FILE)}"
    calls: dict[str, Callable[[], Any]] = {
        "Read": lambda: download(artifacts, sha256_hex(FILE)),
        "GenerateDownloadUrl": lambda: artifacts.GenerateDownloadUrl(
            pb.GenerateDownloadUrlRequest(name=name), timeout=DEADLINE_S
        ),
        "Write": lambda: artifacts.Write(
            aiter_of(write_requests(session.name, b"new")), timeout=DEADLINE_S
        ),
        "CreateUploadSession": lambda: artifacts.CreateUploadSession(
            pb.CreateUploadSessionRequest(
                blob=blob_pb2.BlobRef(sha256=sha256_hex(b"other"), size_bytes=5)
            ),
            timeout=DEADLINE_S,
        ),
    }
    timings = {}
    for method, call in calls.items():
        timings[method], _ = await _expect_unavailable(call, "STORAGE_UNAVAILABLE", method)

    # What needs only the database keeps working while the object store is down.
    blob = await artifacts.GetBlob(pb.GetBlobRequest(name=name), timeout=DEADLINE_S)
    assert blob.size_bytes == len(FILE)
    listed = await artifacts.ListBlobs(pb.ListBlobsRequest(), timeout=DEADLINE_S)
    assert [b.name for b in listed.blobs] == [name]
    missing = await artifacts.FindMissingBlobs(
        pb.FindMissingBlobsRequest(
            blobs=[blob_pb2.BlobRef(sha256=sha256_hex(FILE), size_bytes=len(FILE))]
        ),
        timeout=DEADLINE_S,
    )
    assert list(missing.missing_blobs) == []

    # Last: DeleteBlob unindexes the blob before it deletes the object, by design.
    timings["DeleteBlob"], _ = await _expect_unavailable(
        lambda: artifacts.DeleteBlob(pb.DeleteBlobRequest(name=name), timeout=DEADLINE_S),
        "STORAGE_UNAVAILABLE",
        "DeleteBlob",
    )
    print("\nblob calls with MinIO down: " + ", ".join(f"{m} {t:.3f}s" for m, t in timings.items()))

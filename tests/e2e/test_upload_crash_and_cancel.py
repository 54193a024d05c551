"""Uploads survive SIGKILL of the server and client cancellations leave nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from modelregistry_server.artifacts.adapters.postgres.repository import (
    PostgresBlobIndex,
    PostgresUploadSessionRepository,
)
from modelregistry_server.artifacts.adapters.s3 import (
    DEFAULT_WORKERS,
    THREAD_NAME_PREFIX,
    S3BlobStore,
)
from modelregistry_server.artifacts.app.uploads import UploadService
from modelregistry_server.common.adapters.db import Database, create_pool
from tests.conftest import RunningRegistry, _start_registry
from tests.support.artifacts import CHUNK, download, sha256_hex, upload, write_requests
from tests.support.auth import authenticated_channel, authenticated_sync_channel
from tests.support.minio import MinioServer
from tests.support.registry_process import RegistryProcess, s3_flags

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
MiB = 1024 * 1024
S3_THREAD_PREFIX = THREAD_NAME_PREFIX + "_"
S3_WORKERS = DEFAULT_WORKERS  # the registry builds its store with the default size


def incomplete_uploads(minio: MinioServer, bucket: str) -> list[str]:
    """Keys of the multipart uploads MinIO holds open in ``bucket``."""
    result = minio.client()._list_multipart_uploads(bucket)
    return [upload.object_name for upload in result.uploads]


@pytest.fixture
def server(
    database_url: str, minio_server: MinioServer, minio_bucket: str, tmp_path: Path
) -> Iterator[RegistryProcess]:
    """The registry as a subprocess on MinIO and this test's database (started by the test)."""
    proc = RegistryProcess(
        tmp_path,
        *s3_flags(minio_server, minio_bucket),
        "--sweep-interval=0",
        database_url=database_url,
    )
    yield proc
    proc.stop()


def _send_until_killed(
    stub: artifact_service_pb2_grpc.ArtifactServiceStub,
    session: str,
    data: bytes,
    start: int,
    kill_at: int | None,
    reached: threading.Event,
    killed: threading.Event,
) -> pb.WriteResponse | None:
    def requests() -> Iterator[pb.WriteRequest]:
        for request in write_requests(session, data, start=start):
            if kill_at is not None and request.write_offset >= kill_at:
                reached.set()
                # Hold the stream here so the upload cannot finish before the kill lands.
                killed.wait(30)
            yield request

    try:
        response: pb.WriteResponse = stub.Write(requests(), timeout=120)
        return response
    except grpc.RpcError as error:
        # The server died under the stream; anything else is a real failure.
        if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            raise
        return None


async def test_sigkill_mid_upload_five_times_then_resume(
    server: RegistryProcess, database_url: str, minio_server: MinioServer, minio_bucket: str
) -> None:
    rng = random.Random(20261127)
    server.start()
    for run in range(5):
        data = os.urandom(rng.randint(40, 72) * MiB)
        digest = sha256_hex(data)
        with authenticated_sync_channel(server.target) as channel:
            stub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
            session = stub.CreateUploadSession(
                pb.CreateUploadSessionRequest(
                    blob=blob_pb2.BlobRef(sha256=digest, size_bytes=len(data))
                ),
                timeout=10,
            ).name
            reached, killed = threading.Event(), threading.Event()
            kill_at = rng.randint(len(data) // 10, len(data) * 9 // 10) // CHUNK * CHUNK
            sender = asyncio.create_task(
                asyncio.to_thread(
                    _send_until_killed, stub, session, data, 0, kill_at, reached, killed
                )
            )
            await asyncio.to_thread(reached.wait, 60)
            server.kill()
            killed.set()
            assert await sender is None, f"run {run}: the upload finished before the kill"
        server.start()
        with authenticated_sync_channel(server.target) as channel:
            stub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
            status = stub.QueryWriteStatus(
                pb.QueryWriteStatusRequest(upload_session=session), timeout=10
            )
            assert not status.complete
            assert 0 <= status.committed_size <= kill_at + CHUNK
            assert status.committed_size % (16 * MiB) == 0
            done = _send_until_killed(
                stub,
                session,
                data,
                status.committed_size,
                None,
                threading.Event(),
                threading.Event(),
            )
            assert done is not None
            assert done.blob.sha256 == digest
        async with authenticated_channel(server.target) as achannel:
            back = await download(artifact_service_pb2_grpc.ArtifactServiceStub(achannel), digest)
        assert sha256_hex(back) == digest, f"run {run}"
    server.stop()

    # The killed streams left parts in MinIO that no session will complete; the sweep with
    # every session treated as expired must abort every one of them.
    pool = await create_pool(database_url)
    store = S3BlobStore(minio_server.client(), minio_bucket)
    try:
        database = Database(pool)
        uploads = UploadService(
            PostgresUploadSessionRepository(database), PostgresBlobIndex(database), store
        )
        await uploads.sweep(expire_all=True)
    finally:
        await store.close()
        await pool.close()
    assert incomplete_uploads(minio_server, minio_bucket) == []


def _sockets_to(port: int) -> set[str]:
    """Inodes of this process's TCP sockets whose remote end is ``port`` on this machine."""
    inodes: set[str] = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def _fd_count(minio_port: int) -> int:
    """Open descriptors, less the HTTP keep-alive sockets to MinIO.

    urllib3 keeps a socket per connection it has needed, up to its pool's size, and the
    test's own listing client opens one more: capacity, not leaks (the pool bounds them).
    """
    minio = _sockets_to(minio_port)
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            count += not (target.startswith("socket:[") and target[8:-1] in minio)
    return count


def _threads() -> tuple[int, int]:
    """Threads outside the S3 store's worker pool, and the pool's own.

    The pool starts its workers lazily, up to its fixed size, and keeps them: a third worker
    that the cancellations' aborts needed is capacity, not a leak. Anything else that stays
    is one (say, a thread per request).
    """
    names = [t.name for t in threading.enumerate()]
    pool = sum(name.startswith(S3_THREAD_PREFIX) for name in names)
    return len(names) - pool, pool


async def _settled(expected_threads: int, expected_fds: int, port: int) -> tuple[int, int]:
    deadline = time.monotonic() + 10
    while True:
        now = (_threads()[0], _fd_count(port))
        if (now[0] <= expected_threads and now[1] <= expected_fds) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.1)


async def _held_requests(
    name: str, payload: bytes, limit: int, sent: asyncio.Event
) -> AsyncIterator[pb.WriteRequest]:
    """Send ``limit`` chunks, then hold the stream open until the call is cancelled."""
    for i, request in enumerate(write_requests(name, payload)):
        if i == limit:
            sent.set()
            await asyncio.sleep(3600)
        yield request


@pytest.fixture
async def quiet_s3_registry(
    database_url: str, tmp_path: Path, minio_server: MinioServer, minio_bucket: str
) -> AsyncIterator[RunningRegistry]:
    """Like ``s3_registry``, without the health monitor's background probes of MinIO: they
    open pooled connections at random moments, which the socket count below would blame on
    the cancellations."""
    extra = [*s3_flags(minio_server, minio_bucket), "--health-check-interval=0"]
    async for running in _start_registry(database_url, tmp_path / "data", extra):
        yield running


async def test_twenty_cancellations_leave_no_blob_no_upload_no_leaked_threads(
    quiet_s3_registry: RunningRegistry, minio_server: MinioServer, minio_bucket: str
) -> None:
    rng = random.Random(7)
    # Warm up: one full upload starts the store's worker threads and the channel's sockets.
    await upload(quiet_s3_registry.artifacts, os.urandom(40 * MiB))
    await asyncio.sleep(0.5)
    port = int(minio_server.endpoint.rsplit(":", 1)[1])
    baseline_threads, baseline_fds = _threads()[0], _fd_count(port)
    digests = []
    for _ in range(20):
        data = os.urandom(rng.randint(20, 48) * MiB)
        digest = sha256_hex(data)
        digests.append(digest)
        session = await quiet_s3_registry.artifacts.CreateUploadSession(
            pb.CreateUploadSessionRequest(
                blob=blob_pb2.BlobRef(sha256=digest, size_bytes=len(data))
            )
        )
        stop_after = rng.randint(1, len(data) // CHUNK - 1)
        sent = asyncio.Event()

        call = quiet_s3_registry.artifacts.Write(
            _held_requests(session.name, data, stop_after, sent)
        )
        await asyncio.wait_for(sent.wait(), timeout=60)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    uploads = quiet_s3_registry.server.uploads
    assert uploads is not None
    await asyncio.sleep(0.5)  # let the server's handlers observe the cancellations
    await uploads.sweep(expire_all=True)

    missing = await quiet_s3_registry.artifacts.FindMissingBlobs(
        pb.FindMissingBlobsRequest(
            blobs=[blob_pb2.BlobRef(sha256=d, size_bytes=1) for d in digests]
        )
    )
    assert len(missing.missing_blobs) == 20
    keys = {
        obj.object_name for obj in minio_server.client().list_objects(minio_bucket, recursive=True)
    }
    assert not any(d in key for d in digests for key in keys)
    assert incomplete_uploads(minio_server, minio_bucket) == []
    threads, fds = await _settled(baseline_threads, baseline_fds, port)
    assert threads <= baseline_threads, f"threads {threads} > baseline {baseline_threads}"
    assert _threads()[1] <= S3_WORKERS, "the S3 worker pool grew past its size"
    # The S3 client's pool may keep one or two more idle connections than after the warm-up
    # (parts go up two at a time); a leak would add one per cancellation, twenty here.
    assert fds <= baseline_fds + 2, f"open fds {fds} > baseline {baseline_fds} + 2"

"""ArtifactService over real gRPC with real PostgreSQL and a real MinIO (or the local store)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import urllib.request
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import duration_pb2

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import blob_pb2
from tests.conftest import RunningRegistry
from tests.support.artifacts import aiter_of, download, sha256_hex, upload, write_requests
from tests.support.minio import MinioServer
from tests.support.rpc import error_info

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
MiB = 1024 * 1024


def reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a failed call."""
    return str(error_info(error).reason)


async def new_session(registry: RunningRegistry, sha256: str, size: int) -> str:
    session = await registry.artifacts.CreateUploadSession(
        pb.CreateUploadSessionRequest(blob=blob_pb2.BlobRef(sha256=sha256, size_bytes=size))
    )
    return session.name


async def test_300_mib_file_round_trips_through_minio(s3_registry: RunningRegistry) -> None:
    data = os.urandom(300 * MiB)
    response = await upload(s3_registry.artifacts, data)
    assert response.committed_size == len(data)
    assert response.blob.sha256 == sha256_hex(data)
    back = await download(s3_registry.artifacts, sha256_hex(data))
    assert hashlib.sha256(back).hexdigest() == sha256_hex(data)
    assert len(back) == len(data)


async def test_empty_file_round_trips(s3_registry: RunningRegistry) -> None:
    response = await upload(s3_registry.artifacts, b"")
    assert response.blob.size_bytes == 0
    assert await download(s3_registry.artifacts, sha256_hex(b"")) == b""
    blob = await s3_registry.artifacts.GetBlob(pb.GetBlobRequest(name="blobs/" + sha256_hex(b"")))
    assert blob.size_bytes == 0


async def test_existing_blob_dedupes_and_find_missing_reports_only_absent(
    s3_registry: RunningRegistry,
) -> None:
    data = os.urandom(3 * MiB)
    await upload(s3_registry.artifacts, data)
    again = await s3_registry.artifacts.CreateUploadSession(
        pb.CreateUploadSessionRequest(
            blob=blob_pb2.BlobRef(sha256=sha256_hex(data), size_bytes=len(data))
        )
    )
    assert again.complete
    assert again.committed_size == len(data)
    absent = blob_pb2.BlobRef(sha256=sha256_hex(b"absent"), size_bytes=6)
    present = blob_pb2.BlobRef(sha256=sha256_hex(data), size_bytes=len(data))
    missing = await s3_registry.artifacts.FindMissingBlobs(
        pb.FindMissingBlobsRequest(blobs=[present, absent])
    )
    assert [b.sha256 for b in missing.missing_blobs] == [absent.sha256]


async def test_read_ranges_and_errors(s3_registry: RunningRegistry) -> None:
    data = os.urandom(5 * MiB + 3)
    digest = sha256_hex(data)
    await upload(s3_registry.artifacts, data)
    assert (
        await download(s3_registry.artifacts, digest, offset=MiB + 1, limit=2 * MiB)
        == (data[MiB + 1 : 3 * MiB + 1])
    )
    assert await download(s3_registry.artifacts, digest, offset=len(data)) == b""
    with pytest.raises(grpc.aio.AioRpcError) as past:
        await download(s3_registry.artifacts, digest, offset=len(data) + 1)
    assert past.value.code() == grpc.StatusCode.OUT_OF_RANGE
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await download(s3_registry.artifacts, sha256_hex(b"never stored"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_presigned_url_downloads_the_blob(s3_registry: RunningRegistry) -> None:
    data = os.urandom(2 * MiB)
    await upload(s3_registry.artifacts, data)
    response = await s3_registry.artifacts.GenerateDownloadUrl(
        pb.GenerateDownloadUrlRequest(
            name="blobs/" + sha256_hex(data), expires_in=duration_pb2.Duration(seconds=60)
        )
    )
    assert response.url.startswith("http://127.0.0.1:")
    body = await asyncio.to_thread(_http_get, response.url)
    assert hashlib.sha256(body).hexdigest() == sha256_hex(data)


async def test_download_urls_live_15_minutes_by_default_and_at_most_an_hour(
    s3_registry: RunningRegistry,
) -> None:
    data = os.urandom(1024)
    await upload(s3_registry.artifacts, data)
    name = "blobs/" + sha256_hex(data)

    async def expiry(expires_in: duration_pb2.Duration | None) -> timedelta:
        asked = datetime.now(UTC)
        response = await s3_registry.artifacts.GenerateDownloadUrl(
            pb.GenerateDownloadUrlRequest(name=name, expires_in=expires_in)
        )
        return response.expire_time.ToDatetime(tzinfo=UTC) - asked

    assert timedelta(minutes=15) <= await expiry(None) < timedelta(minutes=15, seconds=5)
    assert (
        timedelta(hours=1)
        <= await expiry(duration_pb2.Duration(seconds=3600))
        < timedelta(hours=1, seconds=5)
    )
    for too_long in (3601, 7 * 86400):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await expiry(duration_pb2.Duration(seconds=too_long))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(info.value) == "FIELD_INVALID"
        assert "expires_in: must be from 1 second to 1 hour (default 900 seconds)" in str(
            info.value.details()
        )


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as http:  # noqa: S310 - a loopback URL
        body: bytes = http.read()
    return body


async def test_local_store_refuses_presigned_urls(registry: RunningRegistry) -> None:
    data = b"weights"
    await upload(registry.artifacts, data)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.artifacts.GenerateDownloadUrl(
            pb.GenerateDownloadUrlRequest(name="blobs/" + sha256_hex(data))
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(info.value) == "DOWNLOAD_URL_UNSUPPORTED"
    assert await download(registry.artifacts, sha256_hex(data)) == data


class TestBadInputChangesNothing:
    """Each bad upload gets a clear error, and an earlier blob stays intact."""

    @pytest.fixture
    async def kept(self, s3_registry: RunningRegistry) -> bytes:
        data = os.urandom(2 * MiB)
        await upload(s3_registry.artifacts, data)
        return data

    async def assert_kept(self, registry: RunningRegistry, kept: bytes) -> None:
        assert await download(registry.artifacts, sha256_hex(kept)) == kept

    async def assert_absent(self, registry: RunningRegistry, sha256: str) -> None:
        missing = await registry.artifacts.FindMissingBlobs(
            pb.FindMissingBlobsRequest(blobs=[blob_pb2.BlobRef(sha256=sha256, size_bytes=1)])
        )
        assert len(missing.missing_blobs) == 1
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await download(registry.artifacts, sha256)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

    async def test_wrong_declared_digest(self, s3_registry: RunningRegistry, kept: bytes) -> None:
        data = os.urandom(6 * MiB)
        declared = sha256_hex(b"not these bytes")
        session = await new_session(s3_registry, declared, len(data))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s3_registry.artifacts.Write(aiter_of(write_requests(session, data)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(info.value) == "DIGEST_MISMATCH"
        await self.assert_absent(s3_registry, declared)
        await self.assert_absent(s3_registry, sha256_hex(data))
        await self.assert_kept(s3_registry, kept)

    async def test_wrong_size(self, s3_registry: RunningRegistry, kept: bytes) -> None:
        data = os.urandom(MiB)
        session = await new_session(s3_registry, sha256_hex(data), len(data) + 1)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s3_registry.artifacts.Write(aiter_of(write_requests(session, data)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(info.value) == "SIZE_MISMATCH"
        await self.assert_absent(s3_registry, sha256_hex(data))
        await self.assert_kept(s3_registry, kept)

    async def test_offset_gap_names_the_expected_offset(
        self, s3_registry: RunningRegistry, kept: bytes
    ) -> None:
        data = os.urandom(3 * MiB)
        session = await new_session(s3_registry, sha256_hex(data), len(data))
        requests = [
            pb.WriteRequest(upload_session=session, write_offset=0, data=data[:MiB]),
            pb.WriteRequest(write_offset=2 * MiB, data=data[2 * MiB :], finish_write=True),
        ]
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s3_registry.artifacts.Write(aiter_of(iter(requests)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"expected offset {MiB}" in (info.value.details() or "")
        await self.assert_absent(s3_registry, sha256_hex(data))
        await self.assert_kept(s3_registry, kept)

    async def test_oversized_chunk(self, s3_registry: RunningRegistry, kept: bytes) -> None:
        data = os.urandom(2 * MiB)
        session = await new_session(s3_registry, sha256_hex(data), len(data))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s3_registry.artifacts.Write(
                aiter_of(write_requests(session, data, chunk=2 * MiB))
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(info.value) == "CHUNK_TOO_LARGE"
        await self.assert_absent(s3_registry, sha256_hex(data))
        await self.assert_kept(s3_registry, kept)

    @pytest.mark.parametrize("bad", ["", "xyz", "A" * 64, "sha256:" + "0" * 64, "0" * 63])
    async def test_malformed_digest(
        self, s3_registry: RunningRegistry, kept: bytes, bad: str
    ) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await new_session(s3_registry, bad, 10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "sha256" in (info.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as read_info:
            await download(s3_registry.artifacts, bad)
        assert read_info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        await self.assert_kept(s3_registry, kept)

    async def test_writing_to_a_finished_session(
        self, s3_registry: RunningRegistry, kept: bytes
    ) -> None:
        data = os.urandom(MiB)
        session = await new_session(s3_registry, sha256_hex(data), len(data))
        await s3_registry.artifacts.Write(aiter_of(write_requests(session, data)))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s3_registry.artifacts.Write(aiter_of(write_requests(session, os.urandom(MiB))))
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason(info.value) == "UPLOAD_SESSION_COMPLETE"
        assert await download(s3_registry.artifacts, sha256_hex(data)) == data
        await self.assert_kept(s3_registry, kept)


async def test_resume_after_a_dropped_stream(
    s3_registry: RunningRegistry, minio_server: MinioServer
) -> None:
    data = os.urandom(40 * MiB)
    session = await new_session(s3_registry, sha256_hex(data), len(data))
    first = await s3_registry.artifacts.Write(
        aiter_of(write_requests(session, data[: 20 * MiB], finish=False))
    )
    status = await s3_registry.artifacts.QueryWriteStatus(
        pb.QueryWriteStatusRequest(upload_session=session)
    )
    assert status.committed_size == first.committed_size == 16 * MiB
    # Resume one chunk early: bytes below committed_size are ignored.
    done = await s3_registry.artifacts.Write(
        aiter_of(write_requests(session, data, start=status.committed_size - MiB))
    )
    assert done.blob.sha256 == sha256_hex(data)
    assert await download(s3_registry.artifacts, sha256_hex(data)) == data

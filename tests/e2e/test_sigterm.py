"""SIGTERM with uploads and watches in flight, against a real server process.

The server reports ``NOT_SERVING`` first, then ends every stream with ``UNAVAILABLE`` (a
client retries that), leaves no version half-committed, and every upload resumes where it
stopped once the server is started again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import metadata_service_pb2_grpc, model_pb2, model_version_pb2
from tests.support.artifacts import aiter_of, sha256_hex, write_requests
from tests.support.auth import authenticated_channel
from tests.support.registry_process import RegistryProcess
from tests.support.rpc import error_info

if TYPE_CHECKING:
    from modelregistry.artifact.v1.artifact_service_pb2_grpc import ArtifactServiceAsyncStub
    from modelregistry.metadata.v1.metadata_service_pb2_grpc import MetadataServiceAsyncStub

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

UPLOADS = 4
WATCHES = 4
MIB = 1024 * 1024
SIZE = 24 * MIB
GRACE_S = 2


def _stubs(channel: grpc.aio.Channel) -> tuple[MetadataServiceAsyncStub, ArtifactServiceAsyncStub]:
    metadata: MetadataServiceAsyncStub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
    artifacts: ArtifactServiceAsyncStub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
    return metadata, artifacts


async def _slow_upload(
    artifacts: ArtifactServiceAsyncStub, session: str, data: bytes
) -> tuple[float, grpc.StatusCode, str]:
    """Send ``data`` in 1 MiB chunks, 10 a second; return when and how the stream ended."""

    async def slowly() -> AsyncIterator[pb.WriteRequest]:
        for request in write_requests(session, data, chunk=MIB):
            yield request
            await asyncio.sleep(0.1)

    try:
        await artifacts.Write(slowly(), timeout=60)
    except grpc.aio.AioRpcError as error:
        return time.monotonic(), error.code(), error_info(error).reason
    return time.monotonic(), grpc.StatusCode.OK, ""


async def _watch(metadata: MetadataServiceAsyncStub) -> tuple[float, grpc.StatusCode, str]:
    call: Any = metadata.WatchModelEvents(ms.WatchModelEventsRequest(model="models/m"), timeout=60)
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError as error:
        return time.monotonic(), error.code(), error_info(error).reason
    return time.monotonic(), grpc.StatusCode.OK, ""


async def _health_turns(target: str, seen: list[tuple[float, int]]) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        watch: Any = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=60
        )
        try:
            async for reply in watch:
                seen.append((time.monotonic(), reply.status))
        except grpc.aio.AioRpcError:
            seen.append((time.monotonic(), -1))


async def _check_nothing_half_committed(database_url: str) -> None:
    """Every version is PENDING with no files and no blob references."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT v.state, jsonb_array_length(v.files) AS files, count(b.sha256) AS blobs "
            "FROM metadata.model_versions v LEFT JOIN metadata.version_blobs b "
            "USING (model_id, version) GROUP BY v.model_id, v.version"
        )
    finally:
        await conn.close()
    assert (
        sorted((r["state"], r["files"], r["blobs"]) for r in rows) == [("PENDING", 0, 0)] * UPLOADS
    )


async def _resume_all(
    target: str, sessions: list[str], blobs: list[bytes], versions: list[str]
) -> None:
    """Resume every upload from its committed size, then commit its version."""
    async with authenticated_channel(target) as channel:
        metadata, artifacts = _stubs(channel)
        for session_name, data, version_name in zip(sessions, blobs, versions, strict=True):
            status = await artifacts.QueryWriteStatus(
                pb.QueryWriteStatusRequest(upload_session=session_name)
            )
            # The parts stored before SIGTERM were kept: the upload resumes after them.
            assert 0 < status.committed_size < SIZE, status
            done = await artifacts.Write(
                aiter_of(write_requests(session_name, data, start=status.committed_size))
            )
            assert done.blob.sha256 == sha256_hex(data)
            files = [
                model_version_pb2.ManifestFile(
                    path="w.bin", sha256=sha256_hex(data), size_bytes=SIZE
                )
            ]
            committed = await metadata.CommitModelVersion(
                ms.CommitModelVersionRequest(name=version_name, files=files)
            )
            assert committed.state == model_version_pb2.MODEL_VERSION_STATE_READY


async def test_sigterm_with_uploads_and_watches_in_flight(
    tmp_path: Path, database_url: str
) -> None:
    # 5 MiB parts (the least S3 allows): a second of sending commits some before SIGTERM.
    server = RegistryProcess(
        tmp_path,
        f"--shutdown-grace={GRACE_S}",
        "--upload-part-size=5",
        database_url=database_url,
    )
    await asyncio.to_thread(server.start)
    blobs = [os.urandom(SIZE) for _ in range(UPLOADS)]
    sessions: list[str] = []
    versions: list[str] = []
    async with authenticated_channel(server.target) as channel:
        metadata, artifacts = _stubs(channel)
        await metadata.CreateModel(ms.CreateModelRequest(model_id="m", model=model_pb2.Model()))
        for data in blobs:
            version = await metadata.CreateModelVersion(
                ms.CreateModelVersionRequest(parent="models/m")
            )
            session = await artifacts.CreateUploadSession(
                pb.CreateUploadSessionRequest(
                    blob=blob_pb2.BlobRef(sha256=sha256_hex(data), size_bytes=SIZE),
                    model_version=version.name,
                )
            )
            versions.append(version.name)
            sessions.append(session.name)
        health: list[tuple[float, int]] = []
        health_task = asyncio.create_task(_health_turns(server.target, health))
        streams = [
            *(
                asyncio.create_task(_slow_upload(artifacts, s, d))
                for s, d in zip(sessions, blobs, strict=True)
            ),
            *(asyncio.create_task(_watch(metadata)) for _ in range(WATCHES)),
        ]
        await asyncio.sleep(1.0)  # every stream under way
        assert server.process is not None
        terminated = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        ended = await asyncio.gather(*streams)
        exit_code = await asyncio.to_thread(server.process.wait, 30)
        await health_task

    print(
        "\nafter SIGTERM: "
        + ", ".join(
            f"{code.name}/{reason or '-'} at {t - terminated:.2f}s" for t, code, reason in ended
        )
    )
    assert exit_code == 0
    assert [(code, reason) for _, code, reason in ended] == [
        (grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN")
    ] * (UPLOADS + WATCHES)
    not_serving = [
        t for t, status in health if status == health_pb2.HealthCheckResponse.NOT_SERVING
    ]
    assert not_serving, health
    assert not_serving[0] <= min(t for t, _, _ in ended)
    assert max(t for t, _, _ in ended) - terminated < GRACE_S + 3

    await _check_nothing_half_committed(database_url)

    # Started again, every upload resumes from what was committed, and commits.
    await asyncio.to_thread(server.start)
    try:
        await _resume_all(server.target, sessions, blobs, versions)
    finally:
        await asyncio.to_thread(server.stop)

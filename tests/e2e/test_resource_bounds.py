"""One greedy principal cannot make a real server hold memory or sessions without bound.

Against a server process (so its RSS is its own): 50 upload streams that send 1 MiB and stall
are ended by the idle timeout, 1,000 upload sessions that are never written are refused past
the per-principal limit, the server's RSS stays under a stated bound throughout, and a second
principal can still upload.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from tests.support.artifacts import aiter_of, sha256_hex, write_requests
from tests.support.auth import authenticated_channel, create_token
from tests.support.registry_process import RegistryProcess
from tests.support.rpc import error_info

if TYPE_CHECKING:
    from modelregistry.artifact.v1.artifact_service_pb2_grpc import ArtifactServiceAsyncStub

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

STALLED = 50
IDLE_SESSIONS = 1000
SESSION_LIMIT = 100
IDLE_TIMEOUT_S = 5
MIB = 1024 * 1024
# The bound this test states for the server's resident memory, whatever the greedy principal
# does: the server at rest (about 70 MiB here) plus 50 streams' buffered megabyte each and
# their gRPC buffers (peak about 230 MiB measured), with room to spare. The test prints
# what it measured; README.md ("Limits") has the figures.
RSS_BOUND_MIB = 400


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _stub(channel: grpc.aio.Channel) -> ArtifactServiceAsyncStub:
    stub: ArtifactServiceAsyncStub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
    return stub


async def _stalled_upload(stub: ArtifactServiceAsyncStub, i: int) -> grpc.aio.AioRpcError:
    """Declare 8 MiB, send 1 MiB, then send nothing more; return how the server ended it."""
    data = os.urandom(MIB) + bytes(7 * MIB)
    session = await stub.CreateUploadSession(
        pb.CreateUploadSessionRequest(
            blob=blob_pb2.BlobRef(sha256=sha256_hex(data), size_bytes=len(data))
        ),
        timeout=30,
    )

    async def then_stall() -> AsyncIterator[pb.WriteRequest]:
        yield pb.WriteRequest(upload_session=session.name, write_offset=0, data=data[:MIB])
        await asyncio.sleep(120)

    try:
        await stub.Write(then_stall(), timeout=60)
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError(f"stalled stream {i} was not ended")


async def test_a_greedy_principal_is_bounded_and_others_still_upload(
    tmp_path: Path, database_url: str
) -> None:
    server = RegistryProcess(
        tmp_path,
        f"--stream-idle-timeout={IDLE_TIMEOUT_S}",
        f"--max-upload-sessions-per-principal={SESSION_LIMIT}",
        database_url=database_url,
    )
    await asyncio.to_thread(server.start)
    assert server.process is not None
    pid = server.process.pid
    try:
        greedy = await create_token(server.target, "greedy")
        other = await create_token(server.target, "other")
        rest_mib = _rss_mib(pid)
        peak = rest_mib
        stop_sampling = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not stop_sampling.is_set():
                peak = max(peak, _rss_mib(pid))
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample())
        async with authenticated_channel(server.target, greedy) as channel:
            stub = _stub(channel)
            ended = await asyncio.gather(*(_stalled_upload(stub, i) for i in range(STALLED)))
            reasons = [(e.code(), error_info(e).reason) for e in ended]
            assert reasons == [(grpc.StatusCode.RESOURCE_EXHAUSTED, "STREAM_IDLE")] * STALLED

            refusals: list[tuple[grpc.StatusCode, str]] = []
            for i in range(IDLE_SESSIONS):
                blob = blob_pb2.BlobRef(sha256=sha256_hex(b"idle %d" % i), size_bytes=1000)
                try:
                    await stub.CreateUploadSession(
                        pb.CreateUploadSessionRequest(blob=blob), timeout=30
                    )
                except grpc.aio.AioRpcError as error:
                    refusals.append((error.code(), error_info(error).reason))
            refused = len(refusals)
            exhausted = (grpc.StatusCode.RESOURCE_EXHAUSTED, "UPLOAD_SESSIONS_EXHAUSTED")
            assert set(refusals) == {exhausted}
            # The 50 stalled sessions are unfinished too: they count towards the limit.
            assert refused == IDLE_SESSIONS - (SESSION_LIMIT - STALLED)

        async with authenticated_channel(server.target, other) as channel:
            stub = _stub(channel)
            data = os.urandom(3 * MIB)
            session = await stub.CreateUploadSession(
                pb.CreateUploadSessionRequest(
                    blob=blob_pb2.BlobRef(sha256=sha256_hex(data), size_bytes=len(data))
                ),
                timeout=30,
            )
            written = await stub.Write(aiter_of(write_requests(session.name, data)), timeout=60)
            assert written.blob.sha256 == sha256_hex(data)
        stop_sampling.set()
        await sampler
        print(
            f"\nRSS at rest {rest_mib:.0f} MiB, peak {peak:.0f} MiB with {STALLED} stalled "
            f"streams and {IDLE_SESSIONS} session attempts ({refused} refused); "
            f"bound {RSS_BOUND_MIB} MiB"
        )
        assert peak < RSS_BOUND_MIB
        assert server.process.poll() is None
    finally:
        await asyncio.to_thread(server.stop)

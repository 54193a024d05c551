"""Client-side helpers for tests and benchmarks that push and pull blobs over gRPC."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import blob_pb2

if TYPE_CHECKING:
    from modelregistry.artifact.v1.artifact_service_pb2_grpc import ArtifactServiceAsyncStub

CHUNK = 1024 * 1024


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def write_requests(
    session: str, data: bytes, start: int = 0, chunk: int = CHUNK, finish: bool = True
) -> Iterator[pb.WriteRequest]:
    """Yield the WriteRequests that send ``data[start:]`` to ``session``."""
    view = memoryview(data)
    offset = start
    first = True
    while offset < len(data):
        end = min(len(data), offset + chunk)
        last = finish and end == len(data)
        yield pb.WriteRequest(
            upload_session=session if first else "",
            write_offset=offset,
            data=bytes(view[offset:end]),
            finish_write=last,
        )
        first = False
        offset = end
    if finish and (len(data) == 0 or start >= len(data)):
        yield pb.WriteRequest(upload_session=session, write_offset=len(data), finish_write=True)


async def aiter_of(requests: Iterator[pb.WriteRequest]) -> AsyncIterator[pb.WriteRequest]:
    """Adapt a sync iterator for an async stub."""
    for request in requests:
        yield request


async def upload(
    stub: ArtifactServiceAsyncStub, data: bytes, model_version: str = ""
) -> pb.WriteResponse:
    """Upload ``data`` as one blob through a fresh session, for the PENDING ``model_version``
    (empty: as an operator, which only registry admins may)."""
    session = await stub.CreateUploadSession(
        pb.CreateUploadSessionRequest(
            blob=blob_pb2.BlobRef(sha256=sha256_hex(data), size_bytes=len(data)),
            model_version=model_version,
        )
    )
    if session.complete:
        return pb.WriteResponse(committed_size=len(data))
    response: pb.WriteResponse = await stub.Write(aiter_of(write_requests(session.name, data)))
    return response


async def download(
    stub: ArtifactServiceAsyncStub, sha256: str, offset: int = 0, limit: int = 0
) -> bytes:
    """Read a blob (or a range) into memory."""
    parts = []
    async for response in stub.Read(
        pb.ReadRequest(sha256=sha256, read_offset=offset, read_limit=limit)
    ):
        parts.append(response.data)
    return b"".join(parts)

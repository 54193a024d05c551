"""ArtifactService servicer: translates between the wire and the upload/blob use cases."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import empty_pb2

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from modelregistry_server.artifacts.app.blobs import BlobRef, BlobService
from modelregistry_server.artifacts.app.ports import ManifestLookup
from modelregistry_server.artifacts.app.read_access import ReadAccess
from modelregistry_server.artifacts.app.uploads import UploadService, WriteChunk
from modelregistry_server.artifacts.domain.blob import BlobChunk, parse_blob_name, validate_sha256
from modelregistry_server.artifacts.rpc.convert import blob_to_proto, session_to_proto
from modelregistry_server.common.adapters.allocator import release_free_memory
from modelregistry_server.common.kernel.identity import Permission
from modelregistry_server.common.rpc.auth import current_access, current_principal
from modelregistry_server.common.rpc.handlers import stream_errors, unary_errors
from modelregistry_server.common.rpc.proto_time import request_duration, request_time, timestamp
from modelregistry_server.common.rpc.status import to_status

_Context = grpc.aio.ServicerContext[Any, Any]
# Bytes a burst must move before its end releases memory (at least a few part buffers' worth).
_TRIM_AFTER_BYTES = 64 * 1024 * 1024


@dataclass
class RequestCounters:
    """Totals since start-up of the calls that move bytes.

    They show where the bytes of a pull came from: a pull served from the client's cache must
    leave ``reads`` and ``download_urls`` unchanged. Plain integers: the servicer runs on one
    event loop, so increments cannot race.
    """

    writes: int = 0
    writes_open: int = 0  # Write streams in progress (upload sessions being written) now
    write_bytes: int = 0
    reads: int = 0
    reads_open: int = 0  # Read streams in progress now
    read_bytes: int = 0
    download_urls: int = 0
    direct_upload_urls: int = 0  # sessions answered with a URL to PUT their blob to the store


def _owner() -> str | None:
    """Whose upload sessions a call may touch: its principal's (None: the registry itself)."""
    principal = current_principal()
    return None if principal.method == "internal" else principal.name


class ArtifactServicer(artifact_service_pb2_grpc.ArtifactServiceServicer):
    """The bytes side of the registry."""

    def __init__(
        self,
        uploads: UploadService,
        blobs: BlobService,
        reads: ReadAccess,
        references: ManifestLookup,
    ) -> None:
        self._uploads = uploads
        self._blobs = blobs
        self._reads = reads
        self._references = references
        self.counters = RequestCounters()
        self._trimmed_at = 0  # counters' bytes moved when memory was last released

    async def _authorize_read(self, model_version: str, sha256: str) -> None:
        """The check before any byte or URL leaves: the permission table already required
        ``models.read`` on ``model_version``'s model; its manifest must hold the blob. A read
        naming no version is for registry admins only."""
        if not model_version:
            current_access().require(Permission.ADMINISTER, None)
            return
        await self._reads.require_blob_in_version(model_version, sha256)

    def _after_stream(self) -> None:
        """When the last byte stream of a burst has ended, give its buffers' pages back to the
        OS (common/adapters/allocator.py); not while another stream is still moving bytes, and
        not after a burst too small to matter: a garbage collection per scan of a file header
        (a 1 MiB Read) would be work on a hot path for nothing."""
        c = self.counters
        if c.writes_open or c.reads_open:
            return
        moved = c.write_bytes + c.read_bytes
        if moved - self._trimmed_at >= _TRIM_AFTER_BYTES:
            self._trimmed_at = moved
            release_free_memory()

    @unary_errors(to_status)
    async def CreateUploadSession(  # noqa: N802 - gRPC method names are PascalCase
        self, request: pb.CreateUploadSessionRequest, context: _Context
    ) -> blob_pb2.UploadSession:
        """See the proto."""
        # The permission table required models.write on model_version's model (or, naming
        # none, on some model: then only registry admins may go on).
        if request.model_version:
            await self._reads.require_pending(request.model_version)
        else:
            current_access().require(Permission.ADMINISTER, None)
        session = await self._uploads.create_session(
            request.blob.sha256,
            request.blob.size_bytes,
            request.request_id,
            _owner(),
            direct=request.direct_upload,
        )
        if session.direct_upload is not None:
            self.counters.direct_upload_urls += 1
        return session_to_proto(session)

    @unary_errors(to_status)
    async def FinishDirectUpload(  # noqa: N802
        self, request: pb.FinishDirectUploadRequest, context: _Context
    ) -> blob_pb2.UploadSession:
        """See the proto."""
        session = await self._uploads.finish_direct(request.upload_session, _owner())
        return session_to_proto(session)

    @unary_errors(to_status)
    async def Write(  # noqa: N802
        self, request_iterator: AsyncIterator[pb.WriteRequest], context: _Context
    ) -> pb.WriteResponse:
        """See the proto."""

        counters = self.counters
        counters.writes += 1

        async def chunks() -> AsyncIterator[WriteChunk]:
            async for request in request_iterator:
                # A view into the received message (wire.decode_write_request): no copy.
                data = request.data
                counters.write_bytes += len(data)
                yield WriteChunk(
                    request.upload_session,
                    request.write_offset,
                    data,
                    request.finish_write,
                )

        counters.writes_open += 1
        try:
            result = await self._uploads.write(chunks(), _owner())
        finally:
            counters.writes_open -= 1
            self._after_stream()
        response = pb.WriteResponse(committed_size=result.committed_size)
        if result.blob is not None:
            response.blob.CopyFrom(blob_to_proto(result.blob))
        return response

    @unary_errors(to_status)
    async def QueryWriteStatus(  # noqa: N802
        self, request: pb.QueryWriteStatusRequest, context: _Context
    ) -> pb.QueryWriteStatusResponse:
        """See the proto."""
        session = await self._uploads.query_write_status(request.upload_session, _owner())
        return pb.QueryWriteStatusResponse(
            committed_size=session.committed_size, complete=session.complete
        )

    @stream_errors(to_status)
    async def Read(  # type: ignore[override]  # noqa: N802 - yields bytes, framed by wire.py
        self, request: pb.ReadRequest, context: _Context
    ) -> AsyncIterator[BlobChunk]:
        """See the proto. Yields each ``ReadResponse`` as its chunk of data, which
        ``wire.encode_read_response`` frames with one copy (not a message built and
        serialized: two)."""
        await self._authorize_read(request.model_version, validate_sha256(request.sha256))
        self.counters.reads += 1
        self.counters.reads_open += 1
        chunks = self._blobs.read(request.sha256, request.read_offset, request.read_limit)
        try:
            # aclosing: a client that stops early releases the store's response/file at once,
            # not whenever the generator is garbage-collected.
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    self.counters.read_bytes += len(chunk)
                    yield chunk
        finally:
            self.counters.reads_open -= 1
            self._after_stream()

    @unary_errors(to_status)
    async def FindMissingBlobs(  # noqa: N802
        self, request: pb.FindMissingBlobsRequest, context: _Context
    ) -> pb.FindMissingBlobsResponse:
        """See the proto."""
        refs = [BlobRef(b.sha256, b.size_bytes) for b in request.blobs]
        missing = await self._blobs.find_missing(refs)
        return pb.FindMissingBlobsResponse(
            missing_blobs=[blob_pb2.BlobRef(sha256=r.sha256, size_bytes=r.size) for r in missing]
        )

    @unary_errors(to_status)
    async def GetBlob(  # noqa: N802
        self, request: pb.GetBlobRequest, context: _Context
    ) -> blob_pb2.Blob:
        """See the proto."""
        return blob_to_proto(await self._blobs.get(request.name))

    @unary_errors(to_status)
    async def GenerateDownloadUrl(  # noqa: N802
        self, request: pb.GenerateDownloadUrlRequest, context: _Context
    ) -> pb.GenerateDownloadUrlResponse:
        """See the proto."""
        await self._authorize_read(request.model_version, parse_blob_name(request.name))
        self.counters.download_urls += 1
        expires_in = request_duration(request, "expires_in")
        url, ttl = await self._blobs.download_url(request.name, expires_in)
        return pb.GenerateDownloadUrlResponse(
            url=url, expire_time=timestamp(datetime.now(UTC) + ttl)
        )

    @unary_errors(to_status)
    async def ListBlobs(  # noqa: N802
        self, request: pb.ListBlobsRequest, context: _Context
    ) -> pb.ListBlobsResponse:
        """See the proto."""
        created_before = request_time(request, "created_before")
        page = await self._blobs.list(request.page_size, request.page_token, created_before)
        return pb.ListBlobsResponse(
            blobs=[blob_to_proto(b) for b in page.items], next_page_token=page.next_page_token
        )

    @unary_errors(to_status)
    async def DeleteBlob(  # noqa: N802
        self, request: pb.DeleteBlobRequest, context: _Context
    ) -> empty_pb2.Empty:
        """See the proto."""
        principal = current_principal()
        if principal.method == "internal":  # garbage collection, holding the digest's lock
            await self._blobs.delete(request.name, request.request_id)
        else:
            await self._blobs.delete_if_unreferenced(
                request.name, request.request_id, principal.name, self._references
            )
        return empty_pb2.Empty()

"""``BlobChecker`` over gRPC: the metadata service asks the ArtifactService, never storage."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import grpc

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from modelregistry_server.common.rpc.link import ServiceLink, upstream_unavailable
from modelregistry_server.common.rpc.proto_time import timestamp
from modelregistry_server.metadata.domain.errors import Unavailable
from modelregistry_server.metadata.domain.version import ManifestFile

_BATCH = 10_000  # FindMissingBlobs' per-call maximum
_TIMEOUT_S = 30.0


class GrpcBlobChecker:
    """Checks manifests with ``ArtifactService.FindMissingBlobs``; reads blobs for scans
    (``BlobReader``) with ``Read``.

    Args:
        link: The channel to the other service, with this service's credential.
    """

    def __init__(self, link: ServiceLink) -> None:
        self._link = link
        self._metadata = link.metadata
        self._channel = link.channel
        self._stub = artifact_service_pb2_grpc.ArtifactServiceStub(self._channel)
        self._target = link.target

    async def missing(self, files: Sequence[ManifestFile]) -> list[ManifestFile]:
        """See ``BlobChecker.missing``."""
        wanted = sorted({(f.sha256, f.size) for f in files})
        absent: set[tuple[str, int]] = set()
        for start in range(0, len(wanted), _BATCH):
            batch = [
                blob_pb2.BlobRef(sha256=sha, size_bytes=size)
                for sha, size in wanted[start : start + _BATCH]
            ]
            try:
                reply = await self._stub.FindMissingBlobs(
                    pb.FindMissingBlobsRequest(blobs=batch),
                    timeout=_TIMEOUT_S,
                    metadata=self._metadata,
                )
            except grpc.aio.AioRpcError as exc:
                raise self._unavailable(exc, "retry the commit") from exc
            absent.update((b.sha256, b.size_bytes) for b in reply.missing_blobs)
        return [f for f in files if (f.sha256, f.size) in absent]

    async def list_blobs(self, created_before: datetime) -> list[tuple[str, int]]:
        """See ``BlobChecker.list_blobs``."""
        found: list[tuple[str, int]] = []
        before = timestamp(created_before)
        token = ""
        while True:
            try:
                reply = await self._stub.ListBlobs(
                    pb.ListBlobsRequest(page_size=1000, page_token=token, created_before=before),
                    timeout=_TIMEOUT_S,
                    metadata=self._metadata,
                )
            except grpc.aio.AioRpcError as exc:
                raise self._unavailable(exc) from exc
            found += [(b.sha256, b.size_bytes) for b in reply.blobs]
            token = reply.next_page_token
            if not token:
                return found

    async def delete_blob(self, sha256: str) -> None:
        """See ``BlobChecker.delete_blob``."""
        try:
            await self._stub.DeleteBlob(
                pb.DeleteBlobRequest(name=f"blobs/{sha256}"),
                timeout=_TIMEOUT_S,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise self._unavailable(exc) from exc

    async def size_of(self, sha256: str) -> int | None:
        """See ``BlobChecker.size_of``."""
        try:
            blob = await self._stub.GetBlob(
                pb.GetBlobRequest(name=f"blobs/{sha256}"),
                timeout=_TIMEOUT_S,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise self._unavailable(exc) from exc
        return int(blob.size_bytes)

    async def read(self, version_name: str, sha256: str, offset: int, length: int) -> bytes:
        """See ``BlobReader.read``: one ranged ``Read`` as the version's reader.

        ``wait_for_ready``: at start-up the artifact service (this process's own port) may not
        listen yet; the call waits for it within the timeout instead of failing.
        """
        request = pb.ReadRequest(
            sha256=sha256, read_offset=offset, read_limit=length, model_version=version_name
        )
        parts: list[bytes] = []
        try:
            stream = self._stub.Read(
                request, timeout=_TIMEOUT_S, metadata=self._metadata, wait_for_ready=True
            )
            async for reply in stream:
                parts.append(reply.data)
        except grpc.aio.AioRpcError as exc:
            raise self._unavailable(exc) from exc
        return b"".join(parts)

    def _unavailable(self, exc: grpc.aio.AioRpcError, advice: str = "retry") -> Unavailable:
        passed_on = upstream_unavailable(exc, self._target, "ARTIFACT_SERVICE_UNAVAILABLE")
        if passed_on.reason != "ARTIFACT_SERVICE_UNAVAILABLE":
            return passed_on  # the artifact service answered: its store or database is down
        return Unavailable(
            f"the artifact service at {self._target} did not answer ({exc.code().name}); {advice}",
            reason="ARTIFACT_SERVICE_UNAVAILABLE",
        )

    async def close(self) -> None:
        """Close the channel."""
        await self._link.close()

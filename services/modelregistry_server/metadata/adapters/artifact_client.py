"""``BlobChecker`` over gRPC: the metadata service asks the ArtifactService, never storage."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from modelregistry_server.metadata.domain.errors import Unavailable
from modelregistry_server.metadata.domain.version import ManifestFile

_BATCH = 10_000  # FindMissingBlobs' per-call maximum
_TIMEOUT_S = 30.0


class GrpcBlobChecker:
    """Checks manifests with ``ArtifactService.FindMissingBlobs``.

    Args:
        target: ``host:port`` of the ArtifactService (this process's own port when both
            services run together).
    """

    def __init__(self, target: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = artifact_service_pb2_grpc.ArtifactServiceStub(self._channel)
        self._target = target

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
                    pb.FindMissingBlobsRequest(blobs=batch), timeout=_TIMEOUT_S
                )
            except grpc.aio.AioRpcError as exc:
                raise Unavailable(
                    f"the artifact service at {self._target} did not answer "
                    f"({exc.code().name}); retry the commit",
                    reason="ARTIFACT_SERVICE_UNAVAILABLE",
                ) from exc
            absent.update((b.sha256, b.size_bytes) for b in reply.missing_blobs)
        return [f for f in files if (f.sha256, f.size) in absent]

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close(None)

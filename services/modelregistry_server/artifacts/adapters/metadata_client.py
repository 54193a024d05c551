"""``ManifestLookup`` over gRPC: the artifact service asks the MetadataService, never its
tables."""

from __future__ import annotations

import grpc

from modelregistry.metadata.v1 import metadata_service_pb2 as pb
from modelregistry.metadata.v1 import metadata_service_pb2_grpc, model_version_pb2
from modelregistry_server.artifacts.app.ports import VersionManifest
from modelregistry_server.common.kernel.errors import Unavailable
from modelregistry_server.common.rpc.link import ServiceLink, upstream_unavailable

_TIMEOUT_S = 10.0
_FINAL = (
    model_version_pb2.MODEL_VERSION_STATE_READY,
    model_version_pb2.MODEL_VERSION_STATE_ARCHIVED,
)


class GrpcManifestLookup:
    """Looks manifests up with ``MetadataService.GetModelVersion``.

    Args:
        link: The channel to the other service, with this service's credential.
    """

    def __init__(self, link: ServiceLink) -> None:
        self._link = link
        self._metadata = link.metadata
        self._channel = link.channel
        self._stub = metadata_service_pb2_grpc.MetadataServiceStub(self._channel)
        self._target = link.target

    async def manifest_of(self, version_name: str) -> VersionManifest | None:
        """See ``ManifestLookup.manifest_of``."""
        try:
            version = await self._stub.GetModelVersion(
                pb.GetModelVersionRequest(name=version_name),
                timeout=_TIMEOUT_S,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return None
            # Its database being down is passed on as such (DATABASE_UNAVAILABLE), as for
            # collect_blob: the caller learns what is really down.
            raise upstream_unavailable(exc, self._target, "METADATA_SERVICE_UNAVAILABLE") from exc
        if version.state == model_version_pb2.MODEL_VERSION_STATE_DELETED:
            return None  # its blobs may be collected any time: nobody pulls it any more
        return VersionManifest(
            frozenset(f.sha256 for f in version.files),
            final=version.state in _FINAL,
            pending=version.state == model_version_pb2.MODEL_VERSION_STATE_PENDING,
        )

    async def collect_blob(self, sha256: str, actor: str) -> bool:
        """See ``ManifestLookup.collect_blob``: a garbage collection of just this blob."""
        # The internal principal may name who it acts for; the audit log records both.
        metadata = (*self._metadata, ("x-modelregistry-actor", actor))
        try:
            result = await self._stub.RunGarbageCollection(
                pb.RunGarbageCollectionRequest(blobs=[f"blobs/{sha256}"]),
                timeout=_TIMEOUT_S,
                metadata=metadata,
            )
        except grpc.aio.AioRpcError as exc:
            raise upstream_unavailable(exc, self._target, "METADATA_SERVICE_UNAVAILABLE") from exc
        return sha256 in result.deleted_blobs

    async def close(self) -> None:
        """Close the channel."""
        await self._link.close()


class UnconfiguredManifestLookup:
    """``ManifestLookup`` of an artifact service started alone without
    ``--metadata-service-url``: what needs the metadata service says so, instead of dialling
    a port that serves no metadata."""

    def _missing(self) -> Unavailable:
        return Unavailable(
            "this artifact service runs without the metadata service (--metadata-service-url "
            "and --metadata-service-token): reads that name a version and DeleteBlob need it",
            reason="METADATA_SERVICE_UNAVAILABLE",
        )

    async def manifest_of(self, version_name: str) -> VersionManifest | None:
        """See ``ManifestLookup.manifest_of``: always refused."""
        raise self._missing()

    async def collect_blob(self, sha256: str, actor: str) -> bool:
        """See ``ManifestLookup.collect_blob``: always refused."""
        raise self._missing()

    async def close(self) -> None:
        """Nothing to release."""

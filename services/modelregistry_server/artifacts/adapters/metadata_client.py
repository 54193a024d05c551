"""``ManifestLookup`` over gRPC: the artifact service asks the MetadataService, never its
tables."""

from __future__ import annotations

import grpc

from modelregistry.metadata.v1 import metadata_service_pb2 as pb
from modelregistry.metadata.v1 import metadata_service_pb2_grpc, model_version_pb2
from modelregistry_server.artifacts.app.ports import VersionManifest
from modelregistry_server.common.kernel.errors import Unavailable

_TIMEOUT_S = 10.0
_FINAL = (
    model_version_pb2.MODEL_VERSION_STATE_READY,
    model_version_pb2.MODEL_VERSION_STATE_ARCHIVED,
)


class GrpcManifestLookup:
    """Looks manifests up with ``MetadataService.GetModelVersion``.

    Args:
        target: ``host:port`` of the MetadataService (this process's own port or socket when
            both services run together).
        credential: The bearer token secret this service presents: the process's internal
            secret when both services run together, else ``--metadata-service-token``.
        credentials: TLS to reach it with; None for plaintext.
    """

    def __init__(
        self, target: str, credential: str, credentials: grpc.ChannelCredentials | None = None
    ) -> None:
        self._metadata = (("authorization", f"Bearer {credential}"),)
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target)
        else:
            self._channel = grpc.aio.secure_channel(target, credentials)
        self._stub = metadata_service_pb2_grpc.MetadataServiceStub(self._channel)
        self._target = target

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
            raise Unavailable(
                f"the metadata service at {self._target} did not answer ({exc.code().name}); retry",
                reason="METADATA_SERVICE_UNAVAILABLE",
            ) from exc
        if version.state == model_version_pb2.MODEL_VERSION_STATE_DELETED:
            return None  # its blobs may be collected any time: nobody pulls it any more
        return VersionManifest(frozenset(f.sha256 for f in version.files), version.state in _FINAL)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close(None)

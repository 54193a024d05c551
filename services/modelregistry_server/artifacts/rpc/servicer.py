"""ArtifactService servicer. This release answers every RPC with UNIMPLEMENTED, saying so."""

from __future__ import annotations

from modelregistry.artifact.v1 import artifact_service_pb2, artifact_service_pb2_grpc
from modelregistry_server.common.grpc_handlers import fill_unimplemented


class ArtifactServicer(artifact_service_pb2_grpc.ArtifactServiceServicer):
    """The bytes side of the registry: uploads, reads, presigned URLs (coming next)."""


fill_unimplemented(
    ArtifactServicer, artifact_service_pb2.DESCRIPTOR.services_by_name["ArtifactService"]
)

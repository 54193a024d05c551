"""A fake registry on a real local gRPC port that answers whatever a test tells it to.

It plays the hostile party for the SDK's pull: ``ResolveModelVersion`` returns ``answer`` as
set by the test (any name, manifest, digest), ``Read`` serves ``blobs`` by digest and records
every read, and ``GenerateDownloadUrl`` issues no URLs (the local-directory store's answer), so
every byte goes through ``Read``. No PostgreSQL or object store is involved.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from modelregistry.artifact.v1 import artifact_service_pb2, artifact_service_pb2_grpc
from modelregistry.metadata.v1 import (
    metadata_service_pb2,
    metadata_service_pb2_grpc,
    model_version_pb2,
)
from tests.support.artifacts import sha256_hex as sha

GOOD_UID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@dataclass
class HostileRegistry:
    """What the fake answers, and what it was asked."""

    answer: model_version_pb2.ModelVersion = field(default_factory=model_version_pb2.ModelVersion)
    blobs: dict[str, bytes] = field(default_factory=dict)
    resolved: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)

    def serve(
        self, files: dict[str, bytes], name: str = "models/fraud/versions/1", version: int = 1
    ) -> None:
        """Answer every resolve with a version ``name`` whose manifest is ``files``."""
        self.answer = model_version_pb2.ModelVersion(name=name, version=version, uid=GOOD_UID)
        for path, data in files.items():
            self.answer.files.add(path=path, sha256=sha(data), size_bytes=len(data))
            self.blobs[sha(data)] = data


class _Metadata(metadata_service_pb2_grpc.MetadataServiceServicer):
    def __init__(self, registry: HostileRegistry) -> None:
        self.registry = registry

    def ResolveModelVersion(  # noqa: N802 - gRPC method names are PascalCase
        self,
        request: metadata_service_pb2.ResolveModelVersionRequest,
        context: grpc.ServicerContext,
    ) -> model_version_pb2.ModelVersion:
        self.registry.resolved.append(request.ref)
        return self.registry.answer


class _Artifacts(artifact_service_pb2_grpc.ArtifactServiceServicer):
    def __init__(self, registry: HostileRegistry) -> None:
        self.registry = registry

    def GenerateDownloadUrl(  # noqa: N802
        self,
        request: artifact_service_pb2.GenerateDownloadUrlRequest,
        context: grpc.ServicerContext,
    ) -> artifact_service_pb2.GenerateDownloadUrlResponse:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this store issues no URLs")
        raise AssertionError("abort raises")

    def Read(  # noqa: N802
        self, request: artifact_service_pb2.ReadRequest, context: grpc.ServicerContext
    ) -> Iterator[artifact_service_pb2.ReadResponse]:
        self.registry.reads.append(request.sha256)
        data = self.registry.blobs.get(request.sha256)
        if data is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no blob {request.sha256}")
        yield artifact_service_pb2.ReadResponse(data=data[request.read_offset :])


def start(registry: HostileRegistry) -> tuple[grpc.Server, str]:
    """Serve ``registry`` on a free loopback port; returns the server and its target."""
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    # The other RPCs keep the generated base class's UNIMPLEMENTED answer (abstract to mypy).
    metadata = _Metadata(registry)  # type: ignore[abstract]
    artifacts = _Artifacts(registry)  # type: ignore[abstract]
    metadata_service_pb2_grpc.add_MetadataServiceServicer_to_server(metadata, server)
    artifact_service_pb2_grpc.add_ArtifactServiceServicer_to_server(artifacts, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


Tree = dict[str, tuple[str, int, str]]


def tree(root: Path) -> Tree:
    """Every entry under ``root`` (links not followed): kind, size and contents' digest."""
    found: Tree = {}
    for directory, subdirs, names in os.walk(root):
        for name in (*subdirs, *names):
            path = Path(directory, name)
            relative = str(path.relative_to(root))
            if path.is_symlink():
                found[relative] = ("link:" + os.readlink(path), 0, "")
            elif path.is_dir():
                found[relative] = ("dir", 0, "")
            else:
                data = path.read_bytes()
                found[relative] = ("file", len(data), sha(data))
    return found

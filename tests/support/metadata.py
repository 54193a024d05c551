"""Raw-stub helpers for tests that make models and versions over gRPC."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2, model_version_pb2
from tests.support.artifacts import sha256_hex, upload

if TYPE_CHECKING:
    from tests.conftest import RunningRegistry


async def new_model(registry: RunningRegistry, model_id: str) -> None:
    """Create an empty model."""
    await registry.metadata.CreateModel(
        ms.CreateModelRequest(model_id=model_id, model=model_pb2.Model())
    )


async def new_version(
    registry: RunningRegistry, model_id: str, **fields: object
) -> model_version_pb2.ModelVersion:
    """Create a PENDING version; ``fields`` are ModelVersion fields (params, metrics, ...)."""
    return await registry.metadata.CreateModelVersion(
        ms.CreateModelVersionRequest(
            parent=f"models/{model_id}",
            model_version=model_version_pb2.ModelVersion(**fields),  # type: ignore[arg-type]
        )
    )


async def push(
    registry: RunningRegistry, model_id: str, files: dict[str, bytes], **fields: object
) -> model_version_pb2.ModelVersion:
    """Create, upload and commit a version holding ``files`` (``fields`` as in new_version)."""
    version = await new_version(registry, model_id, **fields)
    manifest = []
    for path, data in files.items():
        await upload(registry.artifacts, data, version.name)
        manifest.append(
            model_version_pb2.ManifestFile(path=path, sha256=sha256_hex(data), size_bytes=len(data))
        )
    return await registry.metadata.CommitModelVersion(
        ms.CommitModelVersionRequest(name=version.name, files=manifest)
    )

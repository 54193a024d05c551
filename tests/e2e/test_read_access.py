"""The bytes are guarded like the records: ``Read`` and ``GenerateDownloadUrl`` name the
version pulled; a viewer of model A cannot read model B's blobs by digest."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from modelregistry import AsyncClient, Client
from modelregistry.artifact.v1 import artifact_service_pb2 as apb
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry_server.access.rpc.permissions import RULES
from tests.conftest import RunningRegistry, _start_registry
from tests.support.artifacts import aiter_of, sha256_hex, upload, write_requests
from tests.support.auth import bearer, create_token
from tests.support.metadata import new_model, new_version, push
from tests.support.reason_cases import blob_ref
from tests.support.rpc import error_info

if TYPE_CHECKING:
    from modelregistry.artifact.v1.artifact_service_pb2_grpc import ArtifactServiceAsyncStub

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

A_FILE, B_FILE, SHARED = b"weights of a", b"weights of b only", b"config both share"
T = 10.0


async def _world(registry: RunningRegistry) -> tuple[str, str, str]:
    """Models a and b, each with a READY version 1; returns their names and a viewer of a."""
    for model, files in (("a", {"w.bin": A_FILE}), ("b", {"w.bin": B_FILE})):
        await new_model(registry, model)
        await push(registry, model, {**files, "config.json": SHARED})
    viewer = await create_token(registry.target, "viewer-of-a", "viewer", "a")
    return "models/a/versions/1", "models/b/versions/1", viewer


async def _read(stub: ArtifactServiceAsyncStub, secret: str, data: bytes, version: str) -> bytes:
    request = apb.ReadRequest(sha256=sha256_hex(data), model_version=version)
    chunks = stub.Read(request, metadata=bearer(secret), timeout=T)
    return b"".join([c.data async for c in chunks])


async def _url(stub: ArtifactServiceAsyncStub, secret: str, data: bytes, version: str) -> str:
    request = apb.GenerateDownloadUrlRequest(
        name=f"blobs/{sha256_hex(data)}", model_version=version
    )
    reply = await stub.GenerateDownloadUrl(request, metadata=bearer(secret), timeout=T)
    return reply.url


async def _denied(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    return caught.value


async def test_a_viewer_of_a_cannot_read_a_blob_only_b_references(
    s3_registry: RunningRegistry,
) -> None:
    a_version, b_version, viewer = await _world(s3_registry)
    # The registry's channel adds the admin token only to calls that carry none.
    stub = s3_registry.artifacts
    # Naming a's version: a does not hold b's blob.
    for call in (_read, _url):
        error = await _denied(call(stub, viewer, B_FILE, a_version))
        assert f"{a_version} does not hold blob {sha256_hex(B_FILE)}" in str(error.details())
    # Naming b's version: no models.read on b.
    for call in (_read, _url):
        error = await _denied(call(stub, viewer, B_FILE, b_version))
        assert "models.read" in str(error.details())
        assert "models/b" in str(error.details())
    # Its own blobs, and the one both hold through a's version, it reads.
    assert await _read(stub, viewer, A_FILE, a_version) == A_FILE
    assert await _read(stub, viewer, SHARED, a_version) == SHARED
    assert (await _url(stub, viewer, A_FILE, a_version)).startswith("http")
    # Without a version only a registry admin may read.
    for call in (_read, _url):
        error = await _denied(call(stub, viewer, A_FILE, ""))
        assert "registry.admin" in str(error.details())
    admin = await create_token(s3_registry.target, "operator", "admin", "*")
    assert await _read(stub, admin, B_FILE, "") == B_FILE
    assert (await _url(stub, admin, B_FILE, "")).startswith("http")


async def test_a_version_that_does_not_exist_is_refused_like_a_foreign_blob(
    registry: RunningRegistry,
) -> None:
    a_version, _, viewer = await _world(registry)
    stub = registry.artifacts
    error = await _denied(_read(stub, viewer, A_FILE, "models/a/versions/9"))
    assert "models/a/versions/9 does not hold blob" in str(error.details())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _read(stub, viewer, A_FILE, "models/a/nine")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert a_version


async def test_a_viewer_of_a_pulls_a_through_the_sdk(
    s3_registry: RunningRegistry, tmp_path: Path
) -> None:
    _, _, viewer = await _world(s3_registry)
    client = Client(s3_registry.target, token=viewer, cache_dir=tmp_path / "cache")
    try:
        dest = await asyncio.to_thread(client.pull, "a:1", tmp_path / "out")
        assert (Path(dest) / "w.bin").read_bytes() == A_FILE
        assert (Path(dest) / "config.json").read_bytes() == SHARED
    finally:
        client.close()


def test_reads_are_ruled_by_the_version_they_name() -> None:
    for method in ("Read", "GenerateDownloadUrl"):
        rule = RULES[f"/modelregistry.artifact.v1.ArtifactService/{method}"]
        assert rule.scope == "model"
        assert rule.model is not None
        assert rule.model(apb.ReadRequest(model_version="models/x/versions/2")) == "x"


async def test_delete_blob_refuses_a_blob_a_live_version_holds_and_the_version_still_pulls(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    held, loose = b"weights of a READY version", b"uploaded, never committed"
    await new_model(registry, "kept")
    await push(registry, "kept", {"w.bin": held})
    await upload(registry.artifacts, loose)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await registry.artifacts.DeleteBlob(apb.DeleteBlobRequest(name=f"blobs/{sha256_hex(held)}"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(refused.value).reason == "BLOB_IN_USE"
    await registry.artifacts.DeleteBlob(apb.DeleteBlobRequest(name=f"blobs/{sha256_hex(loose)}"))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await registry.artifacts.GetBlob(apb.GetBlobRequest(name=f"blobs/{sha256_hex(loose)}"))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    async with AsyncClient(registry.target, cache_dir=tmp_path / "cache") as client:
        folder = await client.pull("kept:1", tmp_path / "out")
    assert (folder / "w.bin").read_bytes() == held
    audit = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(actor="admin via modelregistry-internal")
    )
    assert [e.method for e in audit.audit_events] == ["RunGarbageCollection"] * 2


async def test_an_upload_session_belongs_to_the_principal_that_made_it(
    registry: RunningRegistry,
) -> None:
    alice = bearer(await create_token(registry.target, "alice", "writer", "a"))
    bob = bearer(await create_token(registry.target, "bob", "writer", "b"))
    await new_model(registry, "a")
    pending = await new_version(registry, "a")
    data = b"alice's weights"
    session = await registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(data), model_version=pending.name),
        metadata=alice,
    )
    query = apb.QueryWriteStatusRequest(upload_session=session.name)
    for call in (
        registry.artifacts.QueryWriteStatus(query, metadata=bob),
        registry.artifacts.Write(aiter_of(write_requests(session.name, data)), metadata=bob),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "belongs to another principal" in (refused.value.details() or "")
    written = await registry.artifacts.Write(
        aiter_of(write_requests(session.name, data)), metadata=alice
    )
    assert written.committed_size == len(data)
    status = await registry.artifacts.QueryWriteStatus(query, metadata=alice)
    assert status.complete


async def test_an_artifact_service_alone_without_the_metadata_service_says_what_is_missing(
    database_url: str, tmp_path: Path
) -> None:
    async for alone in _start_registry(database_url, tmp_path / "data", ["artifacts"]):
        data = b"stored, then asked about"
        await upload(alone.artifacts, data)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await alone.artifacts.DeleteBlob(
                apb.DeleteBlobRequest(name=f"blobs/{sha256_hex(data)}")
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(refused.value).reason == "METADATA_SERVICE_UNAVAILABLE"
        assert "--metadata-service-url" in (refused.value.details() or "")


async def test_an_upload_is_for_a_pending_version_the_caller_may_write(
    registry: RunningRegistry,
) -> None:
    writer_of_a = bearer(await create_token(registry.target, "alice", "writer", "a"))
    await new_model(registry, "a")
    await new_model(registry, "b")
    ready = await push(registry, "a", {"w.bin": b"committed"})
    pending_a = await new_version(registry, "a")
    pending_b = await new_version(registry, "b")
    ref = blob_ref(b"new weights")

    async def create(model_version: str) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await registry.artifacts.CreateUploadSession(
                apb.CreateUploadSessionRequest(blob=ref, model_version=model_version),
                metadata=writer_of_a,
            )
        return refused.value

    other = await create(pending_b.name)  # a version of a model alice may not write
    assert other.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(other).metadata["permission"] == "models.write"
    unnamed = await create("")  # naming no version is for registry admins
    assert unnamed.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(unnamed).metadata["permission"] == "registry.admin"
    committed = await create(ready.name)
    assert committed.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(committed).reason == "VERSION_NOT_PENDING"
    missing = await create("models/a/versions/99")
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(missing).reason == "MODEL_VERSION_NOT_FOUND"
    garbage = await create("models/a/versions/x")
    assert garbage.code() == grpc.StatusCode.INVALID_ARGUMENT

    session = await registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=ref, model_version=pending_a.name),
        metadata=writer_of_a,
    )
    assert session.name.startswith("uploadSessions/")
    assert not session.complete

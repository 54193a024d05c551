"""Garbage collection over real gRPC, PostgreSQL and MinIO, racing concurrent pushes."""

from __future__ import annotations

import asyncio
import os
import random

import asyncpg
import grpc
import pytest

from modelregistry.artifact.v1 import artifact_service_pb2 as apb
from modelregistry.artifact.v1 import blob_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_version_pb2
from tests.conftest import RunningRegistry
from tests.support.artifacts import sha256_hex, upload
from tests.support.metadata import new_model, push
from tests.support.rpc import error_info

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


async def age_all_blobs(database_url: str) -> None:
    """Make every stored blob look three days old, i.e. past the default 48 h grace period."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE artifacts.blobs SET create_time = now() - interval '3 days'")
    finally:
        await conn.close()


async def all_blobs(registry: RunningRegistry) -> dict[str, int]:
    found: dict[str, int] = {}
    token = ""
    while True:
        page = await registry.artifacts.ListBlobs(
            apb.ListBlobsRequest(page_size=100, page_token=token)
        )
        found.update((b.sha256, b.size_bytes) for b in page.blobs)
        token = page.next_page_token
        if not token:
            return found


async def test_dry_run_reports_and_deletes_nothing_then_gc_deletes_only_unreferenced(
    registry: RunningRegistry, database_url: str
) -> None:
    await new_model(registry, "m")
    kept = await push(registry, "m", {"w": os.urandom(1000)})
    orphan = os.urandom(2000)
    await upload(registry.artifacts, orphan)
    await age_all_blobs(database_url)
    dry = await registry.metadata.RunGarbageCollection(ms.RunGarbageCollectionRequest(dry_run=True))
    assert list(dry.deleted_blobs) == [sha256_hex(orphan)]
    assert (dry.deleted_size_bytes, dry.dry_run) == (2000, True)
    assert sha256_hex(orphan) in await all_blobs(registry)
    done = await registry.metadata.RunGarbageCollection(ms.RunGarbageCollectionRequest())
    assert list(done.deleted_blobs) == [sha256_hex(orphan)]
    remaining = await all_blobs(registry)
    assert sha256_hex(orphan) not in remaining
    assert kept.files[0].sha256 in remaining


async def test_gc_racing_200_deduplicating_pushes_never_leaves_a_ready_version_without_blobs(
    s3_registry: RunningRegistry, database_url: str
) -> None:
    registry = s3_registry
    await new_model(registry, "m")
    shared = [os.urandom(64 * 1024) for _ in range(20)]
    orphans = [os.urandom(32 * 1024) for _ in range(10)]
    for data in shared + orphans:
        await upload(registry.artifacts, data)
    await age_all_blobs(database_url)  # every one of them is now eligible for deletion
    rng = random.Random(11)
    limit = asyncio.Semaphore(16)
    retries = 0

    async def one_push(i: int) -> model_version_pb2.ModelVersion:
        nonlocal retries
        data = shared[rng.randrange(len(shared))]
        async with limit:
            version = await registry.metadata.CreateModelVersion(
                ms.CreateModelVersionRequest(parent="models/m")
            )
            for _attempt in range(10):
                await upload(registry.artifacts, data)  # dedupes while the blob still exists
                try:
                    return await registry.metadata.CommitModelVersion(
                        ms.CommitModelVersionRequest(
                            name=version.name,
                            files=[
                                model_version_pb2.ManifestFile(
                                    path=f"w{i}", sha256=sha256_hex(data), size_bytes=len(data)
                                )
                            ],
                        )
                    )
                except grpc.aio.AioRpcError as error:
                    # GC deleted the blob between the upload and the commit: upload again.
                    if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                        raise
                    retries += 1
            raise AssertionError("push did not commit in 10 attempts")

    async def collect_repeatedly() -> int:
        deleted = 0
        for _ in range(5):
            result = await registry.metadata.RunGarbageCollection(ms.RunGarbageCollectionRequest())
            deleted += result.deleted_blob_count
            await asyncio.sleep(0.05)
        return deleted

    pushes = asyncio.gather(*(one_push(i) for i in range(200)))
    deleted, versions = await asyncio.gather(collect_repeatedly(), pushes)
    print(f"GC deleted {deleted} blobs while pushing; pushes re-uploaded {retries} times")
    assert deleted >= len(orphans)
    assert len(versions) == 200
    ready = [v for v in versions if v.state == model_version_pb2.MODEL_VERSION_STATE_READY]
    assert len(ready) == 200
    referenced = {v.files[0].sha256: v.files[0].size_bytes for v in ready}
    missing = await registry.artifacts.FindMissingBlobs(
        apb.FindMissingBlobsRequest(
            blobs=[blob_pb2.BlobRef(sha256=s, size_bytes=n) for s, n in referenced.items()]
        )
    )
    assert list(missing.missing_blobs) == [], "a READY version references a deleted blob"
    for sha in list(referenced)[:5]:
        data = b"".join(
            [r.data async for r in registry.artifacts.Read(apb.ReadRequest(sha256=sha))]
        )
        assert sha256_hex(data) == sha

    # A second pass, with everything past the grace period, leaves only referenced blobs.
    await age_all_blobs(database_url)
    await registry.metadata.RunGarbageCollection(ms.RunGarbageCollectionRequest())
    remaining = await all_blobs(registry)
    assert set(remaining) == set(referenced), "unreferenced blobs survived the second pass"


async def test_gc_and_delete_blob_check_request_id_and_gc_records_it(
    registry: RunningRegistry,
) -> None:
    for call in (
        registry.metadata.RunGarbageCollection(
            ms.RunGarbageCollectionRequest(dry_run=True, request_id="not-a-uuid")
        ),
        registry.artifacts.DeleteBlob(
            apb.DeleteBlobRequest(name="blobs/" + "0" * 64, request_id="not-a-uuid")
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await call
        assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(excinfo.value).reason == "FIELD_INVALID"
        assert error_info(excinfo.value).metadata["field"] == "request_id"

    request_id = "8b0f4c3e-5d0a-4c8e-9a51-0f1c2b3d4e5f"
    for _ in range(2):  # a retry runs again: nothing is left to do, and it says so
        result = await registry.metadata.RunGarbageCollection(
            ms.RunGarbageCollectionRequest(request_id=request_id)
        )
        assert (result.deleted_blob_count, result.expired_version_count) == (0, 0)
    audit = await registry.metadata.ListAuditEvents(ms.ListAuditEventsRequest())
    gc_events = [e for e in audit.audit_events if e.method == "RunGarbageCollection"]
    assert [e.request_id for e in gc_events] == [request_id, request_id]
    assert set(gc_events[0].after.fields) == {
        "deleted_blob_count",
        "deleted_size_bytes",
        "expired_version_count",
        "deleted_blobs",
    }

"""Unit tests of direct uploads in the upload use cases (``UploadService``), against fakes.

The store's side (a presigned PUT that S3 checks) is tested on a real MinIO in
tests/e2e/test_direct_upload.py; here: when a URL is offered, and what finishing requires.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from modelregistry_server.artifacts.app.uploads import UploadService
from modelregistry_server.artifacts.domain.blob import MAX_DIRECT_UPLOAD_SIZE
from modelregistry_server.artifacts.domain.errors import (
    DirectUploadMissing,
    InvalidArgument,
    NotSessionOwner,
    UploadSessionNotFound,
)
from tests.unit.artifact_fakes import InMemoryBlobIndex, InMemoryBlobStore, InMemoryUploadSessions

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def store() -> InMemoryBlobStore:
    store = InMemoryBlobStore()
    store.direct = True
    return store


@pytest.fixture
def index() -> InMemoryBlobIndex:
    return InMemoryBlobIndex()


@pytest.fixture
def service(store: InMemoryBlobStore, index: InMemoryBlobIndex) -> UploadService:
    return UploadService(InMemoryUploadSessions(), index, store)


def blob() -> tuple[bytes, str]:
    data = os.urandom(4096)
    return data, hashlib.sha256(data).hexdigest()


async def test_a_url_is_offered_only_when_asked_and_the_blob_is_missing(
    service: UploadService, store: InMemoryBlobStore
) -> None:
    data, digest = blob()
    assert (await service.create_session(digest, len(data))).direct_upload is None
    offered = await service.create_session(digest, len(data), direct=True)
    assert offered.direct_upload is not None
    assert offered.direct_upload.url == f"memory://{digest}"

    store.put_direct(digest, data)
    await service.finish_direct(offered.name)
    stored = await service.create_session(digest, len(data), direct=True)
    assert stored.complete
    assert stored.direct_upload is None


async def test_no_url_for_a_store_without_urls_or_a_blob_over_5_gib(
    service: UploadService, store: InMemoryBlobStore
) -> None:
    big = await service.create_session("ab" * 32, MAX_DIRECT_UPLOAD_SIZE + 1, direct=True)
    assert big.direct_upload is None
    store.direct = False
    data, digest = blob()
    assert (await service.create_session(digest, len(data), direct=True)).direct_upload is None


async def test_finishing_needs_the_store_to_hold_the_checked_blob(
    service: UploadService, store: InMemoryBlobStore, index: InMemoryBlobIndex
) -> None:
    data, digest = blob()
    session = await service.create_session(digest, len(data), owner="alice", direct=True)
    with pytest.raises(DirectUploadMissing) as caught:
        await service.finish_direct(session.name, owner="alice")
    assert caught.value.reason == "DIRECT_UPLOAD_MISSING"
    assert await index.get(digest) is None

    with pytest.raises(ValueError, match="Mismatch"):
        store.put_direct(digest, data + b"!")  # what S3 refuses
    store.put_direct(digest, data)
    with pytest.raises(NotSessionOwner):
        await service.finish_direct(session.name, owner="mallory")
    finished = await service.finish_direct(session.name, owner="alice")
    assert finished.complete
    assert finished.committed_size == len(data)
    indexed = await index.get(digest)
    assert indexed is not None
    assert indexed.size == len(data)
    assert (await service.query_write_status(session.name, owner="alice")).complete


async def test_a_blob_written_meanwhile_finishes_the_session_too(
    service: UploadService, store: InMemoryBlobStore, index: InMemoryBlobIndex
) -> None:
    data, digest = blob()
    session = await service.create_session(digest, len(data), direct=True)
    store.blobs[digest] = data  # another client's Write stored and indexed it
    await index.add(digest, len(data))
    assert (await service.finish_direct(session.name)).complete


async def test_a_wrong_declared_size_closes_the_session_and_keeps_the_blob(
    service: UploadService, store: InMemoryBlobStore, index: InMemoryBlobIndex
) -> None:
    data, digest = blob()
    session = await service.create_session(digest, len(data) + 1, direct=True)
    store.put_direct(digest, data)
    with pytest.raises(InvalidArgument) as caught:
        await service.finish_direct(session.name)
    assert caught.value.reason == "SIZE_MISMATCH"
    assert "holds 4096 bytes" in str(caught.value)
    assert await index.get(digest) is None
    assert store.blobs[digest] == data
    with pytest.raises(UploadSessionNotFound):
        await service.finish_direct(session.name)


async def test_an_operator_can_turn_the_offer_off(
    store: InMemoryBlobStore, index: InMemoryBlobIndex
) -> None:
    service = UploadService(InMemoryUploadSessions(), index, store, direct_uploads=False)
    data, digest = blob()
    assert (await service.create_session(digest, len(data), direct=True)).direct_upload is None


async def test_the_sweep_indexes_a_direct_upload_never_finished_so_gc_can_see_it(
    store: InMemoryBlobStore, index: InMemoryBlobIndex
) -> None:
    service = UploadService(InMemoryUploadSessions(), index, store)
    data, digest = blob()
    await service.create_session(digest, len(data), direct=True)
    other, other_digest = blob()
    await service.create_session(other_digest, len(other), direct=True)  # never PUT
    store.put_direct(digest, data)

    result = await service.sweep(expire_all=True)
    assert result.expired_sessions == 2
    indexed = await index.get(digest)
    assert indexed is not None
    assert indexed.size == len(data)
    assert await index.get(other_digest) is None

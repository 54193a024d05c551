"""Unit tests of the upload use cases against in-memory fakes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterable

import pytest

from modelregistry_server.artifacts.app.uploads import UploadService, WriteChunk
from modelregistry_server.artifacts.domain.blob import MIN_PART_SIZE
from modelregistry_server.artifacts.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)
from tests.unit.artifact_fakes import InMemoryBlobIndex, InMemoryBlobStore, InMemoryUploadSessions

pytestmark = pytest.mark.timeout(30)
PART = MIN_PART_SIZE
CHUNK = 1024 * 1024


@pytest.fixture
def store() -> InMemoryBlobStore:
    return InMemoryBlobStore()


@pytest.fixture
def service(store: InMemoryBlobStore) -> UploadService:
    return UploadService(InMemoryUploadSessions(), InMemoryBlobIndex(), store, part_size=PART)


async def stream(chunks: Iterable[WriteChunk]) -> AsyncIterator[WriteChunk]:
    for chunk in chunks:
        yield chunk


def chunked(name: str, data: bytes, start: int = 0, finish: bool = True) -> list[WriteChunk]:
    out = [
        WriteChunk(name, offset, data[offset : offset + CHUNK], False)
        for offset in range(start, len(data), CHUNK)
    ]
    if finish:
        out.append(WriteChunk(name, len(data), b"", True))
    return out


async def test_upload_in_parts_round_trips(
    service: UploadService, store: InMemoryBlobStore
) -> None:
    data = os.urandom(3 * PART + 12345)
    digest = hashlib.sha256(data).hexdigest()
    session = await service.create_session(digest, len(data))
    result = await service.write(stream(chunked(session.name, data)))
    assert result.committed_size == len(data)
    assert result.blob is not None
    assert result.blob.sha256 == digest
    assert store.blobs[digest] == data
    assert store.part_uploads == 4


async def test_resume_after_half_close_continues_hash_and_skips_committed_parts(
    service: UploadService, store: InMemoryBlobStore
) -> None:
    data = os.urandom(2 * PART + 777)
    digest = hashlib.sha256(data).hexdigest()
    session = await service.create_session(digest, len(data))
    # Send 1.5 parts, then half-close: one part is durable, the half part is dropped.
    first = await service.write(
        stream(chunked(session.name, data[: PART + PART // 2], finish=False))
    )
    assert first.committed_size == PART
    status = await service.query_write_status(session.name)
    assert status.committed_size == PART
    uploaded_before = store.part_uploads
    # Resume, re-sending one chunk below committed_size (it must be ignored).
    result = await service.write(stream(chunked(session.name, data, start=PART - CHUNK)))
    assert result.blob is not None
    assert store.blobs[digest] == data
    assert store.part_uploads - uploaded_before == 2


async def test_wrong_digest_stores_nothing(
    service: UploadService, store: InMemoryBlobStore
) -> None:
    data = os.urandom(PART + 10)
    wrong = hashlib.sha256(b"something else").hexdigest()
    session = await service.create_session(wrong, len(data))
    with pytest.raises(InvalidArgument) as info:
        await service.write(stream(chunked(session.name, data)))
    assert info.value.reason == "DIGEST_MISMATCH"
    assert store.blobs == {}
    assert store.uploads == {}


async def test_wrong_size_stores_nothing(service: UploadService, store: InMemoryBlobStore) -> None:
    data = os.urandom(1000)
    session = await service.create_session(hashlib.sha256(data).hexdigest(), 2000)
    with pytest.raises(InvalidArgument) as info:
        await service.write(stream(chunked(session.name, data)))
    assert info.value.reason == "SIZE_MISMATCH"
    assert store.blobs == {}


async def test_gap_names_the_expected_offset(service: UploadService) -> None:
    data = os.urandom(3 * CHUNK)
    session = await service.create_session(hashlib.sha256(data).hexdigest(), len(data))
    chunks = [WriteChunk(session.name, 0, data[:CHUNK], False),
              WriteChunk(session.name, 2 * CHUNK, data[2 * CHUNK :], True)]  # fmt: skip
    with pytest.raises(InvalidArgument) as info:
        await service.write(stream(chunks))
    assert info.value.reason == "WRITE_OFFSET_INVALID"
    assert f"expected offset {CHUNK}" in info.value.message
    assert info.value.metadata["expected_offset"] == str(CHUNK)


async def test_oversized_chunk_is_rejected(service: UploadService) -> None:
    data = os.urandom(CHUNK + 1)
    session = await service.create_session(hashlib.sha256(data).hexdigest(), len(data))
    with pytest.raises(InvalidArgument) as info:
        await service.write(stream([WriteChunk(session.name, 0, data, True)]))
    assert info.value.reason == "CHUNK_TOO_LARGE"


async def test_existing_blob_completes_at_once_and_refuses_writes(
    service: UploadService, store: InMemoryBlobStore
) -> None:
    data = os.urandom(100)
    digest = hashlib.sha256(data).hexdigest()
    first = await service.create_session(digest, len(data))
    await service.write(stream(chunked(first.name, data)))
    uploads = store.part_uploads
    again = await service.create_session(digest, len(data))
    assert again.complete
    assert again.committed_size == len(data)
    with pytest.raises(FailedPrecondition) as info:
        await service.write(stream(chunked(again.name, data)))
    assert info.value.reason == "UPLOAD_SESSION_COMPLETE"
    assert store.part_uploads == uploads


async def test_empty_blob(service: UploadService, store: InMemoryBlobStore) -> None:
    digest = hashlib.sha256(b"").hexdigest()
    session = await service.create_session(digest, 0)
    result = await service.write(stream([WriteChunk(session.name, 0, b"", True)]))
    assert result.blob is not None
    assert store.blobs[digest] == b""


@pytest.mark.parametrize("bad", ["", "abc", "A" * 64, "g" * 64, "sha256:" + "a" * 64])
async def test_malformed_digest_is_rejected(service: UploadService, bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        await service.create_session(bad, 10)
    assert info.value.field == "blob.sha256"


async def test_sweep_expire_all_aborts_unfinished_uploads(
    service: UploadService, store: InMemoryBlobStore
) -> None:
    data = os.urandom(2 * PART)
    session = await service.create_session(hashlib.sha256(data).hexdigest(), len(data))
    await service.write(stream(chunked(session.name, data[:PART], finish=False)))
    assert store.uploads
    result = await service.sweep(expire_all=True)
    assert result.expired_sessions == 1
    assert store.uploads == {}


async def test_create_retried_with_request_id_returns_the_same_session(
    service: UploadService,
) -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    request_id = "0b8f3c1a-5d2e-4f6a-9b7c-1e2d3f4a5b6c"
    first = await service.create_session(digest, 1, request_id)
    second = await service.create_session(digest, 1, request_id)
    assert second.session_id == first.session_id
    with pytest.raises(InvalidArgument, match="request_id"):
        await service.create_session(digest, 1, "not-a-uuid")


async def test_a_stream_that_ends_in_an_error_keeps_the_parts_already_sent(
    service: UploadService, store: InMemoryBlobStore
) -> None:
    # Two parts are in flight (not yet recorded) when the stream fails, as when the server
    # shuts down or the client idles: they are recorded before the error ends the call.
    data = os.urandom(3 * PART)
    digest = hashlib.sha256(data).hexdigest()
    session = await service.create_session(digest, len(data))

    async def then_fails() -> AsyncIterator[WriteChunk]:
        for chunk in chunked(session.name, data[: 2 * PART], finish=False):
            yield chunk
        raise Unavailable("the server is shutting down", reason="SHUTTING_DOWN")

    with pytest.raises(Unavailable):
        await service.write(then_fails())
    status = await service.query_write_status(session.name)
    assert status.committed_size == 2 * PART
    result = await service.write(stream(chunked(session.name, data, start=2 * PART)))
    assert result.blob is not None
    assert store.blobs[digest] == data

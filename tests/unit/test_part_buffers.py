"""Part buffers (artifacts/app/part_buffers.py): an upload's memory is bounded and reused.

A stream holds at most ``parts_in_flight + 1`` part buffers, reuses them part after part, never
hands the store a buffer that another part is overwriting, and the pool lets go of its buffers
when the last stream ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterable

import pytest

from modelregistry_server.artifacts.app.part_buffers import PartBufferPool
from modelregistry_server.artifacts.app.uploads import UploadService, WriteChunk
from modelregistry_server.artifacts.domain.blob import MIN_PART_SIZE, PartData, UploadedPart
from tests.unit.artifact_fakes import InMemoryBlobIndex, InMemoryBlobStore, InMemoryUploadSessions

pytestmark = pytest.mark.timeout(30)
PART = MIN_PART_SIZE
CHUNK = 1024 * 1024


class SlowStore(InMemoryBlobStore):
    """Reads each part only after a pause (as a worker thread sending it would), and records
    how many buffers the pool had created when each part arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.service: UploadService | None = None
        self.allocated: list[int] = []

    async def upload_part(
        self, sha256: str, upload_id: str, part_number: int, offset: int, data: PartData
    ) -> UploadedPart:
        assert self.service is not None
        self.allocated.append(self.service._buffers.allocated)
        await asyncio.sleep(0.01)  # meanwhile the stream fills the next buffer
        return await super().upload_part(sha256, upload_id, part_number, offset, data)


async def _stream(chunks: Iterable[WriteChunk]) -> AsyncIterator[WriteChunk]:
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(0)


def _chunks(name: str, data: bytes) -> list[WriteChunk]:
    out = [
        WriteChunk(name, offset, data[offset : offset + CHUNK], False)
        for offset in range(0, len(data), CHUNK)
    ]
    return [*out, WriteChunk(name, len(data), b"", True)]


def _service(store: SlowStore, parts_in_flight: int = 2) -> UploadService:
    service = UploadService(
        InMemoryUploadSessions(),
        InMemoryBlobIndex(),
        store,
        part_size=PART,
        parts_in_flight=parts_in_flight,
    )
    store.service = service
    return service


def test_the_pool_reuses_released_buffers_and_clear_drops_them() -> None:
    pool = PartBufferPool()
    first = pool.acquire(100)
    pool.release(first)
    assert pool.acquire(100) is first
    assert pool.acquire(50) is not first  # another size
    pool.release(first)
    assert pool.idle_bytes() == 100
    pool.clear()
    assert pool.idle_bytes() == 0
    assert pool.acquire(100) is not first


async def test_a_stream_holds_at_most_parts_in_flight_plus_one_buffers_and_reuses_them() -> None:
    store = SlowStore()
    service = _service(store, parts_in_flight=2)
    data = os.urandom(10 * PART + 999)
    digest = hashlib.sha256(data).hexdigest()
    session = await service.create_session(digest, len(data))
    result = await service.write(_stream(_chunks(session.name, data)))
    assert result.blob is not None
    assert store.blobs[digest] == data  # no part was overwritten while the store read it
    assert len(store.allocated) == 11
    assert max(store.allocated) <= 3  # 2 being stored + 1 being filled, for 11 parts
    assert service._buffers.idle_bytes() == 0  # the last stream ended: nothing kept


async def test_concurrent_streams_share_the_bound() -> None:
    store = SlowStore()
    service = _service(store, parts_in_flight=1)
    blobs = [os.urandom(4 * PART + n) for n in (1, 2, 3)]
    sessions = []
    for data in blobs:
        sessions.append(await service.create_session(hashlib.sha256(data).hexdigest(), len(data)))
    results = await asyncio.gather(
        *(
            service.write(_stream(_chunks(s.name, data)))
            for s, data in zip(sessions, blobs, strict=True)
        )
    )
    assert all(r.blob is not None for r in results)
    for data in blobs:
        assert store.blobs[hashlib.sha256(data).hexdigest()] == data
    assert max(store.allocated) <= 3 * 2  # 3 streams x (1 in flight + 1 filling)
    assert service._buffers.idle_bytes() == 0


async def test_a_half_closed_stream_returns_its_unfinished_part_buffer() -> None:
    store = SlowStore()
    service = _service(store)
    data = os.urandom(2 * PART)
    session = await service.create_session(hashlib.sha256(data).hexdigest(), len(data))
    half = [
        WriteChunk(session.name, o, data[o : o + CHUNK], False)
        for o in range(0, PART + CHUNK, CHUNK)
    ]
    done = asyncio.Event()

    async def held_open() -> AsyncIterator[WriteChunk]:
        for chunk in half:
            yield chunk
        done.set()

    other = os.urandom(PART)
    other_session = await service.create_session(hashlib.sha256(other).hexdigest(), len(other))

    async def slow_other() -> AsyncIterator[WriteChunk]:
        await done.wait()
        await asyncio.sleep(0.05)
        for chunk in _chunks(other_session.name, other):
            yield chunk

    first, second = await asyncio.gather(service.write(held_open()), service.write(slow_other()))
    assert first.committed_size == PART  # the whole part is durable, the tail was dropped
    assert second.blob is not None
    # The other stream reused the half-closed stream's buffers instead of allocating more.
    assert max(store.allocated) <= 2

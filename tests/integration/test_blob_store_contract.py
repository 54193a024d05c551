"""The ``BlobStore`` contract, run against both stores: MinIO (``S3BlobStore``) and a local
directory (``LocalDirBlobStore``).

One suite for both, so the embedded default and production behave the same for the upload and
read use cases. MinIO is real (``minio_server`` / ``minio_bucket`` from ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import os
import random
import socket
import threading
import time
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from minio import Minio
from urllib3 import BaseHTTPResponse

from modelregistry_server.artifacts.adapters.localfs import LocalDirBlobStore
from modelregistry_server.artifacts.adapters.s3 import S3BlobStore
from modelregistry_server.artifacts.app.ports import BlobStore
from modelregistry_server.artifacts.domain.blob import MAX_CHUNK_SIZE, MIN_PART_SIZE, UploadedPart
from modelregistry_server.artifacts.domain.errors import (
    BlobNotFound,
    FailedPrecondition,
    InvalidArgument,
    OutOfRange,
    PresignNotSupported,
    StoreUnavailable,
)
from tests.support.minio import MinioServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MiB = 1024 * 1024
WORKERS = 4


class _RecordingMinio(Minio):
    """A minio-py client that remembers every GET response, so tests can check it was closed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.responses: list[BaseHTTPResponse] = []

    def get_object(self, *args: Any, **kwargs: Any) -> BaseHTTPResponse:
        response = super().get_object(*args, **kwargs)
        self.responses.append(response)
        return response


@dataclass
class Backend:
    """One kind of store, with what the tests need to look beneath the port."""

    kind: str
    new_store: Callable[[], BlobStore]
    key_exists: Callable[[str], bool]
    # Open HTTP responses (S3) or file descriptors on blob files (local) right now.
    open_handles: Callable[[], int]


@pytest.fixture(params=["s3", "localdir"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Build stores of one kind; each test runs once per kind."""
    if request.param == "s3":
        server: MinioServer = request.getfixturevalue("minio_server")
        bucket: str = request.getfixturevalue("minio_bucket")
        client = _RecordingMinio(
            server.endpoint, server.access_key, server.secret_key, secure=False
        )

        def key_exists_s3(key: str) -> bool:
            names = [o.object_name for o in client.list_objects(bucket, prefix=key)]
            return names == [key]

        def new_s3_store() -> BlobStore:
            return S3BlobStore(client, bucket, max_workers=WORKERS)

        return Backend(
            "s3",
            new_s3_store,
            key_exists_s3,
            lambda: sum(not r.closed for r in client.responses),
        )

    root = tmp_path / "store"

    def new_local_store() -> BlobStore:
        return LocalDirBlobStore(root, max_workers=WORKERS)

    def open_blob_fds() -> int:
        blobs = str(root / "blobs")
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/self/fd/{fd}").startswith(blobs)
        return count

    return Backend("localdir", new_local_store, lambda key: (root / key).is_file(), open_blob_fds)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[BlobStore]:
    """A store of the backend's kind, closed after the test."""
    s = backend.new_store()
    yield s
    await s.close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _read_all(store: BlobStore, sha256: str, offset: int = 0, limit: int = 0) -> bytes:
    return b"".join([chunk async for chunk in store.read(sha256, offset, limit)])


async def _put(store: BlobStore, data: bytes, part_size: int = MIN_PART_SIZE) -> str:
    """Upload ``data`` as one blob the way the upload use case does; return its digest."""
    sha256 = _sha(data)
    upload_id = await store.create_upload(sha256)
    parts = [
        await store.upload_part(sha256, upload_id, n + 1, offset, data[offset : offset + part_size])
        for n, offset in enumerate(range(0, len(data), part_size))
    ]
    await store.complete_upload(sha256, upload_id, parts, len(data))
    return sha256


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own MinIO
        body: bytes = response.read()
    return body


def _reader(store: BlobStore, sha256: str) -> AsyncGenerator[bytes, None]:
    """``store.read`` as the async generator it is, so it can be closed early."""
    reader = store.read(sha256, 0, 0)
    assert isinstance(reader, AsyncGenerator)
    return reader


def _executor(store: BlobStore) -> concurrent.futures.ThreadPoolExecutor:
    # Private on purpose: the tests prove the store's own threads are idle.
    assert isinstance(store, S3BlobStore | LocalDirBlobStore)
    return store._executor


async def _assert_all_workers_idle(store: BlobStore) -> None:
    """Fail unless all ``WORKERS`` threads of the store can start a job right now.

    Every worker must reach the barrier: a thread still reading (or blocked feeding a queue)
    would leave it one short and break it after the timeout.
    """
    barrier = threading.Barrier(WORKERS + 1, timeout=5)
    jobs = [_executor(store).submit(barrier.wait) for _ in range(WORKERS)]
    try:
        await asyncio.to_thread(barrier.wait)
    except threading.BrokenBarrierError:
        pytest.fail("a worker thread of the store is still busy after the reader stopped")
    for job in jobs:
        job.result(timeout=5)


async def _wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


# ---------------------------------------------------------------- stat, upload, read back


async def test_stat_of_missing_blob_is_none(store: BlobStore) -> None:
    assert await store.stat(_sha(b"never stored")) is None


async def test_single_part_upload_round_trips(store: BlobStore) -> None:
    data = os.urandom(123_457)
    before = datetime.now(UTC) - timedelta(seconds=5)

    sha256 = await _put(store, data)

    info = await store.stat(sha256)
    assert info is not None
    assert (info.sha256, info.size) == (sha256, len(data))
    assert info.create_time.tzinfo is not None
    assert before <= info.create_time <= datetime.now(UTC) + timedelta(seconds=5)
    assert _sha(await _read_all(store, sha256)) == sha256


async def test_parts_uploaded_concurrently_out_of_order_round_trip(store: BlobStore) -> None:
    data = os.urandom(3 * 5 * MiB + 1 * MiB)
    sha256 = _sha(data)
    upload_id = await store.create_upload(sha256)
    spans = [
        (n + 1, off, data[off : off + 5 * MiB])
        for n, off in enumerate(range(0, len(data), 5 * MiB))
    ]
    assert [len(d) for _, _, d in spans] == [5 * MiB, 5 * MiB, 5 * MiB, 1 * MiB]
    order = [3, 1, 4, 2]

    parts = await asyncio.gather(
        *(
            store.upload_part(sha256, upload_id, n, off, d)
            for n, off, d in (spans[i - 1] for i in order)
        )
    )
    random.Random(7).shuffle(parts)  # The store orders them by part number itself.
    await store.complete_upload(sha256, upload_id, parts, len(data))

    assert _sha(await _read_all(store, sha256)) == sha256
    info = await store.stat(sha256)
    assert info is not None
    assert info.size == len(data)


async def test_resending_a_part_number_replaces_the_part(store: BlobStore) -> None:
    data = os.urandom(2 * MIN_PART_SIZE + 1000)
    sha256 = _sha(data)
    upload_id = await store.create_upload(sha256)
    p1 = await store.upload_part(sha256, upload_id, 1, 0, data[:MIN_PART_SIZE])
    second = data[MIN_PART_SIZE : 2 * MIN_PART_SIZE]
    garbage = await store.upload_part(sha256, upload_id, 2, MIN_PART_SIZE, os.urandom(len(second)))
    p2 = await store.upload_part(sha256, upload_id, 2, MIN_PART_SIZE, second)
    p3 = await store.upload_part(sha256, upload_id, 3, 2 * MIN_PART_SIZE, data[2 * MIN_PART_SIZE :])
    assert garbage.etag != p2.etag

    # As the caller persists them: the re-sent part comes later in the list and wins.
    await store.complete_upload(sha256, upload_id, [p1, garbage, p2, p3], len(data))

    assert _sha(await _read_all(store, sha256)) == sha256


async def test_abort_leaves_no_blob_and_no_incomplete_upload(store: BlobStore) -> None:
    data = os.urandom(1000)
    sha256 = _sha(data)
    upload_id = await store.create_upload(sha256)
    await store.upload_part(sha256, upload_id, 1, 0, data)

    await store.abort_upload(sha256, upload_id)

    assert await store.stat(sha256) is None
    assert upload_id not in {u.upload_id for u in await store.list_incomplete_uploads()}
    # Aborting again, or an upload that never existed, is not an error.
    await store.abort_upload(sha256, upload_id)
    await store.abort_upload(sha256, "0" * 32)


async def test_empty_blob_with_no_parts(store: BlobStore, backend: Backend) -> None:
    sha256 = _sha(b"")
    upload_id = await store.create_upload(sha256)

    await store.complete_upload(sha256, upload_id, [], 0)

    info = await store.stat(sha256)
    assert info is not None
    assert info.size == 0
    assert await _read_all(store, sha256) == b""
    assert backend.key_exists(f"blobs/sha256/{sha256[:2]}/{sha256}")
    assert upload_id not in {u.upload_id for u in await store.list_incomplete_uploads()}


async def test_completing_twice_succeeds(store: BlobStore) -> None:
    # A crash between completing and recording it makes the caller complete again.
    data = os.urandom(5000)
    sha256 = _sha(data)
    upload_id = await store.create_upload(sha256)
    part = await store.upload_part(sha256, upload_id, 1, 0, data)
    await store.complete_upload(sha256, upload_id, [part], len(data))

    await store.complete_upload(sha256, upload_id, [part], len(data))

    assert _sha(await _read_all(store, sha256)) == sha256


async def test_identical_concurrent_uploads_both_complete(store: BlobStore) -> None:
    data = os.urandom(MIN_PART_SIZE + 10)
    sha256 = _sha(data)
    first = await store.create_upload(sha256)
    second = await store.create_upload(sha256)
    parts_a = [
        await store.upload_part(sha256, first, 1, 0, data[:MIN_PART_SIZE]),
        await store.upload_part(sha256, first, 2, MIN_PART_SIZE, data[MIN_PART_SIZE:]),
    ]
    parts_b = [await store.upload_part(sha256, second, 1, 0, data)]

    await store.complete_upload(sha256, first, parts_a, len(data))
    await store.complete_upload(sha256, second, parts_b, len(data))

    assert _sha(await _read_all(store, sha256)) == sha256
    open_ids = {u.upload_id for u in await store.list_incomplete_uploads()}
    assert not open_ids & {first, second}


async def test_complete_rejects_parts_that_leave_a_gap(store: BlobStore) -> None:
    data = os.urandom(2 * MIN_PART_SIZE)
    sha256 = _sha(data)
    upload_id = await store.create_upload(sha256)
    p1 = await store.upload_part(sha256, upload_id, 1, 0, data[:MIN_PART_SIZE])
    await store.upload_part(sha256, upload_id, 2, MIN_PART_SIZE, data[MIN_PART_SIZE:])

    with pytest.raises(FailedPrecondition) as excinfo:
        await store.complete_upload(sha256, upload_id, [p1], len(data))

    assert excinfo.value.reason == "UPLOAD_PARTS_INVALID"
    assert await store.stat(sha256) is None
    await store.abort_upload(sha256, upload_id)


async def test_part_for_unknown_upload_is_a_failed_precondition(store: BlobStore) -> None:
    sha256 = _sha(b"x")
    for upload_id in ["0" * 32, "../../etc"]:
        with pytest.raises(FailedPrecondition) as excinfo:
            await store.upload_part(sha256, upload_id, 1, 0, b"x")
        assert excinfo.value.reason == "STORE_UPLOAD_NOT_FOUND"


async def test_invalid_digest_is_rejected(store: BlobStore) -> None:
    with pytest.raises(InvalidArgument):
        await store.stat("../../etc/passwd")
    with pytest.raises(InvalidArgument):
        await store.create_upload("A" * 64)


# ---------------------------------------------------------------- reads


async def test_read_with_offset_and_limit_returns_exactly_that_slice(store: BlobStore) -> None:
    data = os.urandom(3 * MiB + 333)
    sha256 = await _put(store, data)

    for offset, limit in [
        (0, 10),
        (MAX_CHUNK_SIZE - 3, 7),  # across a chunk boundary
        (12_345, 2 * MAX_CHUNK_SIZE + 1),
        (MiB, 0),  # to the end
        (len(data) - 5, 100),  # past the end: clipped
        (0, 0),
    ]:
        end = len(data) if limit == 0 else offset + limit
        assert await _read_all(store, sha256, offset, limit) == data[offset:end], (offset, limit)


async def test_read_at_the_end_yields_nothing(store: BlobStore) -> None:
    data = os.urandom(1000)
    sha256 = await _put(store, data)

    assert [c async for c in store.read(sha256, len(data), 0)] == []
    assert [c async for c in store.read(sha256, len(data), 10)] == []


async def test_read_past_the_end_is_out_of_range(store: BlobStore) -> None:
    data = os.urandom(1000)
    sha256 = await _put(store, data)

    with pytest.raises(OutOfRange) as excinfo:
        await _read_all(store, sha256, len(data) + 1)

    assert "1000 bytes" in excinfo.value.message


async def test_read_of_unknown_digest_is_blob_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await _read_all(store, _sha(b"never stored"))


async def test_read_chunks_are_full_size_except_the_last(store: BlobStore) -> None:
    data = os.urandom(5 * MiB + 4321)
    sha256 = await _put(store, data)

    sizes = [len(c) async for c in store.read(sha256, 100, 0)]

    remaining = len(data) - 100
    assert sizes[:-1] == [MAX_CHUNK_SIZE] * (len(sizes) - 1)
    assert 0 < sizes[-1] <= MAX_CHUNK_SIZE
    assert sum(sizes) == remaining


async def test_closing_a_read_early_releases_the_response_and_the_threads(
    store: BlobStore, backend: Backend
) -> None:
    sha256 = await _put(store, os.urandom(8 * MiB))
    await _assert_all_workers_idle(store)  # Start the workers, so a count below is meaningful.
    threads_before = threading.active_count()

    reader = _reader(store, sha256)
    async with contextlib.aclosing(reader):
        first = await anext(reader)
        assert len(first) == MAX_CHUNK_SIZE
        assert backend.open_handles() == 1

    # A read-ahead running in a worker closes the handle as soon as it returns.
    assert await _wait_until(lambda: backend.open_handles() == 0), "reader left open"
    await _assert_all_workers_idle(store)
    assert threading.active_count() <= threads_before


async def test_cancelling_a_reader_releases_the_response_and_the_threads(
    store: BlobStore, backend: Backend
) -> None:
    sha256 = await _put(store, os.urandom(32 * MiB))
    await _assert_all_workers_idle(store)
    threads_before = threading.active_count()
    received = 0
    got_first = asyncio.Event()

    async def consume() -> None:
        nonlocal received
        async with contextlib.aclosing(_reader(store, sha256)) as reader:
            async for chunk in reader:
                received += len(chunk)
                got_first.set()
                await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    await got_first.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert task.cancelled()
    assert received < 32 * MiB
    assert await _wait_until(lambda: backend.open_handles() == 0), "reader left open"
    await _assert_all_workers_idle(store)
    assert threading.active_count() <= threads_before


# ---------------------------------------------------------------- delete, listing, URLs


async def test_delete_makes_stat_none(store: BlobStore) -> None:
    sha256 = await _put(store, b"delete me")

    await store.delete(sha256)

    assert await store.stat(sha256) is None
    await store.delete(sha256)  # Deleting a missing blob is not an error.


async def test_list_incomplete_uploads_shows_open_uploads_only(store: BlobStore) -> None:
    data = os.urandom(2000)
    sha256 = _sha(data)
    upload_id = await store.create_upload(sha256)
    part = await store.upload_part(sha256, upload_id, 1, 0, data)

    listed = {u.upload_id: u for u in await store.list_incomplete_uploads()}
    assert upload_id in listed
    assert listed[upload_id].sha256 == sha256
    assert abs(listed[upload_id].initiated - datetime.now(UTC)) < timedelta(minutes=5)

    await store.complete_upload(sha256, upload_id, [part], len(data))

    assert upload_id not in {u.upload_id for u in await store.list_incomplete_uploads()}


async def test_presigned_url_downloads_the_blob_or_is_unsupported(
    store: BlobStore, backend: Backend
) -> None:
    data = os.urandom(100_000)
    sha256 = await _put(store, data)

    if backend.kind == "localdir":
        with pytest.raises(PresignNotSupported):
            await store.presigned_download_url(sha256, timedelta(minutes=5))
        return

    url = await store.presigned_download_url(sha256, timedelta(minutes=5))
    assert url.startswith("http://127.0.0.1:")
    assert _sha(await asyncio.to_thread(_http_get, url)) == sha256
    with pytest.raises(BlobNotFound):
        await store.presigned_download_url(_sha(b"never stored"), timedelta(minutes=5))


# ---------------------------------------------------------------- restart, layout, lifecycle


async def test_a_new_store_instance_continues_an_upload(backend: Backend) -> None:
    data = os.urandom(MIN_PART_SIZE + 4096)
    sha256 = _sha(data)
    before = backend.new_store()
    upload_id = await before.create_upload(sha256)
    p1 = await before.upload_part(sha256, upload_id, 1, 0, data[:MIN_PART_SIZE])
    await before.close()
    # What the caller persisted survives the restart; the store instance does not.
    persisted = [UploadedPart(p1.part_number, p1.offset, p1.size, p1.etag)]

    after = backend.new_store()
    try:
        assert upload_id in {u.upload_id for u in await after.list_incomplete_uploads()}
        p2 = await after.upload_part(sha256, upload_id, 2, MIN_PART_SIZE, data[MIN_PART_SIZE:])
        await after.complete_upload(sha256, upload_id, [*persisted, p2], len(data))
        assert _sha(await _read_all(after, sha256)) == sha256
    finally:
        await after.close()


async def test_blob_key_is_derived_from_the_digest(store: BlobStore, backend: Backend) -> None:
    sha256 = await _put(store, b"where am I")

    assert backend.key_exists(f"blobs/sha256/{sha256[:2]}/{sha256}")


async def test_a_closed_store_is_unavailable(backend: Backend) -> None:
    closed = backend.new_store()
    await closed.close()

    with pytest.raises(StoreUnavailable):
        await closed.stat(_sha(b"x"))
    with pytest.raises(StoreUnavailable):
        await _read_all(closed, _sha(b"x"))


async def test_unreachable_s3_is_store_unavailable_with_a_plain_message() -> None:
    with socket.socket() as sock:  # A port nothing listens on.
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3BlobStore.from_config(
        f"127.0.0.1:{port}", "key", "secret-key", "modelregistry", False, "us-east-1"
    )
    try:
        with pytest.raises(StoreUnavailable) as excinfo:
            await store.stat(_sha(b"x"))
    finally:
        await store.close()

    assert excinfo.value.message == "cannot reach the object store"

"""The ``BlobStore`` contract, continued: reads, deletes, listing, URLs, restarts, both stores."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest

from modelregistry_server.artifacts.adapters.blob_io import READ_BLOCK_SIZE
from modelregistry_server.artifacts.adapters.s3 import S3BlobStore
from modelregistry_server.artifacts.app.ports import BlobStore
from modelregistry_server.artifacts.domain.blob import MAX_CHUNK_SIZE, MIN_PART_SIZE, UploadedPart
from modelregistry_server.artifacts.domain.errors import (
    BlobNotFound,
    OutOfRange,
    PresignNotSupported,
    StoreUnavailable,
)
from tests.support.artifacts import sha256_hex as blob_sha
from tests.support.blob_stores import (
    Backend,
    MiB,
    assert_all_workers_idle,
    http_get,
    put_blob,
    read_all,
    reader_of,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


# ---------------------------------------------------------------- reads


async def test_read_with_offset_and_limit_returns_exactly_that_slice(store: BlobStore) -> None:
    data = os.urandom(READ_BLOCK_SIZE + 3 * MiB + 333)
    sha256 = await put_blob(store, data)

    for offset, limit in [
        (0, 10),
        (MAX_CHUNK_SIZE - 3, 7),  # across a chunk boundary
        (12_345, 2 * MAX_CHUNK_SIZE + 1),
        (READ_BLOCK_SIZE - 1, 2),  # across a block boundary
        (MiB, 0),  # to the end
        (len(data) - 5, 100),  # past the end: clipped
        (0, 0),
    ]:
        end = len(data) if limit == 0 else offset + limit
        assert await read_all(store, sha256, offset, limit) == data[offset:end], (offset, limit)


async def test_read_at_the_end_yields_nothing(store: BlobStore) -> None:
    data = os.urandom(1000)
    sha256 = await put_blob(store, data)

    assert [c async for c in store.read(sha256, len(data), 0)] == []
    assert [c async for c in store.read(sha256, len(data), 10)] == []


async def test_read_past_the_end_is_out_of_range(store: BlobStore) -> None:
    data = os.urandom(1000)
    sha256 = await put_blob(store, data)

    with pytest.raises(OutOfRange) as excinfo:
        await read_all(store, sha256, len(data) + 1)

    assert "1000 bytes" in excinfo.value.message


async def test_read_of_unknown_digest_is_blob_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await read_all(store, blob_sha(b"never stored"))


async def test_read_chunks_are_full_size_except_the_last(store: BlobStore) -> None:
    # Over two blocks read at once and a part of a third (READ_BLOCK_SIZE, sliced into chunks).
    data = os.urandom(2 * READ_BLOCK_SIZE + MiB + 4321)
    sha256 = await put_blob(store, data)

    chunks = [c async for c in store.read(sha256, 100, 0)]

    sizes = [len(c) for c in chunks]
    assert sizes[:-1] == [MAX_CHUNK_SIZE] * (len(sizes) - 1)
    assert 0 < sizes[-1] <= MAX_CHUNK_SIZE
    assert b"".join(chunks) == data[100:]


async def test_closing_a_read_early_releases_the_response_and_the_threads(
    store: BlobStore, backend: Backend
) -> None:
    sha256 = await put_blob(store, os.urandom(8 * MiB))
    await assert_all_workers_idle(store)  # Start the workers, so a count below is meaningful.
    threads_before = threading.active_count()

    reader = reader_of(store, sha256)
    async with contextlib.aclosing(reader):
        first = await anext(reader)
        assert len(first) == MAX_CHUNK_SIZE
        assert backend.open_handles() == 1

    # A read-ahead running in a worker closes the handle as soon as it returns.
    assert await wait_until(lambda: backend.open_handles() == 0), "reader left open"
    await assert_all_workers_idle(store)
    assert threading.active_count() <= threads_before


async def test_cancelling_a_reader_releases_the_response_and_the_threads(
    store: BlobStore, backend: Backend
) -> None:
    sha256 = await put_blob(store, os.urandom(32 * MiB))
    await assert_all_workers_idle(store)
    threads_before = threading.active_count()
    received = 0
    got_first = asyncio.Event()

    async def consume() -> None:
        nonlocal received
        async with contextlib.aclosing(reader_of(store, sha256)) as reader:
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
    assert await wait_until(lambda: backend.open_handles() == 0), "reader left open"
    await assert_all_workers_idle(store)
    assert threading.active_count() <= threads_before


# ---------------------------------------------------------------- delete, listing, URLs


async def test_delete_makes_stat_none(store: BlobStore) -> None:
    sha256 = await put_blob(store, b"delete me")

    await store.delete(sha256)

    assert await store.stat(sha256) is None
    await store.delete(sha256)  # Deleting a missing blob is not an error.


async def test_list_incomplete_uploads_shows_open_uploads_only(store: BlobStore) -> None:
    data = os.urandom(2000)
    sha256 = blob_sha(data)
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
    sha256 = await put_blob(store, data)

    if backend.kind == "localdir":
        with pytest.raises(PresignNotSupported):
            await store.presigned_download_url(sha256, timedelta(minutes=5))
        return

    url = await store.presigned_download_url(sha256, timedelta(minutes=5))
    assert url.startswith("http://127.0.0.1:")
    assert blob_sha(await asyncio.to_thread(http_get, url)) == sha256
    with pytest.raises(BlobNotFound):
        await store.presigned_download_url(blob_sha(b"never stored"), timedelta(minutes=5))


# ---------------------------------------------------------------- restart, layout, lifecycle


async def test_a_new_store_instance_continues_an_upload(backend: Backend) -> None:
    data = os.urandom(MIN_PART_SIZE + 4096)
    sha256 = blob_sha(data)
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
        assert blob_sha(await read_all(after, sha256)) == sha256
    finally:
        await after.close()


async def test_blob_key_is_derived_from_the_digest(store: BlobStore, backend: Backend) -> None:
    sha256 = await put_blob(store, b"where am I")

    assert backend.key_exists(f"blobs/sha256/{sha256[:2]}/{sha256}")


async def test_a_closed_store_is_unavailable(backend: Backend) -> None:
    closed = backend.new_store()
    await closed.close()

    with pytest.raises(StoreUnavailable):
        await closed.stat(blob_sha(b"x"))
    with pytest.raises(StoreUnavailable):
        await read_all(closed, blob_sha(b"x"))


async def test_unreachable_s3_is_store_unavailable_with_a_plain_message() -> None:
    with socket.socket() as sock:  # A port nothing listens on.
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = S3BlobStore.from_config(
        f"127.0.0.1:{port}", "key", "secret-key", "modelregistry", False, "us-east-1"
    )
    try:
        with pytest.raises(StoreUnavailable) as excinfo:
            await store.stat(blob_sha(b"x"))
    finally:
        await store.close()

    assert excinfo.value.message == "cannot reach the object store"

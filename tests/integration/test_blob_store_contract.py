"""The ``BlobStore`` contract, run against both stores: MinIO (``S3BlobStore``) and a local
directory (``LocalDirBlobStore``).

One suite for both, so the embedded default and production behave the same for the upload and
read use cases. MinIO is real (``minio_server`` / ``minio_bucket`` from ``tests/conftest.py``).
"""

from __future__ import annotations

import asyncio
import os
import random
from datetime import UTC, datetime, timedelta

import pytest

from modelregistry_server.artifacts.app.ports import BlobStore
from modelregistry_server.artifacts.domain.blob import MIN_PART_SIZE
from modelregistry_server.artifacts.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
)
from tests.support.artifacts import sha256_hex as blob_sha
from tests.support.blob_stores import (
    Backend,
    MiB,
    put_blob,
    read_all,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


# ---------------------------------------------------------------- stat, upload, read back


async def test_stat_of_missing_blob_is_none(store: BlobStore) -> None:
    assert await store.stat(blob_sha(b"never stored")) is None


async def test_single_part_upload_round_trips(store: BlobStore) -> None:
    data = os.urandom(123_457)
    before = datetime.now(UTC) - timedelta(seconds=5)

    sha256 = await put_blob(store, data)

    info = await store.stat(sha256)
    assert info is not None
    assert (info.sha256, info.size) == (sha256, len(data))
    assert info.create_time.tzinfo is not None
    assert before <= info.create_time <= datetime.now(UTC) + timedelta(seconds=5)
    assert blob_sha(await read_all(store, sha256)) == sha256


async def test_parts_uploaded_concurrently_out_of_order_round_trip(store: BlobStore) -> None:
    data = os.urandom(3 * 5 * MiB + 1 * MiB)
    sha256 = blob_sha(data)
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

    assert blob_sha(await read_all(store, sha256)) == sha256
    info = await store.stat(sha256)
    assert info is not None
    assert info.size == len(data)


async def test_resending_a_part_number_replaces_the_part(store: BlobStore) -> None:
    data = os.urandom(2 * MIN_PART_SIZE + 1000)
    sha256 = blob_sha(data)
    upload_id = await store.create_upload(sha256)
    p1 = await store.upload_part(sha256, upload_id, 1, 0, data[:MIN_PART_SIZE])
    second = data[MIN_PART_SIZE : 2 * MIN_PART_SIZE]
    garbage = await store.upload_part(sha256, upload_id, 2, MIN_PART_SIZE, os.urandom(len(second)))
    p2 = await store.upload_part(sha256, upload_id, 2, MIN_PART_SIZE, second)
    p3 = await store.upload_part(sha256, upload_id, 3, 2 * MIN_PART_SIZE, data[2 * MIN_PART_SIZE :])
    assert garbage.etag != p2.etag

    # As the caller persists them: the re-sent part comes later in the list and wins.
    await store.complete_upload(sha256, upload_id, [p1, garbage, p2, p3], len(data))

    assert blob_sha(await read_all(store, sha256)) == sha256


async def test_abort_leaves_no_blob_and_no_incomplete_upload(store: BlobStore) -> None:
    data = os.urandom(1000)
    sha256 = blob_sha(data)
    upload_id = await store.create_upload(sha256)
    await store.upload_part(sha256, upload_id, 1, 0, data)

    await store.abort_upload(sha256, upload_id)

    assert await store.stat(sha256) is None
    assert upload_id not in {u.upload_id for u in await store.list_incomplete_uploads()}
    # Aborting again, or an upload that never existed, is not an error.
    await store.abort_upload(sha256, upload_id)
    await store.abort_upload(sha256, "0" * 32)


async def test_empty_blob_with_no_parts(store: BlobStore, backend: Backend) -> None:
    sha256 = blob_sha(b"")
    upload_id = await store.create_upload(sha256)

    await store.complete_upload(sha256, upload_id, [], 0)

    info = await store.stat(sha256)
    assert info is not None
    assert info.size == 0
    assert await read_all(store, sha256) == b""
    assert backend.key_exists(f"blobs/sha256/{sha256[:2]}/{sha256}")
    assert upload_id not in {u.upload_id for u in await store.list_incomplete_uploads()}


async def test_completing_twice_succeeds(store: BlobStore) -> None:
    # A crash between completing and recording it makes the caller complete again.
    data = os.urandom(5000)
    sha256 = blob_sha(data)
    upload_id = await store.create_upload(sha256)
    part = await store.upload_part(sha256, upload_id, 1, 0, data)
    await store.complete_upload(sha256, upload_id, [part], len(data))

    await store.complete_upload(sha256, upload_id, [part], len(data))

    assert blob_sha(await read_all(store, sha256)) == sha256


async def test_identical_concurrent_uploads_both_complete(store: BlobStore) -> None:
    data = os.urandom(MIN_PART_SIZE + 10)
    sha256 = blob_sha(data)
    first = await store.create_upload(sha256)
    second = await store.create_upload(sha256)
    parts_a = [
        await store.upload_part(sha256, first, 1, 0, data[:MIN_PART_SIZE]),
        await store.upload_part(sha256, first, 2, MIN_PART_SIZE, data[MIN_PART_SIZE:]),
    ]
    parts_b = [await store.upload_part(sha256, second, 1, 0, data)]

    await store.complete_upload(sha256, first, parts_a, len(data))
    await store.complete_upload(sha256, second, parts_b, len(data))

    assert blob_sha(await read_all(store, sha256)) == sha256
    open_ids = {u.upload_id for u in await store.list_incomplete_uploads()}
    assert not open_ids & {first, second}


async def test_complete_rejects_parts_that_leave_a_gap(store: BlobStore) -> None:
    data = os.urandom(2 * MIN_PART_SIZE)
    sha256 = blob_sha(data)
    upload_id = await store.create_upload(sha256)
    p1 = await store.upload_part(sha256, upload_id, 1, 0, data[:MIN_PART_SIZE])
    await store.upload_part(sha256, upload_id, 2, MIN_PART_SIZE, data[MIN_PART_SIZE:])

    with pytest.raises(FailedPrecondition) as excinfo:
        await store.complete_upload(sha256, upload_id, [p1], len(data))

    assert excinfo.value.reason == "UPLOAD_PARTS_INVALID"
    assert await store.stat(sha256) is None
    await store.abort_upload(sha256, upload_id)


async def test_part_for_unknown_upload_is_a_failed_precondition(store: BlobStore) -> None:
    sha256 = blob_sha(b"x")
    for upload_id in ["0" * 32, "../../etc"]:
        with pytest.raises(FailedPrecondition) as excinfo:
            await store.upload_part(sha256, upload_id, 1, 0, b"x")
        assert excinfo.value.reason == "STORE_UPLOAD_NOT_FOUND"


async def test_invalid_digest_is_rejected(store: BlobStore) -> None:
    with pytest.raises(InvalidArgument):
        await store.stat("../../etc/passwd")
    with pytest.raises(InvalidArgument):
        await store.create_upload("A" * 64)

"""The two ``BlobStore`` backends under one contract suite, and the suite's helpers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
import urllib.request
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from urllib3 import BaseHTTPResponse

from modelregistry_server.artifacts.adapters.localfs import LocalDirBlobStore
from modelregistry_server.artifacts.adapters.s3 import S3BlobStore
from modelregistry_server.artifacts.adapters.s3_parts import UnsignedPartsMinio
from modelregistry_server.artifacts.app.ports import BlobStore
from modelregistry_server.artifacts.domain.blob import MIN_PART_SIZE, BlobChunk
from tests.support.artifacts import sha256_hex as blob_sha
from tests.support.minio import MinioServer

MiB = 1024 * 1024
WORKERS = 4


class RecordingMinio(UnsignedPartsMinio):
    """The server's minio-py client (unsigned part payloads with a CRC32C), remembering every
    GET response, so tests can check it was closed."""

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


def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Build stores of the kind ``request.param`` names (``s3`` or ``localdir``)."""
    if request.param == "s3":
        server: MinioServer = request.getfixturevalue("minio_server")
        bucket: str = request.getfixturevalue("minio_bucket")
        client = RecordingMinio(server.endpoint, server.access_key, server.secret_key, secure=False)

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


async def read_all(store: BlobStore, sha256: str, offset: int = 0, limit: int = 0) -> bytes:
    return b"".join([chunk async for chunk in store.read(sha256, offset, limit)])


async def put_blob(store: BlobStore, data: bytes, part_size: int = MIN_PART_SIZE) -> str:
    """Upload ``data`` as one blob the way the upload use case does; return its digest."""
    sha256 = blob_sha(data)
    upload_id = await store.create_upload(sha256)
    parts = [
        await store.upload_part(sha256, upload_id, n + 1, offset, data[offset : offset + part_size])
        for n, offset in enumerate(range(0, len(data), part_size))
    ]
    await store.complete_upload(sha256, upload_id, parts, len(data))
    return sha256


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own MinIO
        body: bytes = response.read()
    return body


def reader_of(store: BlobStore, sha256: str) -> AsyncGenerator[BlobChunk, None]:
    """``store.read`` as the async generator it is, so it can be closed early."""
    reader = store.read(sha256, 0, 0)
    assert isinstance(reader, AsyncGenerator)
    return reader


def executor_of(store: BlobStore) -> concurrent.futures.ThreadPoolExecutor:
    # Private on purpose: the tests prove the store's own threads are idle.
    assert isinstance(store, S3BlobStore | LocalDirBlobStore)
    return store._executor


async def assert_all_workers_idle(store: BlobStore) -> None:
    """Fail unless all ``WORKERS`` threads of the store can start a job right now.

    Every worker must reach the barrier: a thread still reading (or blocked feeding a queue)
    would leave it one short and break it after the timeout.
    """
    barrier = threading.Barrier(WORKERS + 1, timeout=5)
    jobs = [executor_of(store).submit(barrier.wait) for _ in range(WORKERS)]
    try:
        await asyncio.to_thread(barrier.wait)
    except threading.BrokenBarrierError:
        pytest.fail("a worker thread of the store is still busy after the reader stopped")
    for job in jobs:
        job.result(timeout=5)


async def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True

"""Pytest fixtures for a real MinIO server (see :mod:`tests.support.minio`).

``tests/conftest.py`` imports ``minio_server`` and ``minio_bucket`` from here so every test
module can request them; test modules do not import them themselves.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import threading
from collections.abc import Iterator

import pytest
from minio import Minio
from minio.deleteobjects import DeleteObject

from tests.support.minio import MinioServer, ensure_minio_binary, minio_binary_is_current


@contextlib.contextmanager
def _test_deadline_paused() -> Iterator[None]:
    """Stop the clock of a pending SIGALRM deadline while the block runs, then resume it.

    The first test that needs MinIO on a fresh checkout pays a one-off ``go install`` (about
    five minutes cold), longer than the per-test timeout of pytest-timeout (120 s, SIGALRM
    method on the main thread). The build is bounded by its own timeout, so the time it takes
    is not charged to the test. With pytest-timeout's "thread" method there is no itimer to
    pause; pre-build with ``python -m tests.support.minio`` instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    remaining, interval = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        if remaining > 0:
            signal.setitimer(signal.ITIMER_REAL, remaining, interval)


@pytest.fixture(scope="session")
def minio_server() -> Iterator[MinioServer]:
    """A MinIO server shared by the whole test session, stopped (data removed) at the end.

    Builds the pinned MinIO binary first if needed; fails (never skips) with instructions if it
    cannot be had.

    Yields:
        The running server; use ``minio_server.client()`` for a minio-py client.
    """
    # Only a build is exempt from the deadline; finding an existing binary is instant.
    build_needed = not minio_binary_is_current()
    with _test_deadline_paused() if build_needed else contextlib.nullcontext():
        binary = ensure_minio_binary()
    with MinioServer(binary=binary) as server:
        yield server


def _empty_and_remove_bucket(client: Minio, bucket: str) -> None:
    """Delete every object (and version) in ``bucket``, then the bucket itself."""
    to_delete = (
        DeleteObject(obj.object_name, obj.version_id)
        for obj in client.list_objects(bucket, recursive=True, include_version=True)
        if obj.object_name is not None
    )
    errors = list(client.remove_objects(bucket, to_delete))
    if errors:
        raise RuntimeError(f"could not empty bucket {bucket}: {errors}")
    client.remove_bucket(bucket)


@pytest.fixture
def minio_bucket(minio_server: MinioServer) -> Iterator[str]:
    """A fresh, empty bucket for one test, emptied and removed afterwards.

    Yields:
        The bucket name (unique per test, so tests sharing the server cannot see each other).
    """
    client = minio_server.client()
    bucket = f"test-{secrets.token_hex(8)}"
    client.make_bucket(bucket)
    yield bucket
    _empty_and_remove_bucket(client, bucket)

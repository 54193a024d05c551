"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from modelregistry_server.artifacts.app.ports import BlobStore
from tests.support.blob_stores import Backend, make_backend


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url, timeout=10, command_timeout=20)
    try:
        yield connection
    finally:
        await connection.close(timeout=10)


@pytest.fixture(params=["s3", "localdir"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Build stores of one kind; each BlobStore contract test runs once per kind."""
    return make_backend(request, tmp_path)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[BlobStore]:
    """A store of the backend's kind, closed after the test."""
    s = backend.new_store()
    yield s
    await s.close()

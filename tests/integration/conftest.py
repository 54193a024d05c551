"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url, timeout=10, command_timeout=20)
    try:
        yield connection
    finally:
        await connection.close(timeout=10)

"""Two uploads of the same content that finish together both get the blob's row.

The second ``INSERT … ON CONFLICT DO NOTHING`` waits for the first writer's transaction; once
that commits, the statement's own snapshot (taken before) cannot see the row. The index must
read it again rather than fail (it was an ``INTERNAL`` in the scale-out test, tests/scale).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from modelregistry_server.artifacts.adapters.postgres.repository import PostgresBlobIndex
from modelregistry_server.common.adapters.db import Database, create_pool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SHA = "ab" * 32


async def test_add_waiting_on_a_concurrent_insert_returns_that_row(database_url: str) -> None:
    first = await asyncpg.connect(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        transaction = first.transaction()
        await transaction.start()
        await first.execute(
            "INSERT INTO artifacts.blobs (sha256, size_bytes) VALUES ($1, $2)", SHA, 7
        )
        second = asyncio.create_task(PostgresBlobIndex(Database(pool)).add(SHA, 7))
        await asyncio.sleep(0.5)
        assert not second.done(), "the second insert should wait for the first transaction"
        await transaction.commit()
        blob = await asyncio.wait_for(second, 10)
        created = await first.fetchval(
            "SELECT create_time FROM artifacts.blobs WHERE sha256 = $1", SHA
        )
    finally:
        await pool.close()
        await first.close()
    assert (blob.sha256, blob.size) == (SHA, 7)
    assert blob.create_time == created  # the first writer's row

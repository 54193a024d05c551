"""Change-event ids commit in id order, so a watcher reading "after id n" misses nothing.

A sequence hands out ids when a row is inserted, not when it commits: without the lock that
orders event inserts (``lock_model_events``), a slow transaction holding id n could commit
after a fast one with id n+1, and every watcher that had read n+1 would skip n for good. The
scale-out test (tests/scale) saw exactly that with two metadata replicas under concurrent pushes.
"""

from __future__ import annotations

import asyncio

import pytest

from modelregistry_server.common.adapters.db import Database, create_pool
from modelregistry_server.metadata.adapters.postgres.events import PostgresEventFeed
from modelregistry_server.metadata.adapters.postgres.unit_of_work import (
    PostgresUnitOfWorkFactory,
)
from modelregistry_server.metadata.domain.events import EventType

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_an_event_never_commits_below_one_already_visible(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=2, max_size=4)
    try:
        database = Database(pool)
        units = PostgresUnitOfWorkFactory(database)
        feed = PostgresEventFeed(database, database_url)
        emitted, release = asyncio.Event(), asyncio.Event()

        async def slow_writer() -> None:
            async with units() as unit:
                await unit.emit(EventType.VERSION_READY, "slow", 1, None, "tester")
                emitted.set()
                await release.wait()  # still open while the fast writer commits

        slow = asyncio.create_task(slow_writer())
        await emitted.wait()
        async with units() as unit:
            await unit.emit(EventType.ALIAS_MOVED, "fast", 1, "live", "tester")
        seen = await feed.after(0, None, frozenset(EventType), 100)
        release.set()
        await slow
        later = await feed.after(0, None, frozenset(EventType), 100)
    finally:
        await pool.close()

    assert [e.model_id for e in seen] == ["fast"]
    assert [e.model_id for e in later] == ["fast", "slow"]
    # What a watcher at the last id it saw would read next: the slow writer's event.
    assert later[1].event_id > seen[-1].event_id

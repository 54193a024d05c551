"""Retention and scheduled jobs against real PostgreSQL and gRPC: housekeeping deletes change
events and request ids past their retention (rows are backdated with SQL, not waited for),
keeps the alias history and the audit log; a watch from a deleted id gets EVENT_ID_EXPIRED and
the SDK re-subscribes and reports the gap; expired upload sessions' rows go with the sweep; and
two replicas never run the scheduled garbage collection together."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from modelregistry import AsyncClient, Client
from modelregistry.artifact.v1 import artifact_service_pb2 as apb
from modelregistry.artifact.v1 import blob_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry_server.metadata.app.housekeeping import Housekeeping, PruneResult
from tests.conftest import RunningRegistry, _start_registry
from tests.support.artifacts import sha256_hex, upload
from tests.support.metadata import new_model, push
from tests.support.rpc import error_info
from tests.support.sdk import ALIAS_MOVED, consume_in_thread, off_loop

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
SCANNED_EVENTS = "SELECT count(*) FROM metadata.model_events WHERE type = 'VERSION_SCANNED'"
BACKDATE_EVENTS = "UPDATE metadata.model_events SET event_time = now() - interval '31 days'"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


def housekeeping(registry: RunningRegistry) -> Housekeeping:
    assert registry.server.housekeeping is not None
    return registry.server.housekeeping


async def set_alias(registry: RunningRegistry, version: int, request_id: str = "") -> None:
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(
            model="models/m", alias="production", version=f"models/m/versions/{version}",
            request_id=request_id,
        )
    )  # fmt: skip


async def model_with_old_events(
    registry: RunningRegistry, db: asyncpg.Connection[Any]
) -> list[int]:
    """Model ``m`` with two READY versions and two alias moves, every event 31 days old."""
    await new_model(registry, "m")
    await push(registry, "m", {"w": b"one"})
    await push(registry, "m", {"w": b"two"})
    await set_alias(registry, 1, str(uuid.uuid4()))
    await set_alias(registry, 2, str(uuid.uuid4()))
    # Each version's file scan adds a VERSION_SCANNED event shortly after: wait for both, so
    # that every event of the set-up is old.
    async with asyncio.timeout(30):
        while await db.fetchval(SCANNED_EVENTS) < 2:  # noqa: ASYNC110 - a row, not an event
            await asyncio.sleep(0.05)
    await db.execute(BACKDATE_EVENTS)
    return [r["id"] for r in await db.fetch("SELECT id FROM metadata.model_events ORDER BY id")]


async def test_a_round_deletes_old_events_and_request_ids_and_keeps_history_and_audit(
    registry: RunningRegistry, db: asyncpg.Connection[Any]
) -> None:
    old = await model_with_old_events(registry, db)
    assert len(old) == 6  # two VERSION_READY, two VERSION_SCANNED, two ALIAS_MOVED
    await db.execute("UPDATE metadata.request_log SET create_time = now() - interval '25 hours'")
    fresh_request = str(uuid.uuid4())
    await set_alias(registry, 1, fresh_request)  # a young event and a young request id
    history = await db.fetchval("SELECT count(*) FROM metadata.alias_history")
    audit = await db.fetchval("SELECT count(*) FROM audit.events")

    result = await housekeeping(registry).housekeeping_round(force=True)

    assert result == PruneResult(events=6, request_ids=2)
    kept = [r["id"] for r in await db.fetch("SELECT id FROM metadata.model_events")]
    assert len(kept) == 1
    assert kept[0] > max(old)
    assert await db.fetchval("SELECT pruned_through FROM metadata.event_retention") == max(old)
    requests = [
        r["request_id"] for r in await db.fetch("SELECT request_id FROM metadata.request_log")
    ]
    assert requests == [fresh_request]
    assert await db.fetchval("SELECT count(*) FROM metadata.alias_history") == history == 3
    assert await db.fetchval("SELECT count(*) FROM audit.events") == audit
    # Nothing more to do: a second round deletes nothing.
    again = await housekeeping(registry).housekeeping_round(force=True)
    assert again == PruneResult(events=0, request_ids=0)


async def test_a_watch_from_a_deleted_id_is_expired_and_one_at_the_horizon_is_not(
    registry: RunningRegistry, db: asyncpg.Connection[Any]
) -> None:
    old = await model_with_old_events(registry, db)
    await housekeeping(registry).housekeeping_round(force=True)
    call = registry.metadata.WatchModelEvents(
        ms.WatchModelEventsRequest(model="models/m", after_event_id=str(old[0])), timeout=20
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert error_info(info.value).reason == "EVENT_ID_EXPIRED"
    assert error_info(info.value).metadata["pruned_through_event_id"] == str(old[-1])
    # A syntactically invalid id stays INVALID_ARGUMENT.
    bad = registry.metadata.WatchModelEvents(ms.WatchModelEventsRequest(after_event_id="x1"))
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        async for _ in bad:
            pass
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The last deleted id itself misses nothing: every later event is still there.
    resumed = registry.metadata.WatchModelEvents(
        ms.WatchModelEventsRequest(model="models/m", after_event_id=str(old[-1])), timeout=20
    )
    await set_alias(registry, 1)
    event = await anext(aiter(resumed))
    assert int(event.event_id) > old[-1]
    assert event.type == ALIAS_MOVED
    resumed.cancel()


async def test_the_sdk_resubscribes_from_now_reports_the_gap_and_keeps_delivering(
    registry: RunningRegistry,
    db: asyncpg.Connection[Any],
    client: Client,
    aclient: AsyncClient,
) -> None:
    old = await model_with_old_events(registry, db)
    await housekeeping(registry).housekeeping_round(force=True)

    # Sync, iterating: the gap is reported inside next(), then new events keep coming.
    starts: list[str] = []
    resynced = threading.Event()

    def on_resync(start: str) -> None:
        starts.append(start)
        resynced.set()

    stream = client.watch("m", after_event_id=str(old[0]), on_resync=on_resync)
    received, arrived, consumer = consume_in_thread(stream)
    assert await off_loop(lambda: resynced.wait(30)), "the stream did not re-subscribe"
    await set_alias(registry, 1)
    assert await off_loop(lambda: arrived.wait(30)), "no event after the re-subscription"
    await off_loop(stream.close)
    await off_loop(lambda: consumer.join(10))
    assert stream.resyncs == 1
    assert int(starts[0]) >= old[-1]
    assert received[0].type == ALIAS_MOVED
    assert int(received[0].event_id) > int(starts[0])

    # Async, with wait_subscribed: the gap is reported before it returns the new start.
    async_starts: list[str] = []
    async with aclient.watch(
        "m", after_event_id=str(old[1]), on_resync=async_starts.append
    ) as watch:
        start = await asyncio.wait_for(watch.wait_subscribed(), 30)
        assert async_starts == [start]
        await aclient.set_alias("m", "production", 2)
        event = await asyncio.wait_for(anext(watch), 30)
        assert int(event.event_id) > int(start)
        assert watch.resyncs == 1


async def test_the_server_prunes_on_its_own_schedule(
    database_url: str, tmp_path: Path, db: asyncpg.Connection[Any]
) -> None:
    flags = ["--housekeeping-interval=1", "--gc-interval=0"]
    async for registry in _start_registry(database_url, tmp_path / "data", flags):
        await model_with_old_events(registry, db)
        for _ in range(200):  # the first check records the job, the next one prunes
            if not await db.fetchval("SELECT count(*) FROM metadata.model_events"):
                break
            await asyncio.sleep(0.1)
        assert await db.fetchval("SELECT count(*) FROM metadata.model_events") == 0
        jobs = [r["job"] for r in await db.fetch("SELECT job FROM metadata.scheduled_runs")]
        assert jobs == ["housekeeping"]  # the GC is off


async def test_the_sweep_deletes_the_rows_of_expired_upload_sessions(
    registry: RunningRegistry, db: asyncpg.Connection[Any]
) -> None:
    data = b"never finished"
    await registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(
            blob=blob_pb2.BlobRef(sha256=sha256_hex(data), size_bytes=len(data))
        )
    )
    assert await db.fetchval("SELECT count(*) FROM artifacts.upload_sessions") == 1
    await db.execute("UPDATE artifacts.upload_sessions SET expire_time = now() - interval '1 s'")
    assert registry.server.uploads is not None
    result = await registry.server.uploads.sweep()
    assert result.expired_sessions == 1
    assert await db.fetchval("SELECT count(*) FROM artifacts.upload_sessions") == 0


async def test_two_replicas_never_run_the_scheduled_gc_together(
    registry: RunningRegistry,
    database_url: str,
    tmp_path: Path,
    db: asyncpg.Connection[Any],
) -> None:
    orphan = b"referenced by nothing"
    await upload(registry.artifacts, orphan)
    await db.execute("UPDATE artifacts.blobs SET create_time = now() - interval '3 days'")
    # Hold the orphan's digest lock as a commit verifying it would: the first GC run stops
    # right before deleting it, inside its scheduled turn.
    await db.execute("SELECT pg_advisory_lock_shared(7457, hashtext($1))", sha256_hex(orphan))
    first = asyncio.create_task(housekeeping(registry).gc_round(force=True))
    try:
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        for _ in range(100):
            if await db.fetchval(waiting):
                break
            await asyncio.sleep(0.02)
        assert await db.fetchval(waiting), "the first run never reached the blob"
        async for replica in _start_registry(database_url, tmp_path / "replica", []):
            # Forced (due or not), yet skipped: the first replica holds the job's lock.
            assert await housekeeping(replica).gc_round(force=True) is None
    finally:
        await db.execute("SELECT pg_advisory_unlock_shared(7457, hashtext($1))", sha256_hex(orphan))
    result = await asyncio.wait_for(first, 30)
    assert result is not None
    assert result.deleted_blob_count == 1
    runs = await db.fetchval(
        "SELECT count(*) FROM audit.events WHERE method = 'RunGarbageCollection' "
        "AND actor = 'modelregistry-scheduler'"
    )
    assert runs == 1

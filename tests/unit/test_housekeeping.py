"""Scheduled housekeeping on in-memory fakes: batched pruning, one run at a time, the schedule."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import pytest

from modelregistry_server.metadata.app.gc import GarbageCollector
from modelregistry_server.metadata.app.housekeeping import (
    GC_JOB,
    HOUSEKEEPING_JOB,
    SCHEDULER_ACTOR,
    Housekeeping,
    RetentionPolicy,
)
from modelregistry_server.metadata.domain.errors import Unavailable
from tests.unit.fakes import FakeBlobChecker, InMemoryRegistry, InMemoryVersionRepository

pytestmark = pytest.mark.timeout(10)
DAY = timedelta(days=1)


class FakeRetention:
    """``RetentionStore`` over counts of rows past their retention."""

    def __init__(self, events: int = 0, request_ids: int = 0) -> None:
        self.events = events
        self.request_ids = request_ids
        self.calls: list[tuple[str, timedelta, int]] = []
        self.fail = False

    async def prune_events(self, older_than: timedelta, limit: int) -> int:
        self.calls.append(("events", older_than, limit))
        if self.fail:
            raise Unavailable("database away", reason="DATABASE_UNAVAILABLE")
        deleted = min(self.events, limit)
        self.events -= deleted
        return deleted

    async def prune_request_ids(self, older_than: timedelta, limit: int) -> int:
        self.calls.append(("request_ids", older_than, limit))
        deleted = min(self.request_ids, limit)
        self.request_ids -= deleted
        return deleted


class FakeGate:
    """``JobGate`` with one lock per job and a "due" answer the test sets."""

    def __init__(self, due: bool = True) -> None:
        self.due = due
        self.locked: set[str] = set()
        self.turns: list[tuple[str, timedelta, bool]] = []
        self.recorded: list[str] = []

    @asynccontextmanager
    async def turn(
        self, job: str, interval: timedelta, *, force: bool = False
    ) -> AsyncIterator[bool]:
        self.turns.append((job, interval, force))
        if job in self.locked:
            yield False
            return
        self.locked.add(job)
        try:
            yield self.due or force
            self.recorded.append(job)  # only when the block ended without an error
        finally:
            self.locked.discard(job)


class SlowBlobs(FakeBlobChecker):
    """An artifact service whose blob listing waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.listing = asyncio.Event()
        self.release = asyncio.Event()

    async def list_blobs(self, created_before: datetime) -> list[tuple[str, int]]:
        self.listing.set()
        await self.release.wait()
        return await super().list_blobs(created_before)


def _housekeeping(
    store: FakeRetention | None = None,
    gate: FakeGate | None = None,
    blobs: FakeBlobChecker | None = None,
    policy: RetentionPolicy | None = None,
    check_period: timedelta = timedelta(minutes=1),
) -> Housekeeping:
    registry = InMemoryRegistry()
    gc = GarbageCollector(
        registry.uow, InMemoryVersionRepository(registry), blobs or FakeBlobChecker()
    )
    return Housekeeping(
        store or FakeRetention(), gate or FakeGate(), gc, policy or RetentionPolicy(),
        batch=100, check_period=check_period,
    )  # fmt: skip


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def test_the_defaults_keep_the_promises() -> None:
    policy = RetentionPolicy()
    assert policy.event_retention == 30 * DAY
    assert policy.request_id_retention == DAY  # the 24 h idempotency of the API
    assert (policy.housekeeping_interval, policy.gc_interval) == (timedelta(hours=1), DAY)


async def test_prune_works_a_backlog_off_in_batches_until_one_comes_back_short() -> None:
    store = FakeRetention(events=250, request_ids=100)
    result = await _housekeeping(store).prune()
    assert (result.events, result.request_ids) == (250, 100)
    assert [c[0] for c in store.calls] == ["events"] * 3 + ["request_ids"] * 2
    assert {c[2] for c in store.calls} == {100}
    assert {c[1] for c in store.calls if c[0] == "events"} == {30 * DAY}
    assert {c[1] for c in store.calls if c[0] == "request_ids"} == {DAY}


async def test_a_round_that_is_not_this_replicas_turn_deletes_nothing() -> None:
    store, gate = FakeRetention(events=5), FakeGate(due=False)
    housekeeping = _housekeeping(store, gate)
    assert await housekeeping.housekeeping_round() is None
    assert store.calls == []
    result = await housekeeping.housekeeping_round(force=True)
    assert result is not None
    assert result.events == 5
    hour = timedelta(hours=1)
    assert gate.turns == [(HOUSEKEEPING_JOB, hour, False), (HOUSEKEEPING_JOB, hour, True)]


async def test_a_failed_round_is_not_recorded_as_run() -> None:
    store, gate = FakeRetention(events=5), FakeGate()
    store.fail = True
    with pytest.raises(Unavailable):
        await _housekeeping(store, gate).housekeeping_round()
    assert gate.recorded == []
    assert gate.locked == set()


async def test_scheduled_gc_collects_as_the_scheduler() -> None:
    blobs = FakeBlobChecker()
    blobs.stored["d" * 64] = 7  # referenced by nothing
    result = await _housekeeping(blobs=blobs).gc_round()
    assert result is not None
    assert result.deleted_blobs == ["d" * 64]
    assert SCHEDULER_ACTOR == "modelregistry-scheduler"


async def test_two_concurrent_gc_rounds_do_not_both_run() -> None:
    blobs, gate = SlowBlobs(), FakeGate()
    blobs.stored["d" * 64] = 7
    housekeeping = _housekeeping(gate=gate, blobs=blobs)
    first = asyncio.create_task(housekeeping.gc_round())
    await blobs.listing.wait()  # the first run is inside the collection, holding the lock
    assert await housekeeping.gc_round() is None  # the second skips the round
    blobs.release.set()
    result = await first
    assert result is not None
    assert result.deleted_blob_count == 1
    assert gate.recorded == [GC_JOB]


async def test_the_schedule_runs_each_job_on_its_interval_and_survives_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, gate = FakeRetention(events=1), FakeGate()
    store.fail = True
    policy = RetentionPolicy(housekeeping_interval=timedelta(seconds=0.01), gc_interval=DAY)
    # Each replica asks every check period (here 10 ms) whether a job is due; the gate (the
    # database, in production) decides, and this one always says yes.
    housekeeping = _housekeeping(store, gate, policy=policy, check_period=timedelta(seconds=0.01))
    with caplog.at_level(logging.WARNING):
        housekeeping.start()
        await _until(lambda: len(store.calls) >= 3)  # failing rounds are tried again
        store.fail = False
        await _until(lambda: not store.events)
        await housekeeping.stop()
    assert "scheduled housekeeping failed (database away)" in caplog.text
    intervals = {job: interval for job, interval, _ in gate.turns}
    assert intervals == {HOUSEKEEPING_JOB: policy.housekeeping_interval, GC_JOB: DAY}


async def test_a_zero_interval_switches_a_job_off() -> None:
    gate = FakeGate()
    policy = RetentionPolicy(housekeeping_interval=timedelta(0), gc_interval=timedelta(0))
    housekeeping = _housekeeping(gate=gate, policy=policy, check_period=timedelta(seconds=0.01))
    housekeeping.start()
    await asyncio.sleep(0.05)
    await housekeeping.stop()
    assert gate.turns == []

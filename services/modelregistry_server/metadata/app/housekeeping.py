"""Scheduled housekeeping: change events and request ids past their retention are deleted, and
garbage collection runs, each once per interval across the replicas and one replica at a time.

What is kept for ever: the alias history and the audit log. Upload sessions belong to the
artifact service, whose sweeper deletes expired ones (``UploadService.sweep``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from modelregistry_server.metadata.app.gc import GarbageCollector, GcResult
from modelregistry_server.metadata.app.ports import JobGate, RetentionStore
from modelregistry_server.metadata.domain.errors import RegistryError

_log = logging.getLogger(__name__)

# Rows deleted per statement: a large backlog is worked off in short transactions.
BATCH = 10_000
# How often each replica asks whether a job is due (at most; never more often than the job's
# interval). The database decides, so replicas and restarts do not multiply the runs.
CHECK_PERIOD = timedelta(minutes=1)
HOUSEKEEPING_JOB = "housekeeping"
GC_JOB = "garbage-collection"
# The actor of a scheduled garbage collection's audit events.
SCHEDULER_ACTOR = "modelregistry-scheduler"


@dataclass(frozen=True)
class RetentionPolicy:
    """How long records are kept, and how often the scheduled jobs run (zero: never)."""

    event_retention: timedelta = timedelta(days=30)
    # The idempotency contract promises 24 hours (metadata_service.proto): never less.
    request_id_retention: timedelta = timedelta(hours=24)
    housekeeping_interval: timedelta = timedelta(hours=1)
    gc_interval: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class PruneResult:
    """What one housekeeping round deleted."""

    events: int
    request_ids: int


class Housekeeping:
    """Deletes what is past its retention and runs garbage collection, on a schedule."""

    def __init__(
        self,
        store: RetentionStore,
        gate: JobGate,
        gc: GarbageCollector,
        policy: RetentionPolicy,
        *,
        batch: int = BATCH,
        check_period: timedelta = CHECK_PERIOD,
        background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    ) -> None:
        self._background = background  # loops of their own (the audit chainer), run alongside
        self._store = store
        self._gate = gate
        self._gc = gc
        self.policy = policy
        self._batch = batch
        self._check_period = check_period
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the scheduled jobs in the background until ``stop``."""
        self._task = asyncio.create_task(self.run_forever())

    async def stop(self) -> None:
        """Cancel the scheduled jobs (a run in progress is rolled back, not recorded)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def prune(self) -> PruneResult:
        """Delete every change event and request id past its retention, a batch at a time."""
        policy, batch, store = self.policy, self._batch, self._store
        events = await _drain(lambda: store.prune_events(policy.event_retention, batch), batch)
        request_ids = await _drain(
            lambda: store.prune_request_ids(policy.request_id_retention, batch), batch
        )
        return PruneResult(events, request_ids)

    async def housekeeping_round(self, *, force: bool = False) -> PruneResult | None:
        """Prune, if it is due and no other replica is at it; None when this round is skipped.

        ``force`` runs it even if the last run was less than an interval ago (tests, operators).
        """
        interval = self.policy.housekeeping_interval
        async with self._gate.turn(HOUSEKEEPING_JOB, interval, force=force) as mine:
            if not mine:
                return None
            result = await self.prune()
        if result.events or result.request_ids:
            _log.info(
                "housekeeping: deleted %d change events older than %s and %d request ids older "
                "than %s", result.events, self.policy.event_retention, result.request_ids,
                self.policy.request_id_retention,
            )  # fmt: skip
        return result

    async def gc_round(self, *, force: bool = False) -> GcResult | None:
        """Run garbage collection (default grace period and PENDING lifetime) if it is due and
        no other replica is running it; None when this round is skipped."""
        async with self._gate.turn(GC_JOB, self.policy.gc_interval, force=force) as mine:
            if not mine:
                return None
            result = await self._gc.run(
                dry_run=False, grace=None, pending_ttl=None, actor=SCHEDULER_ACTOR
            )
        _log.info(
            "scheduled garbage collection: %d blobs (%d bytes) deleted, %d PENDING versions "
            "expired", result.deleted_blob_count, result.deleted_size_bytes,
            result.expired_version_count,
        )  # fmt: skip
        return result

    async def run_forever(self) -> None:
        """Run the scheduled jobs until cancelled (a job whose interval is zero never runs)."""
        jobs: list[tuple[str, timedelta, Callable[[], Awaitable[object]]]] = [
            (HOUSEKEEPING_JOB, self.policy.housekeeping_interval, self.housekeeping_round),
            (GC_JOB, self.policy.gc_interval, self.gc_round),
        ]
        async with asyncio.TaskGroup() as group:
            for loop in self._background:
                group.create_task(loop())
            for job, interval, run in jobs:
                if interval > timedelta(0):
                    group.create_task(self._every(job, min(interval, self._check_period), run))

    async def _every(
        self, job: str, period: timedelta, run: Callable[[], Awaitable[object]]
    ) -> None:
        while True:
            await asyncio.sleep(period.total_seconds())
            try:
                await run()
            except RegistryError as exc:  # the database or the artifact service is away
                _log.warning("scheduled %s failed (%s); trying again later", job, exc.message)
            except Exception:
                _log.exception("scheduled %s failed; trying again later", job)


async def _drain(prune: Callable[[], Awaitable[int]], batch: int) -> int:
    """Call ``prune`` until a batch comes back short; return the total deleted."""
    total = 0
    while True:
        deleted = await prune()
        total += deleted
        if deleted < batch:
            return total

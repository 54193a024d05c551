"""PostgreSQL side of housekeeping: deleting old change events and request ids in batches, and
the gate that lets one replica at a time run a scheduled job."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from modelregistry_server.common.adapters.db import Database
from modelregistry_server.metadata.adapters.postgres.rows import QUERIES

_log = logging.getLogger(__name__)


class PostgresRetentionStore:
    """``RetentionStore`` on ``metadata.model_events`` and ``metadata.request_log``.

    Each batch is one statement (its own short transaction), so a large backlog never holds
    a long transaction or many locks.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    async def prune_events(self, older_than: timedelta, limit: int) -> int:
        """See the port."""
        async with self._database.connection() as conn:
            deleted = await conn.fetchval(QUERIES["prune_model_events"], older_than, limit)
        return int(deleted)

    async def prune_request_ids(self, older_than: timedelta, limit: int) -> int:
        """See the port."""
        async with self._database.connection() as conn:
            deleted = await conn.fetchval(QUERIES["prune_request_ids"], older_than, limit)
        return int(deleted)


class PostgresJobGate:
    """``JobGate``: a transaction-scoped advisory lock per job, held for the whole run.

    The lock is taken with ``pg_try_advisory_xact_lock`` in a transaction of its own that
    stays open while the job runs (the job's work uses other connections), so it is released
    at commit or rollback, whatever happens, and never stays behind on a pooled connection.
    The same transaction records the run in ``metadata.scheduled_runs``; a run that fails
    rolls that back, so the next check tries again.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    @asynccontextmanager
    async def turn(
        self, job: str, interval: timedelta, *, force: bool = False
    ) -> AsyncIterator[bool]:
        """See the port."""
        async with self._database.transaction() as conn:
            if not await conn.fetchval(QUERIES["try_lock_scheduled_job"], job):
                _log.debug("%s: another replica is running it; this one skips the round", job)
                yield False
                return
            yield bool(await conn.fetchval(QUERIES["claim_scheduled_run"], job, interval, force))

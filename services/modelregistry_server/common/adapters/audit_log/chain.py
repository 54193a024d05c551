"""The chainer: gives committed audit events their chain position and hash.

Design. A writer inserts its audit event *without* a position or hash, in its own transaction
(``append``), so nothing global sits on the write path: audited writes do not wait for each
other. Shortly after the commit a chainer, one at a time across all replicas (the
transaction-scoped advisory lock 7460 in ``try_lock_chain``), reads the chain head
(``audit.chain_head``), takes up to ``CHAIN_BATCH`` committed events that have no position yet,
in id order, and gives them the next positions, each with ``prev_hash`` (the hash before it)
and ``hash = sha256(prev_hash || canonical encoding)`` (``common/kernel/audit_chain.py``), then
moves the head, all in one short transaction.

Why positions are not ids. A sequence hands out ids at insert, but transactions commit in
another order: the one that took id 5 may commit after id 6 was chained. The chainer only ever
sees committed rows and appends them at the end, so the chain is never asked to grow in the
middle: every event committed before a chaining pass starts gets a lower position than every
event committed after it (within one pass, id order). An event is unchained only for the moment
between its commit and the next pass; a replica runs a pass about 50 ms after one of its own
appends (``on_append``) and every ``--audit-chain-interval`` (1 s) in any case, for events other
replicas or processes wrote. ``VerifyAuditLog`` and ``ExportAuditLog`` chain what is pending
first, waiting for the lock.

The alternative, taking one global advisory lock at the end of every audited transaction and
hashing there, holds that lock through each commit's WAL flush, so audited commits would go one
at a time; ``bench/audit_chain.py`` measures both (bench/README.md has the figures).

What the chain proves, and what it does not: an edited, deleted or reordered chained event is
found by ``VerifyAuditLog``. Someone with write access to the database can still rewrite the
chain from some point on, recomputing every later hash; that changes the head hash, which is
why the head is exported and kept outside the database (README.md, "Tamper-evident audit
log"). An event edited in the short moment before it is chained is not detectable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from modelregistry_server.common.adapters.audit_log import QUERIES, on_append
from modelregistry_server.common.kernel.audit_chain import (
    ChainHead,
    EventFields,
    json_object,
    link_hash,
)
from modelregistry_server.common.kernel.errors import RegistryError

if TYPE_CHECKING:
    import asyncpg

    from modelregistry_server.common.adapters.db import Connection, Database

_log = logging.getLogger(__name__)
CHAIN_BATCH = 1000
# After an append in this process, wait this long before chaining: the appending
# transaction commits meanwhile, and appends of concurrent writers join the same pass.
SETTLE_S = 0.05


def event_fields(row: asyncpg.Record) -> EventFields:
    """What the hash of the event in ``row`` covers."""
    return EventFields(
        event_id=row["id"],
        event_time=row["event_time"],
        actor=row["actor"],
        method=row["method"],
        resource=row["resource"],
        model_id=row["model_id"],
        before=json_object(row["before"]),
        after=json_object(row["after"]),
        request_id=row["request_id"],
        trace_id=row["trace_id"],
        denied_permission=row["denied_permission"],
    )


async def chain_pending(database: Database, *, wait: bool = False, batch: int = CHAIN_BATCH) -> int:
    """Chain every event committed so far; return how many were chained.

    ``wait`` False returns 0 at once if another chainer holds the lock (it will chain them);
    True waits for it, so that everything committed before the call is chained after it.
    """
    total = 0
    while True:
        async with database.transaction() as conn:
            if wait:
                await conn.execute(QUERIES["lock_chain"])
            elif not await conn.fetchval(QUERIES["try_lock_chain"]):
                return total
            chained = await _chain_batch(conn, batch)
        total += chained
        if chained < batch:
            return total


async def _chain_batch(conn: Connection, batch: int) -> int:
    """One pass under the lock: link up to ``batch`` unchained events onto the head."""
    head = await read_head(conn)
    rows = await conn.fetch(QUERIES["unchained_events"], batch)
    if not rows:
        return 0
    ids, positions, previous, hashes = _link(rows, head)
    moved = await conn.fetchval(
        QUERIES["chain_events"], ids, positions, previous, hashes, positions[-1], hashes[-1]
    )
    if moved is None:  # only a chainer, under the lock, writes these columns
        raise RuntimeError("audit chain: events were chained under the lock by someone else")
    return len(rows)


def _link(
    rows: Sequence[asyncpg.Record], head: ChainHead
) -> tuple[list[int], list[int], list[bytes], list[bytes]]:
    ids: list[int] = []
    positions: list[int] = []
    previous: list[bytes] = []
    hashes: list[bytes] = []
    position, last = head.position, head.hash
    for row in rows:
        position += 1
        digest = link_hash(last, event_fields(row).canonical())
        ids.append(row["id"])
        positions.append(position)
        previous.append(last)
        hashes.append(digest)
        last = digest
    return ids, positions, previous, hashes


async def read_head(conn: Connection) -> ChainHead:
    """The last position given out and its hash."""
    row = await conn.fetchrow(QUERIES["chain_head"])
    assert row is not None, "migration 0002 inserts the head row"
    return ChainHead(int(row["seq"]), bytes(row["hash"]))


async def chained_rows(
    conn: Connection, after: int, through: int, limit: int
) -> list[asyncpg.Record]:
    """Chained events after position ``after`` up to ``through``, in chain order."""
    return list(await conn.fetch(QUERIES["chained_events"], after, through, limit))


async def unchained_count(conn: Connection) -> int:
    """Events not chained yet."""
    return int(await conn.fetchval(QUERIES["unchained_count"]))


async def first_position_since(conn: Connection, start: datetime) -> int | None:
    """The lowest position of an event at or after ``start`` (None if none is chained)."""
    value = await conn.fetchval(QUERIES["first_position_since"], start)
    return None if value is None else int(value)


class AuditChainer:
    """Runs chaining passes in the background: soon after each append in this process, and
    every ``interval_s`` for events written elsewhere (another replica or process)."""

    def __init__(self, database: Database, interval_s: float, settle_s: float = SETTLE_S) -> None:
        self._database = database
        self._interval_s = interval_s
        self._settle_s = settle_s
        self._failing = False

    async def run_forever(self) -> None:
        """Chain until cancelled (an interval of 0 means never: the job does not start)."""
        if self._interval_s <= 0:
            return
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def kick() -> None:
            try:
                same_loop = asyncio.get_running_loop() is loop
            except RuntimeError:
                same_loop = False
            if same_loop:
                wake.set()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(wake.set)

        stop = on_append(kick)
        try:
            while True:
                kicked = False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval_s):
                        kicked = await wake.wait()
                wake.clear()
                if kicked:
                    await asyncio.sleep(self._settle_s)
                await self.run_once()
        finally:
            stop()

    async def run_once(self) -> int:
        """One pass (skipped if another chainer is at it); failures are logged, not raised:
        the first of a series as a warning, the rest (one a second) at debug."""
        try:
            chained = await chain_pending(self._database)
        except RegistryError as exc:  # the database is away: the next pass catches up
            self._failed("audit chain: pass failed (%s); trying again", exc.message)
        except Exception:
            self._failed("audit chain: pass failed; trying again", exc_info=True)
        else:
            if self._failing:
                _log.info("audit chain: passes succeed again")
            self._failing = False
            return chained
        return 0

    def _failed(self, message: str, *args: object, exc_info: bool = False) -> None:
        level = logging.DEBUG if self._failing else logging.WARNING
        _log.log(level, message, *args, exc_info=exc_info)
        self._failing = True

"""PostgreSQL audit log reader and the change-event feed (LISTEN/NOTIFY across replicas)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

import asyncpg

from modelregistry_server.common.adapters.audit_log import chain
from modelregistry_server.common.adapters.db import Database
from modelregistry_server.common.kernel.audit_chain import ChainHead, json_object
from modelregistry_server.common.kernel.identity import Visibility
from modelregistry_server.common.kernel.paging import Cursor, invalid_page_token, split_page
from modelregistry_server.metadata.adapters.postgres.rows import QUERIES
from modelregistry_server.metadata.app.ports import AuditQuery, ChangeListener
from modelregistry_server.metadata.domain.events import AuditEvent, EventType, ModelEvent
from modelregistry_server.metadata.domain.filter_lexer import parse_rfc3339

_log = logging.getLogger(__name__)
CHANNEL = "modelregistry_model_events"
_RECONNECT_S = 2.0


def _to_audit_event(r: asyncpg.Record) -> AuditEvent:
    return AuditEvent(
        event_id=r["id"],
        actor=r["actor"],
        method=r["method"],
        resource=r["resource"],
        event_time=r["event_time"],
        before=json_object(r["before"]),
        after=json_object(r["after"]),
        request_id=r["request_id"] or "",
        trace_id=r["trace_id"] or "",
        denied_permission=r["denied_permission"] or "",
        model_id=r["model_id"],
        chain_position=r["seq"] or 0,
        previous_hash=bytes(r["prev_hash"] or b""),
        hash=bytes(r["hash"] or b""),
    )


class PostgresAuditLog:
    """``AuditLog`` on ``audit.events``, the log every service appends to, and its chain."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def chain_pending(self) -> int:
        """See the port."""
        return await chain.chain_pending(self._database, wait=True)

    async def chain_head(self) -> ChainHead:
        """See the port."""
        async with self._database.connection() as conn:
            return await chain.read_head(conn)

    async def in_chain_order(self, after: int, through: int, limit: int) -> list[AuditEvent]:
        """See the port."""
        async with self._database.connection() as conn:
            rows = await chain.chained_rows(conn, after, through, limit)
        return [_to_audit_event(r) for r in rows]

    async def unchained_count(self) -> int:
        """See the port."""
        async with self._database.connection() as conn:
            return await chain.unchained_count(conn)

    async def first_position_since(self, start: datetime) -> int | None:
        """See the port."""
        async with self._database.connection() as conn:
            return await chain.first_position_since(conn, start)

    async def list(
        self, query: AuditQuery, after: Cursor | None, limit: int, visible: Visibility | None = None
    ) -> tuple[list[AuditEvent], Cursor | None]:
        """See the port. The cursor is ``[event time (RFC 3339), event id]``."""
        after_time, after_id = None, None
        if after is not None:
            if len(after) != 2 or not isinstance(after[0], str) or type(after[1]) is not int:
                raise invalid_page_token("page_token does not fit this listing")
            after_time, after_id = parse_rfc3339(after[0]), after[1]
            if after_time is None:
                raise invalid_page_token("page_token does not fit this listing")
        name = "list_audit_events_desc" if query.descending else "list_audit_events_asc"
        async with self._database.connection() as conn:
            rows = await conn.fetch(
                QUERIES[name], query.model_id, query.start, query.end, query.actor,
                after_time, after_id, limit + 1, visible is None or visible.everything,
                sorted(visible.names) if visible else [],
                [p + "%" for p in sorted(visible.prefixes)] if visible else [],
                query.method,
            )  # fmt: skip
        events = [_to_audit_event(r) for r in rows]
        return split_page(events, limit, lambda e: [e.event_time.isoformat(), e.event_id])


class PostgresEventFeed:
    """``EventFeed``: rows of ``metadata.model_events`` plus one LISTEN connection per process.

    Every committed event sends a NOTIFY (in the inserting transaction), which reaches every
    replica's listener; the listener bumps a generation counter and wakes the watchers, which
    then read the new rows. Watchers also poll, so a lost listener delays events, never drops
    them.

    ``ChangeListener``s (the resolve cache) hear of every notification with the model it names,
    synchronously in the notification callback, and of the listening connection going up and
    down: a listener that caches must not trust its entries while nobody is listening.
    """

    def __init__(self, database: Database, dsn: str) -> None:
        self._database = database
        self._dsn = dsn
        self._generation = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[ChangeListener] = []

    def subscribe(self, listener: ChangeListener) -> None:
        """Tell ``listener`` about changes and about the connection (call before ``start``)."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Start the listener task."""
        self._task = asyncio.create_task(self._listen_forever())

    async def close(self) -> None:
        """Stop the listener."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def generation(self) -> int:
        """See the port."""
        return self._generation

    async def wait(self, seen_generation: int, max_wait_s: float) -> int:
        """See the port."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max_wait_s):
                    await self._changed.wait_for(lambda: self._generation != seen_generation)
            return self._generation

    async def latest_id(self) -> int:
        """See the port."""
        async with self._database.connection() as conn:
            value = await conn.fetchval(QUERIES["latest_model_event_id"])
        return int(value)

    async def pruned_through(self) -> int:
        """See the port."""
        async with self._database.connection() as conn:
            value = await conn.fetchval(QUERIES["pruned_event_id"])
        return int(value)

    async def after(
        self, after_id: int, model_id: str | None, types: frozenset[EventType], limit: int
    ) -> list[ModelEvent]:
        """See the port."""
        async with self._database.connection() as conn:
            rows = await conn.fetch(
                QUERIES["list_model_events"], after_id, model_id, sorted(t.value for t in types),
                limit,
            )  # fmt: skip
        return [
            ModelEvent(
                event_id=r["id"],
                type=EventType(r["type"]),
                model_id=r["model_id"],
                version=r["version"],
                alias=r["alias"],
                event_time=r["event_time"],
                actor=r["actor"],
            )
            for r in rows
        ]

    async def _bump(self) -> None:
        async with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _lost(self) -> None:
        for listener in self._listeners:
            listener.feed_lost()

    def _model_changed(self, payload: str) -> None:
        # "<event id or -> <model id>"; anything else (e.g. a bare id from an older replica
        # during a rolling upgrade) means "some model changed".
        _, _, model_id = payload.partition(" ")
        for listener in self._listeners:
            listener.model_changed(model_id or None)

    async def _listen_forever(self) -> None:
        loop = asyncio.get_running_loop()
        bumps: set[asyncio.Task[None]] = set()

        def on_notify(_conn: object, _pid: int, _channel: str, payload: object) -> None:
            # Synchronously, before any resolve can run again: a cache never serves an answer
            # older than a notification this process has received.
            self._model_changed(str(payload))
            task = loop.create_task(self._bump())
            bumps.add(task)  # keep a reference until it ran (the loop holds only weak ones)
            task.add_done_callback(bumps.discard)

        def on_terminate(_conn: object, done: asyncio.Event) -> None:
            self._lost()  # at once: caches stop trusting their entries before anything else
            done.set()

        while True:
            conn: asyncpg.Connection[Any] | None = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=10)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda c, done=closed: on_terminate(c, done))
                await conn.add_listener(CHANNEL, on_notify)
                # LISTEN is in effect: every change committed from now on is notified.
                for listener in self._listeners:
                    listener.feed_connected()
                # Events committed while we were not listening are picked up by this wake-up.
                await self._bump()
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("event listener lost its connection (%s); reconnecting", exc)
            finally:
                self._lost()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=2)
            await asyncio.sleep(_RECONNECT_S)

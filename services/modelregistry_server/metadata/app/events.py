"""Use cases on the records of change: ListAuditEvents, WatchModelEvents, and the audit chain's
VerifyAuditLog and ExportAuditLog (``audit_chain.py``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from modelregistry_server.common.kernel.identity import Visibility
from modelregistry_server.common.kernel.paging import Page, Paginator
from modelregistry_server.metadata.app.audit_chain import (
    ChainReport,
    anchor_of,
    export_page,
    verify_chain,
)
from modelregistry_server.metadata.app.ports import AuditLog, AuditQuery, EventFeed
from modelregistry_server.metadata.domain.errors import InvalidArgument, OutOfRange, quoted
from modelregistry_server.metadata.domain.events import AuditEvent, EventType, ModelEvent
from modelregistry_server.metadata.domain.model import parse_model_name

# Without a notification (a lost LISTEN connection, say), watchers still poll this often.
POLL_INTERVAL_S = 5.0
_BATCH = 500
_EVENT_ID = re.compile(r"[0-9]{1,19}")
# A method's short name as the audit log records it (``SetAlias``).
_METHOD = re.compile(r"[A-Z][A-Za-z]{0,63}")
_MAX_EVENT_ID = 2**63 - 1


@dataclass(frozen=True)
class Subscription:
    """A watch whose start is fixed: ``events`` are the ones after ``after_event_id``."""

    after_event_id: str
    events: AsyncIterator[ModelEvent]


class EventService:
    """Audit listing and live event streams."""

    def __init__(self, audit: AuditLog, feed: EventFeed, paginator: Paginator) -> None:
        self._audit = audit
        self._feed = feed
        self._paginator = paginator

    async def list_audit_events(
        self,
        page_size: int,
        page_token: str,
        model: str,
        start: datetime | None,
        end: datetime | None,
        actor: str,
        order_by: str,
        visible: Visibility | None = None,
        *,
        method: str = "",
    ) -> Page[AuditEvent]:
        """Return one page of audit events (only of models ``visible`` allows), of ``method``
        only when it is given.

        Raises:
            InvalidArgument: A filter or ``order_by`` is malformed, or the page token was issued
                for other filters.
        """
        model_id = parse_model_name(model, "model") if model else None
        if method and not _METHOD.fullmatch(method):
            raise InvalidArgument(
                "method",
                f"{quoted(method)} is not a method name: at most 64 letters, the first a capital "
                "(SetAlias)",
            )
        order = " ".join(order_by.split()).lower()
        if order not in ("", "event_time desc", "event_time asc", "event_time"):
            raise InvalidArgument(
                "order_by", "must be 'event_time desc' (default) or 'event_time asc'",
                reason="ORDER_BY_INVALID",
            )  # fmt: skip
        descending = order in ("", "event_time desc")
        query = AuditQuery(model_id, start, end, actor or None, descending, method or None)
        page = self._paginator.open(
            "ListAuditEvents", page_size, page_token, model, str(start), str(end), actor,
            str(query.descending), method,
        )  # fmt: skip
        rows, cursor = await self._audit.list(query, page.after, page.limit, visible)
        return self._paginator.page(page, rows, cursor)

    async def verify_audit_log(self, anchor_position: int, anchor_hash: str) -> ChainReport:
        """Walk the audit log's hash chain; the first problem, or the head (VerifyAuditLog)."""
        return await verify_chain(self._audit, anchor_of(anchor_position, anchor_hash))

    async def export_audit_log(
        self, page_size: int, page_token: str, start: datetime | None
    ) -> Page[AuditEvent]:
        """One page of the chained log in chain order, from ``start`` (ExportAuditLog)."""
        return await export_page(self._audit, self._paginator, page_size, page_token, start)

    async def subscribe(
        self,
        model: str,
        after_event_id: str,
        types: frozenset[EventType],
        visible: Visibility | None = None,
    ) -> Subscription:
        """Fix where a watch starts (``after_event_id``, or the latest event now), then follow.

        Split from following so the caller can tell the client the start before any event
        arrives: a client that learns it is subscribed can then read the state it serves, and
        knows every later change will reach it.

        Raises:
            InvalidArgument: ``after_event_id`` is not an event id.
            OutOfRange: ``after_event_id`` is below the highest event id housekeeping deleted
                (``EVENT_ID_EXPIRED``): events after it are gone, so the stream would have a gap.
        """
        model_id = parse_model_name(model, "model") if model else None
        if not after_event_id:
            cursor = await self._feed.latest_id()
            return Subscription(str(cursor), self._follow(model_id, cursor, types, visible))
        # ASCII digits within int64 only: str.isdigit() also takes superscripts and
        # full-width digits, which int() then refuses (or reads); the column is a bigint.
        if not _EVENT_ID.fullmatch(after_event_id) or int(after_event_id) > _MAX_EVENT_ID:
            raise InvalidArgument(
                "after_event_id", f"{quoted(after_event_id)} is not an event id from this server"
            )
        cursor = int(after_event_id)
        # The first batch is read before the check: events are deleted oldest id first, so if
        # nothing at or below the cursor had been deleted after the read, the read missed
        # nothing (a deletion racing it is caught here, not turned into a silent gap).
        generation = self._feed.generation()
        first = await self._feed.after(cursor, model_id, types, _BATCH)
        pruned = await self._feed.pruned_through()
        if cursor < pruned:
            raise OutOfRange(
                f"after_event_id {after_event_id} has expired: events up to {pruned} were "
                "deleted (event retention), so some after it are gone; watch without "
                "after_event_id and reload the state you follow",
                reason="EVENT_ID_EXPIRED",
                metadata={"field": "after_event_id", "pruned_through_event_id": str(pruned)},
            )
        events = self._follow(model_id, cursor, types, visible, (generation, first))
        return Subscription(str(cursor), events)

    async def _follow(
        self,
        model_id: str | None,
        cursor: int,
        types: frozenset[EventType],
        visible: Visibility | None,
        first: tuple[int, list[ModelEvent]] | None = None,
    ) -> AsyncIterator[ModelEvent]:
        """Yield the events after ``cursor``, then live ones, forever.

        ``first`` is a batch already read after ``cursor``, with the feed generation read
        before it.
        """
        while True:
            if first is not None:
                (generation, events), first = first, None
            else:
                # Read the generation before querying: a notification that lands while the
                # query runs bumps it, so the wait below returns at once instead of missing
                # that event.
                generation = self._feed.generation()
                events = await self._feed.after(cursor, model_id, types, _BATCH)
            for event in events:
                cursor = event.event_id
                if visible is None or visible.allows(event.model_id):
                    yield event
            if len(events) < _BATCH:
                await self._feed.wait(generation, POLL_INTERVAL_S)

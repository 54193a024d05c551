"""ListAuditEvents and the start of WatchModelEvents, on in-memory fakes of their ports."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from modelregistry_server.common.kernel.audit_chain import GENESIS, ChainHead
from modelregistry_server.common.kernel.page_token import PageTokenCodec
from modelregistry_server.common.kernel.paging import Cursor, Paginator, split_page
from modelregistry_server.metadata.app.events import EventService
from modelregistry_server.metadata.app.ports import AuditQuery
from modelregistry_server.metadata.domain.errors import InvalidArgument, OutOfRange
from modelregistry_server.metadata.domain.events import AuditEvent, EventType, ModelEvent
from tests.unit.fakes import T0

pytestmark = pytest.mark.timeout(10)


class _Audit:
    def __init__(self, events: Sequence[AuditEvent]) -> None:
        self.events = list(events)
        self.queries: list[AuditQuery] = []

    async def list(
        self, query: AuditQuery, after: Cursor | None, limit: int, visible: object = None
    ) -> tuple[list[AuditEvent], Cursor | None]:
        self.queries.append(query)
        rows = sorted(self.events, key=lambda e: e.event_id, reverse=query.descending)
        if after is not None:
            rows = [e for e in rows if (e.event_id < after[0]) == query.descending]
        return split_page(rows[: limit + 1], limit, lambda e: [e.event_id])

    # The chain (tests/unit/test_audit_chain.py covers it): an empty one.
    async def chain_pending(self) -> int:
        return 0

    async def chain_head(self) -> ChainHead:
        return ChainHead(0, GENESIS)

    async def in_chain_order(
        self, after: int, through: int, limit: int
    ) -> builtins.list[AuditEvent]:  # ``list`` here is the method above
        return []

    async def unchained_count(self) -> int:
        return 0

    async def first_position_since(self, start: datetime) -> int | None:
        return None


class _Feed:
    def __init__(self, latest: int, pruned: int = 0) -> None:
        self.latest = latest
        self.events: list[ModelEvent] = []
        self.pruned = pruned
        self.pruned_by_read: int | None = None  # housekeeping deleting while a read runs

    async def latest_id(self) -> int:
        return self.latest

    async def after(
        self, after_id: int, model_id: str | None, types: frozenset[EventType], limit: int
    ) -> list[ModelEvent]:
        events = [e for e in self.events if e.event_id > after_id][:limit]
        if self.pruned_by_read is not None:
            self.pruned = self.pruned_by_read
        return events

    async def pruned_through(self) -> int:
        return self.pruned

    async def wait(self, seen_generation: int, max_wait_s: float) -> int:
        return seen_generation

    def generation(self) -> int:
        return 0


def _audit(n: int) -> AuditEvent:
    return AuditEvent(n, "ann", "SetAlias", "models/m/aliases/p", T0 + timedelta(seconds=n),
                      None, {"version": "models/m/versions/1"}, "", "")  # fmt: skip


def _service(audit: _Audit, feed: _Feed | None = None) -> EventService:
    return EventService(audit, feed or _Feed(0), Paginator(PageTokenCodec(b"k" * 32)))


async def test_audit_pages_cover_every_event_once_newest_first() -> None:
    service = _service(_Audit([_audit(n) for n in range(1, 8)]))
    seen, token = [], ""
    while True:
        page = await service.list_audit_events(3, token, "", None, None, "", "")
        seen += [e.event_id for e in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]


async def test_audit_token_of_another_query_is_refused() -> None:
    service = _service(_Audit([_audit(n) for n in range(1, 4)]))
    page = await service.list_audit_events(1, "", "", None, None, "", "")
    with pytest.raises(InvalidArgument) as info:
        await service.list_audit_events(1, page.next_page_token, "", None, None, "bob", "")
    assert info.value.reason == "PAGE_TOKEN_INVALID"


@pytest.mark.parametrize("order_by", ["event_time asc", "  EVENT_TIME   ASC "])
async def test_audit_ascending_order(order_by: str) -> None:
    audit = _Audit([_audit(n) for n in range(1, 4)])
    page = await _service(audit).list_audit_events(10, "", "models/m", None, None, "", order_by)
    assert [e.event_id for e in page.items] == [1, 2, 3]
    assert audit.queries[-1].descending is False
    assert audit.queries[-1].model_id == "m"


async def test_audit_bad_order_by_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as info:
        await _service(_Audit([])).list_audit_events(10, "", "", None, None, "", "actor")
    assert info.value.reason == "ORDER_BY_INVALID"


async def test_audit_method_filter_reaches_the_query_and_binds_the_token() -> None:
    audit = _Audit([_audit(n) for n in range(1, 4)])
    service = _service(audit)
    page = await service.list_audit_events(1, "", "", None, None, "", "", method="SetAlias")
    assert audit.queries[-1].method == "SetAlias"
    with pytest.raises(InvalidArgument) as info:
        await service.list_audit_events(1, page.next_page_token, "", None, None, "", "")
    assert info.value.reason == "PAGE_TOKEN_INVALID"
    await service.list_audit_events(1, "", "", None, None, "", "")
    assert audit.queries[-1].method is None


@pytest.mark.parametrize(
    "method", ["setAlias", "Set_Alias", "SetAlias ", "Set Alias", "ListAuditEvents2", "S" * 65]
)
async def test_audit_malformed_method_is_invalid(method: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        await _service(_Audit([])).list_audit_events(10, "", "", None, None, "", "", method=method)
    assert (info.value.reason, info.value.field) == ("FIELD_INVALID", "method")


async def test_a_watch_starts_after_the_latest_event_unless_told() -> None:
    service = _service(_Audit([]), _Feed(latest=41))
    assert (await service.subscribe("", "", frozenset())).after_event_id == "41"
    assert (await service.subscribe("models/m", "7", frozenset())).after_event_id == "7"


@pytest.mark.parametrize("bad", ["-1", "x", "1.5", "\u00b2", "\uff13", "9223372036854775808", " 7"])
async def test_a_watch_refuses_what_is_no_event_id(bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        await _service(_Audit([])).subscribe("", bad, frozenset())
    assert info.value.field == "after_event_id"


def _event(n: int) -> ModelEvent:
    return ModelEvent(n, EventType.ALIAS_MOVED, "m", 1, "production", T0, "ann")


async def test_a_watch_resuming_before_what_housekeeping_deleted_has_expired() -> None:
    feed = _Feed(latest=20, pruned=10)
    with pytest.raises(OutOfRange) as info:
        await _service(_Audit([]), feed).subscribe("", "9", frozenset())
    assert info.value.reason == "EVENT_ID_EXPIRED"
    assert info.value.metadata["pruned_through_event_id"] == "10"
    assert info.value.metadata["field"] == "after_event_id"


async def test_a_watch_resuming_at_the_last_deleted_id_misses_nothing() -> None:
    feed = _Feed(latest=12, pruned=10)
    feed.events = [_event(11), _event(12)]
    subscription = await _service(_Audit([]), feed).subscribe("", "10", frozenset())
    assert subscription.after_event_id == "10"
    got = [await anext(subscription.events), await anext(subscription.events)]
    assert [e.event_id for e in got] == [11, 12]


async def test_a_deletion_racing_the_first_read_is_caught_not_turned_into_a_gap() -> None:
    feed = _Feed(latest=20, pruned=5)
    feed.events = [_event(n) for n in range(6, 21)]
    feed.pruned_by_read = 9  # events 6 to 9 went while the first batch was being read
    with pytest.raises(OutOfRange) as info:
        await _service(_Audit([]), feed).subscribe("", "7", frozenset())
    assert info.value.reason == "EVENT_ID_EXPIRED"

"""The audit log's hash chain without a database: the canonical encoding (RFC 8785), the walk
that finds the first bad event, the verify and export use cases on a fake store, and the SDK's
independent verifier agreeing with the server's encoding."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from modelregistry.audit import CANONICAL_FIELDS, chain_hash, verify_export
from modelregistry_server.common.adapters import audit_log
from modelregistry_server.common.adapters.audit_log.chain import AuditChainer
from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.audit_chain import (
    GENESIS,
    ChainHead,
    ChainVerifier,
    EventFields,
    ProblemKind,
    canonical_json,
    json_object,
    link_hash,
)
from modelregistry_server.common.kernel.errors import database_unavailable
from modelregistry_server.common.kernel.page_token import PageTokenCodec
from modelregistry_server.common.kernel.paging import Paginator
from modelregistry_server.metadata.app.audit_chain import (
    anchor_of,
    export_page,
    link_of,
    verify_chain,
)
from modelregistry_server.metadata.domain.errors import InvalidArgument
from modelregistry_server.metadata.domain.events import AuditEvent

pytestmark = pytest.mark.timeout(30)
T0 = datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)


def _event(n: int, **changes: object) -> AuditEvent:
    event = AuditEvent(
        event_id=100 + n, actor="alice", method="SetAlias",
        resource=f"models/m/aliases/a{n}", event_time=T0 + timedelta(seconds=n),
        before=None if n % 3 == 0 else {"version": f"models/m/versions/{n}", "n": n * 0.5},
        after={"version": "models/m/versions/1", "labels": {"é": "ü", "z": [1, 2.5, None]}},
        request_id="" if n % 2 else "8b0f4c3e-5d0a-4c8e-9a51-0f1c2b3d4e5f", trace_id="",
        denied_permission="", model_id="m" if n % 4 else None,
    )  # fmt: skip
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


def _chain(events: list[AuditEvent]) -> list[AuditEvent]:
    """The events with positions and hashes, as the chainer stores them."""
    chained, previous = [], GENESIS
    for position, event in enumerate(events, start=1):
        digest = link_hash(previous, link_of(event).canonical)
        chained.append(
            dataclasses.replace(event, chain_position=position, previous_hash=previous, hash=digest)
        )
        previous = digest
    return chained


# ------------------------------------------------------------------ canonical encoding


def test_the_encoding_is_rfc_8785() -> None:
    # RFC 8785 section 3.2.3: keys in the order of their UTF-16 code units.
    keys = canonical_json(
        {
            "\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet",
            "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis",
        }
    )  # fmt: skip
    assert list(json.loads(keys).values()) == [
        "Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis",
        "Euro Sign", "Emoji: Grinning Face", "Hebrew Letter Dalet",
    ]  # fmt: skip
    # Its numbers (ECMAScript's form of the double), literals and minimal string escapes.
    text = canonical_json(
        {
            "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 1e-27, -0.0, 2**60, 10],
            "literals": [None, True, False],
            "string": 'a"\\\n\x1f/é',
        }
    )
    assert text == (
        '{"literals":[null,true,false],'
        '"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27,0,1152921504606847000,10],'
        '"string":"a\\"\\\\\\n\\u001f/é"}'
    )


def test_an_event_encodes_to_fixed_bytes() -> None:
    fields = EventFields(
        7, T0, "alice", "SetAlias", "models/m/aliases/prod", "m", None,
        {"version": "models/m/versions/3"}, None, "", None,
    )  # fmt: skip
    assert fields.canonical() == (
        b'{"actor":"alice","after":{"version":"models/m/versions/3"},"before":null,'
        b'"denied_permission":"","event_time":"2026-01-31T12:00:00.123456Z","method":"SetAlias",'
        b'"model":"models/m","name":"auditEvents/7","request_id":"","resource":'
        b'"models/m/aliases/prod","trace_id":""}'
    )
    # A time in another zone, and without microseconds, has the same fixed form.
    other = dataclasses.replace(fields, event_time=datetime(2026, 1, 31, 13, 0, tzinfo=UTC))
    assert b'"event_time":"2026-01-31T13:00:00.000000Z"' in other.canonical()


def test_a_snapshot_that_is_not_an_object_still_encodes() -> None:
    assert json_object('{"a": 1}') == {"a": 1}
    assert json_object("[1, 2]") == {"": [1, 2]}
    assert json_object(None) is None


def test_the_sdk_and_the_server_encode_alike() -> None:
    rng = random.Random(5)
    numbers: list[float] = [0.1 + 0.2, 1e21, 1e-7, 123.0, 2**53 + 1, 5e-324]
    for _ in range(3000):
        numbers.append(struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0])
        numbers.append(rng.randint(-(2**70), 2**70))
    numbers = [x for x in numbers if x == x and abs(x) != float("inf")]
    for start in range(0, len(numbers), 50):
        event = _event(start, after={"xs": numbers[start : start + 50], "ключ": "値\u2028"})
        record = _record(_chain([event])[0])
        fields = {key: record[key] for key in CANONICAL_FIELDS}
        assert chain_hash("0" * 64, fields) == record["hash"]


# ------------------------------------------------------------------ the walk


def _walk(events: list[AuditEvent], head: ChainHead, anchor: ChainHead | None = None):  # type: ignore[no-untyped-def]
    verifier = ChainVerifier(anchor)
    for event in events:
        if verifier.feed(link_of(event)) is not None:
            break
    return verifier.finish(head)


def _head(chained: list[AuditEvent]) -> ChainHead:
    return ChainHead(chained[-1].chain_position, chained[-1].hash)


def test_an_untouched_chain_verifies() -> None:
    chained = _chain([_event(n) for n in range(1, 30)])
    assert _walk(chained, _head(chained)) is None
    assert _walk([], ChainHead(0, GENESIS)) is None


def test_an_edited_event_is_named() -> None:
    chained = _chain([_event(n) for n in range(1, 30)])
    head = _head(chained)
    chained[9] = dataclasses.replace(chained[9], actor="mallory")
    problem = _walk(chained, head)
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == (ProblemKind.EDITED, 10, 110)
    assert "auditEvents/110" in problem.description


def test_a_deleted_event_is_a_gap_named_by_the_next_one() -> None:
    chained = _chain([_event(n) for n in range(1, 30)])
    head = _head(chained)
    del chained[9]
    problem = _walk(chained, head)
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == (ProblemKind.MISSING, 10, 111)
    assert "position 10 is missing" in problem.description


def test_swapped_events_are_reordered() -> None:
    chained = _chain([_event(n) for n in range(1, 30)])
    head = _head(chained)
    a, b = chained[4], chained[11]
    chained[4] = dataclasses.replace(b, chain_position=a.chain_position)
    chained[11] = dataclasses.replace(a, chain_position=b.chain_position)
    problem = _walk(chained, head)
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == (ProblemKind.REORDERED, 5, 112)


def test_events_deleted_from_the_end_fall_short_of_the_head() -> None:
    chained = _chain([_event(n) for n in range(1, 30)])
    problem = _walk(chained[:-2], _head(chained))
    assert problem is not None
    assert (problem.kind, problem.position, problem.event_id) == (ProblemKind.MISSING, 28, None)


def test_a_rewritten_last_event_disagrees_with_the_head() -> None:
    chained = _chain([_event(n) for n in range(1, 30)])
    head = _head(chained)
    rewritten = _chain([*(e for e in chained[:-1]), dataclasses.replace(chained[-1], actor="x")])
    problem = _walk(rewritten, head)
    assert problem is not None
    assert problem.kind is ProblemKind.EDITED


def test_an_anchor_catches_a_chain_rewritten_after_it() -> None:
    original = _chain([_event(n) for n in range(1, 30)])
    anchor = ChainHead(20, original[19].hash)
    rewritten = _chain([dataclasses.replace(e, actor="x") if e.event_id == 105 else e
                        for e in original])  # fmt: skip
    assert _walk(rewritten, _head(rewritten)) is None  # consistent in itself
    problem = _walk(rewritten, _head(rewritten), anchor)
    assert problem is not None
    assert problem.kind is ProblemKind.ANCHOR_MISMATCH
    assert problem.position == 20
    shorter = _walk(original[:10], _head(original[:10]), anchor)
    assert shorter is not None
    assert shorter.kind is ProblemKind.ANCHOR_MISMATCH


def test_anchors_are_checked() -> None:
    assert anchor_of(0, "") is None
    assert anchor_of(3, "ab" * 32) == ChainHead(3, bytes.fromhex("ab" * 32))
    for position, hash_hex in ((0, "ab" * 32), (-1, "ab" * 32), (3, ""), (3, "AB" * 32)):
        with pytest.raises(InvalidArgument):
            anchor_of(position, hash_hex)


# ------------------------------------------------------------------ use cases on a fake store


class _Store:
    def __init__(self, events: list[AuditEvent], unchained: int = 0) -> None:
        self.events = events
        self.unchained = unchained
        self.reads: list[tuple[int, int, int]] = []
        self.chained_calls = 0

    async def chain_pending(self) -> int:
        self.chained_calls += 1
        return 0

    async def chain_head(self) -> ChainHead:
        last = max(self.events, key=lambda e: e.chain_position, default=None)
        return ChainHead(0, GENESIS) if last is None else ChainHead(last.chain_position, last.hash)

    async def in_chain_order(self, after: int, through: int, limit: int) -> list[AuditEvent]:
        self.reads.append((after, through, limit))
        rows = sorted(
            (e for e in self.events if after < e.chain_position <= through),
            key=lambda e: e.chain_position,
        )
        return rows[:limit]

    async def unchained_count(self) -> int:
        return self.unchained

    async def first_position_since(self, start: datetime) -> int | None:
        return min((e.chain_position for e in self.events if e.event_time >= start), default=None)


async def test_verification_reads_in_batches_and_reports_the_head(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("modelregistry_server.metadata.app.audit_chain.VERIFY_BATCH", 7)
    chained = _chain([_event(n) for n in range(1, 31)])
    store = _Store(chained, unchained=2)
    report = await verify_chain(store, None)
    assert report.intact
    assert report.count == 30
    assert report.unchained == 2
    assert report.head == _head(chained)
    assert report.last == chained[-1]
    assert store.chained_calls == 1
    assert [after for after, _, _ in store.reads] == [0, 7, 14, 21, 28]


async def test_verification_stops_at_the_first_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("modelregistry_server.metadata.app.audit_chain.VERIFY_BATCH", 7)
    chained = _chain([_event(n) for n in range(1, 31)])
    chained[15] = dataclasses.replace(chained[15], after={"version": "models/m/versions/9"})
    store = _Store(chained)
    report = await verify_chain(store, None)
    assert not report.intact
    assert report.count == 15
    assert report.problem is not None
    assert report.problem.event_id == 116
    assert len(store.reads) == 3  # nothing after the batch with the problem


async def test_an_export_pages_in_chain_order_from_a_time() -> None:
    chained = _chain([_event(n) for n in range(1, 26)])
    store = _Store(chained)
    paginator = Paginator(PageTokenCodec(b"k" * 32))
    start = chained[9].event_time
    seen, token = [], ""
    while True:
        page = await export_page(store, paginator, 4, token, start)
        seen += [e.chain_position for e in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(range(10, 26))
    with pytest.raises(InvalidArgument):  # a token of another start
        await export_page(store, paginator, 4, (await export_page(store, paginator, 4, "", None))
                          .next_page_token, start)  # fmt: skip
    empty = await export_page(store, paginator, 4, "", T0 + timedelta(days=1))
    assert (empty.items, empty.next_page_token) == ([], "")


# ------------------------------------------------------------------ the SDK's verify_export


def _record(event: AuditEvent) -> dict[str, object]:
    """An export line as ``modelregistry audit export`` writes it."""
    return {
        "chain_position": event.chain_position,
        "previous_hash": event.previous_hash.hex(),
        "hash": event.hash.hex(),
        "name": f"auditEvents/{event.event_id}",
        "event_time": event.event_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": event.actor,
        "method": event.method,
        "resource": event.resource,
        "model": f"models/{event.model_id}" if event.model_id else "",
        "before": None if event.before is None else dict(event.before),
        "after": None if event.after is None else dict(event.after),
        "request_id": event.request_id,
        "trace_id": event.trace_id,
        "denied_permission": event.denied_permission,
    }


def _lines(events: list[AuditEvent]) -> list[str]:
    return [json.dumps(_record(e)) for e in events]


def test_an_export_verifies_offline_and_gives_the_head() -> None:
    chained = _chain([_event(n) for n in range(1, 40)])
    result = verify_export([*_lines(chained), ""], anchor=(20, chained[19].hash.hex()))
    assert result.ok, result.problem
    assert (result.count, result.first_position, result.last_position) == (39, 1, 39)
    assert result.head_hash == chained[-1].hash.hex()
    # An export that starts later (--since) trusts its first previous_hash.
    assert verify_export(_lines(chained[10:])).ok


def test_an_export_names_the_first_bad_line() -> None:
    chained = _chain([_event(n) for n in range(1, 40)])
    lines = _lines(chained)
    edited = json.loads(lines[12])
    edited["after"]["version"] = "models/m/versions/2"
    moved = json.loads(lines[20])
    moved["chain_position"] = 6  # another event, renumbered to fit in
    cases = {
        "auditEvents/113 at position 13 was changed": [
            *lines[:12], json.dumps(edited), *lines[13:]
        ],
        "auditEvents/115: position 15 follows 13": lines[:13] + lines[14:],
        "auditEvents/121: position 21 follows 5": [*lines[:5], lines[20], *lines[6:]],
        "auditEvents/121 at position 6 does not follow": [
            *lines[:5], json.dumps(moved), *lines[6:]
        ],
    }  # fmt: skip
    for words, tampered in cases.items():
        result = verify_export(tampered)
        assert not result.ok
        assert result.problem is not None
        assert words in result.problem
    wrong_anchor = verify_export(lines, anchor=(20, "0" * 64))
    assert not wrong_anchor.ok
    assert wrong_anchor.position == 20
    assert not verify_export(lines[:10], anchor=(20, chained[19].hash.hex())).ok


# ------------------------------------------------------------------ the chainer's schedule


class _Database:
    """Counts chaining passes; the lock is always taken by "another replica" (no SQL runs)."""

    def __init__(self, fail: bool = False) -> None:
        self.passes = 0
        self.fail = fail

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Conn]:
        self.passes += 1
        if self.fail:
            raise database_unavailable("it did not answer in time")
        yield _Conn()


class _Conn:
    async def fetchval(self, query: str, *args: object) -> object:
        return False  # try_lock_chain: another chainer holds it

    async def execute(self, query: str, *args: object) -> str:
        return "INSERT 0 1"


async def test_an_append_wakes_the_chainer_soon_after() -> None:
    database = _Database()
    chainer = AuditChainer(database, interval_s=60, settle_s=0.01)  # type: ignore[arg-type]
    task = asyncio.create_task(chainer.run_forever())
    try:
        await asyncio.sleep(0.05)
        assert database.passes == 0  # nothing appended, the interval is far off
        await audit_log.append(_Conn(), _entry())  # type: ignore[arg-type]
        for _ in range(100):
            if database.passes:
                break
            await asyncio.sleep(0.01)
        assert database.passes == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await audit_log.append(_Conn(), _entry())  # type: ignore[arg-type]  # no one listens now


async def test_a_failing_pass_is_logged_once_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    database = _Database(fail=True)
    chainer = AuditChainer(database, interval_s=1)  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG, "modelregistry_server.common.adapters.audit_log.chain"):
        for _ in range(3):
            assert await chainer.run_once() == 0
        database.fail = False
        await chainer.run_once()
    levels = [r.levelname for r in caplog.records]
    assert levels == ["WARNING", "DEBUG", "DEBUG", "INFO"]


def _entry() -> AuditEntry:
    return AuditEntry("alice", "SetAlias", "models/m/aliases/a", "m", None, {"v": 1}, None)

"""Stream slots per server and principal, and the idle guard of client streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from modelregistry_server.common.kernel.errors import ResourceExhausted
from modelregistry_server.common.rpc.status import REFUSALS, to_status
from modelregistry_server.common.rpc.stream_limits import (
    STREAM_IDLE,
    TOO_MANY_STREAMS,
    TOO_MANY_WATCH_STREAMS,
    StreamBounds,
    StreamLimiter,
)

pytestmark = pytest.mark.timeout(10)
STATUS_KEY = "grpc-status-details-bin"


def _limiter(idle: float = 5.0) -> StreamLimiter:
    return StreamLimiter(StreamBounds(3, 2, 1, idle))


def test_a_principal_gets_its_slots_and_gives_them_back() -> None:
    limiter = _limiter()
    first, _second = limiter.acquire("ana", False), limiter.acquire("ana", False)
    with pytest.raises(ResourceExhausted) as refused:
        limiter.acquire("ana", False)
    assert refused.value.reason == TOO_MANY_STREAMS
    assert refused.value.retry_after_s > 0
    assert "'ana' has 2 streams open" in refused.value.message
    # Another principal is not affected.
    limiter.acquire("bob", False)
    first()
    first()  # releasing twice gives back one slot only
    limiter.acquire("ana", False)
    assert limiter.counters.open == 3
    assert limiter.counters.refused[TOO_MANY_STREAMS] == 1


def test_the_server_limit_holds_across_principals() -> None:
    limiter = _limiter()
    for name in ("a", "b", "c"):
        limiter.acquire(name, False)
    with pytest.raises(ResourceExhausted, match="--max-streams"):
        limiter.acquire("d", False)


def test_watches_have_their_own_limit() -> None:
    limiter = _limiter()
    release = limiter.acquire("ana", True)
    with pytest.raises(ResourceExhausted) as refused:
        limiter.acquire("ana", True)
    assert refused.value.reason == TOO_MANY_WATCH_STREAMS
    limiter.acquire("ana", False)  # a non-watch stream still fits
    release()
    limiter.acquire("ana", True)


async def test_the_idle_guard_ends_a_stream_that_sends_nothing() -> None:
    limiter = _limiter(idle=0.1)

    async def stalls() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(5)
        yield 2

    got: list[int] = []

    async def drain() -> None:
        async for item in limiter.idle_guard(stalls()):
            got.append(item)

    with pytest.raises(ResourceExhausted) as ended:
        await drain()
    assert got == [1]
    assert ended.value.reason == STREAM_IDLE
    assert limiter.counters.idle_ended == 1


async def test_the_idle_guard_passes_a_steady_stream_through() -> None:
    limiter = _limiter(idle=0.2)

    async def steady() -> AsyncIterator[int]:
        for i in range(5):
            await asyncio.sleep(0.05)
            yield i

    assert [i async for i in limiter.idle_guard(steady())] == [0, 1, 2, 3, 4]


async def test_a_send_blocked_past_the_timeout_is_cancelled() -> None:
    limiter = _limiter(idle=0.1)

    async def blocked_send() -> None:
        task = asyncio.current_task()
        assert task is not None
        limiter.sending(task)
        await asyncio.sleep(5)  # the client reads nothing

    task = asyncio.create_task(blocked_send())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.counters.idle_ended == 1
    await limiter.stop()


def test_a_refusal_is_counted_and_tells_when_to_retry() -> None:
    before = REFUSALS["TOO_MANY_STREAMS"]
    status = to_status(ResourceExhausted("full", reason="TOO_MANY_STREAMS", retry_after_s=1.5))
    assert status is not None
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert REFUSALS["TOO_MANY_STREAMS"] == before + 1
    details = status_pb2.Status.FromString(dict(status.trailing_metadata)[STATUS_KEY]).details
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in details)
    assert retry.retry_delay.ToMilliseconds() == 1500

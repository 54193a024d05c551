"""The SDK's watch streams when the registry no longer keeps the events after the resume point
(``EVENT_ID_EXPIRED``): they re-subscribe from now and report the gap, without a server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from modelregistry import AsyncClient, Client, OutOfRangeError
from modelregistry._watch import WATCH_START_HEADER
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_event_pb2
from tests.unit.test_sdk_retry import FakeRpcError, unavailable
from tests.unit.test_sdk_watch import FAST, FakeStream, FakeWatchStub, event

pytestmark = pytest.mark.timeout(10)


def expired() -> FakeRpcError:
    return FakeRpcError(
        grpc.StatusCode.OUT_OF_RANGE, "after_event_id e1 has expired", "EVENT_ID_EXPIRED"
    )


@pytest.fixture
def client() -> Iterator[Client]:
    client = Client("127.0.0.1:1", retry=FAST, offline=False)
    yield client
    client.close()


def test_an_expired_resume_point_resubscribes_from_now_and_reports_the_gap(
    client: Client,
) -> None:
    stub = FakeWatchStub(
        [
            FakeStream([event(1), unavailable()]),
            FakeStream([expired()], code=grpc.StatusCode.OUT_OF_RANGE),
            FakeStream([event(9)], block=True, start="e8"),
        ]
    )
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    seen: list[str] = []
    with client.watch(
        "m", after_event_id="e0", on_resync=lambda s: seen.append(f"resync {s}")
    ) as w:
        seen.append(next(w).event_id)
        seen.append(next(w).event_id)
        assert w.resyncs == 1
        assert w.last_event_id == "e9"
    # The gap is reported once the new subscription stands, before the first event after it.
    assert seen == ["e1", "resync e8", "e9"]
    assert [r.after_event_id for r in stub.requests] == ["e0", "e1", ""]


def test_wait_subscribed_on_an_expired_resume_point_returns_the_new_start(client: Client) -> None:
    stub = FakeWatchStub(
        [
            FakeStream([expired()], code=grpc.StatusCode.OUT_OF_RANGE),
            FakeStream([event(9)], block=True, start="e8"),
        ]
    )
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    starts: list[str] = []
    with client.watch("m", after_event_id="e1", on_resync=starts.append) as stream:
        assert stream.wait_subscribed() == "e8"
        assert starts == ["e8"]
        assert next(stream).event_id == "e9"
    assert starts == ["e8"]  # reported once
    assert [r.after_event_id for r in stub.requests] == ["e1", ""]


def test_without_a_callback_the_gap_is_counted_and_logged(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    stub = FakeWatchStub([FakeStream([expired()]), FakeStream([event(3)], block=True, start="e2")])
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, "modelregistry"), client.watch(after_event_id="e1") as w:
        assert next(w).event_id == "e3"
        assert w.resyncs == 1
    assert "events in between may have been missed" in caplog.text


def test_a_watch_from_now_that_is_refused_as_expired_raises_rather_than_loops(
    client: Client,
) -> None:
    client._transport.metadata_stub = FakeWatchStub([FakeStream([expired()])])  # type: ignore[assignment]
    with pytest.raises(OutOfRangeError) as info:
        next(client.watch("m"))
    assert info.value.reason == "EVENT_ID_EXPIRED"


class FakeAsyncStream:
    """A ``grpc.aio`` server-stream call: queued items, then waits until cancelled."""

    def __init__(
        self, items: list[Any], start: str | None = None, code: grpc.StatusCode | None = None
    ) -> None:
        self.items = list(items)
        self.start = start
        self._code = code
        self.cancelled = asyncio.Event()

    async def initial_metadata(self) -> list[tuple[str, str]]:
        return [] if self.start is None else [(WATCH_START_HEADER, self.start)]

    def __aiter__(self) -> FakeAsyncStream:
        return self

    async def __anext__(self) -> model_event_pb2.ModelEvent:
        if self.items:
            item = self.items.pop(0)
            if isinstance(item, Exception):
                raise item
            return item  # type: ignore[no-any-return]
        await self.cancelled.wait()
        raise asyncio.CancelledError  # what grpc.aio raises for a locally cancelled call

    def cancel(self) -> bool:
        self.cancelled.set()
        return True

    async def code(self) -> grpc.StatusCode:
        return self._code or grpc.StatusCode.OK

    def done(self) -> bool:
        return self._code is not None


class FakeAsyncWatchStub:
    def __init__(self, streams: list[FakeAsyncStream]) -> None:
        self.streams = streams
        self.requests: list[ms.WatchModelEventsRequest] = []

    def WatchModelEvents(  # noqa: N802 - the stub's method name
        self, request: ms.WatchModelEventsRequest, *, metadata: Any = None
    ) -> FakeAsyncStream:
        self.requests.append(request)
        return self.streams.pop(0)


@pytest.fixture
async def aclient() -> AsyncIterator[AsyncClient]:
    client = AsyncClient("127.0.0.1:1", retry=FAST, offline=False)
    yield client
    await client.close()


async def test_the_async_stream_resubscribes_and_awaits_a_coroutine_callback(
    aclient: AsyncClient,
) -> None:
    stub = FakeAsyncWatchStub(
        [
            FakeAsyncStream([event(1), unavailable()], start="e0"),
            FakeAsyncStream([expired()], code=grpc.StatusCode.OUT_OF_RANGE),
            FakeAsyncStream([event(9)], start="e8"),
        ]
    )
    aclient._transport.metadata_stub = stub  # type: ignore[assignment]
    seen: list[str] = []

    async def reload(start: str) -> None:
        await asyncio.sleep(0)
        seen.append(f"resync {start}")

    async with aclient.watch("m", after_event_id="e0", on_resync=reload) as stream:
        seen.append((await anext(stream)).event_id)
        seen.append((await anext(stream)).event_id)
        assert stream.resyncs == 1
    assert seen == ["e1", "resync e8", "e9"]
    assert [r.after_event_id for r in stub.requests] == ["e0", "e1", ""]


async def test_async_wait_subscribed_on_an_expired_resume_point(aclient: AsyncClient) -> None:
    stub = FakeAsyncWatchStub(
        [
            FakeAsyncStream([expired()], code=grpc.StatusCode.OUT_OF_RANGE),
            FakeAsyncStream([event(9)], start="e8"),
        ]
    )
    aclient._transport.metadata_stub = stub  # type: ignore[assignment]
    starts: list[str] = []
    async with aclient.watch("m", after_event_id="e1", on_resync=starts.append) as stream:
        assert await stream.wait_subscribed() == "e8"
        assert (await anext(stream)).event_id == "e9"
    assert starts == ["e8"]
    assert [r.after_event_id for r in stub.requests] == ["e1", ""]

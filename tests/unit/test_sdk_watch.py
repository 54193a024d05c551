"""The SDK's watch streams without a server: reconnects, resume points, cancellation."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from modelregistry import (
    NO_RETRY,
    AsyncClient,
    CancelledError,
    Client,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RetryPolicy,
    UnavailableError,
)
from modelregistry._watch import WATCH_START_HEADER, reconnect_delay
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_event_pb2
from tests.unit.test_sdk_retry import FakeRpcError, unavailable

pytestmark = pytest.mark.timeout(10)
FAST = RetryPolicy(max_attempts=3, initial_backoff_s=0.0, max_backoff_s=0.01)


@pytest.fixture
def client() -> Iterator[Client]:
    client = Client("127.0.0.1:1", retry=FAST, offline=False)
    yield client
    client.close()


CANCELLED = object()


def event(n: int) -> model_event_pb2.ModelEvent:
    return model_event_pb2.ModelEvent(event_id=f"e{n}", model="models/m")


class FakeStream:
    """A server-stream call: yields queued items; an exception item is raised; cancel ends it."""

    def __init__(
        self,
        items: list[Any],
        block: bool = False,
        start: str | None = None,
        code: grpc.StatusCode | None = None,
    ) -> None:
        self.items: queue.Queue[Any] = queue.Queue()
        for item in items:
            self.items.put(item)
        self.block = block
        self.cancelled = threading.Event()
        self.start = start  # what the response headers name; None: no such header
        self._code = code  # None: still running

    def initial_metadata(self) -> list[tuple[str, str]] | None:
        return None if self.start is None else [(WATCH_START_HEADER, self.start)]

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def __iter__(self) -> FakeStream:
        return self

    def __next__(self) -> model_event_pb2.ModelEvent:
        if self.cancelled.is_set():
            raise FakeRpcError(grpc.StatusCode.CANCELLED, "Locally cancelled")
        if self.items.empty() and not self.block:
            raise StopIteration
        item = self.items.get()
        if item is CANCELLED:
            raise FakeRpcError(grpc.StatusCode.CANCELLED, "Locally cancelled")
        if isinstance(item, Exception):
            raise item
        return item  # type: ignore[no-any-return]

    def cancel(self) -> bool:
        self.cancelled.set()
        self.items.put(CANCELLED)
        return True


class FakeWatchStub:
    def __init__(self, streams: list[FakeStream]) -> None:
        self.streams = streams
        self.requests: list[ms.WatchModelEventsRequest] = []
        self.opened: list[FakeStream] = []

    def WatchModelEvents(  # noqa: N802 - the stub's method name
        self, request: ms.WatchModelEventsRequest, *, metadata: Any = None
    ) -> FakeStream:
        self.requests.append(request)
        stream = self.streams.pop(0)
        self.opened.append(stream)
        return stream


def test_watch_reconnects_on_unavailable_from_the_last_event(client: Client) -> None:
    stub = FakeWatchStub(
        [
            FakeStream([event(1), event(2), unavailable()]),
            FakeStream([unavailable()]),  # the server is still restarting
            FakeStream([event(3)], block=True),
        ]
    )
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    stream = client.watch("m", after_event_id="e0", event_types=["ALIAS_MOVED"])
    got = [next(stream).event_id for _ in range(3)]
    assert got == ["e1", "e2", "e3"]
    assert [r.after_event_id for r in stub.requests] == ["e0", "e2", "e2"]
    assert all(r.model == "models/m" for r in stub.requests)
    assert all(list(r.event_types) == [2] for r in stub.requests)
    assert stream.last_event_id == "e3"
    assert stub.opened[0].cancelled.is_set()
    assert stub.opened[1].cancelled.is_set()
    stream.close()
    assert stub.opened[2].cancelled.is_set()
    with pytest.raises(StopIteration):
        next(stream)


def test_a_watch_dropped_before_its_first_event_resumes_from_where_it_began(
    client: Client,
) -> None:
    stub = FakeWatchStub(
        [FakeStream([unavailable()], start="e5"), FakeStream([event(6)], block=True, start="e5")]
    )
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    with client.watch("m") as stream:
        assert next(stream).event_id == "e6"
    # Not "" again: that would mean "from now" and lose what changed while reconnecting.
    assert [r.after_event_id for r in stub.requests] == ["", "e5"]


def test_wait_subscribed_returns_the_start_and_the_stream_goes_on_on_the_same_call(
    client: Client,
) -> None:
    stub = FakeWatchStub([FakeStream([event(8)], block=True, start="e7")])
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    with client.watch("m") as stream:
        assert stream.wait_subscribed() == "e7"
        assert stream.last_event_id == "e7"
        assert next(stream).event_id == "e8"
    assert len(stub.requests) == 1


def test_wait_subscribed_raises_why_the_server_refused(client: Client) -> None:
    gone = FakeRpcError(grpc.StatusCode.NOT_FOUND, "models/m not found", "MODEL_NOT_FOUND")
    stub = FakeWatchStub([FakeStream([gone], code=grpc.StatusCode.NOT_FOUND)])
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    with client.watch("m") as stream, pytest.raises(NotFoundError) as info:
        stream.wait_subscribed()
    assert info.value.reason == "MODEL_NOT_FOUND"


def test_watch_raises_other_errors_typed(client: Client) -> None:
    # (An expired resume point is not raised: test_sdk_watch_resync.py.)
    denied = FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "no", "PERMISSION_DENIED")
    client._transport.metadata_stub = FakeWatchStub([FakeStream([denied])])  # type: ignore[assignment]
    with pytest.raises(PermissionDeniedError) as info:
        next(client.watch("m", after_event_id="e0"))
    assert info.value.reason == "PERMISSION_DENIED"


def test_watch_reconnects_when_the_registrys_watch_limit_refused_it(client: Client) -> None:
    limit = FakeRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "too many watch streams", "TOO_MANY_WATCH_STREAMS"
    )
    stub = FakeWatchStub(
        [FakeStream([event(1), unavailable()]), FakeStream([limit]), FakeStream([event(2)])]
    )
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    stream = client.watch("m", after_event_id="e0")
    assert [next(stream).event_id for _ in range(2)] == ["e1", "e2"]
    assert [r.after_event_id for r in stub.requests] == ["e0", "e1", "e1"]
    stream.close()


def test_watch_raises_a_resource_exhausted_that_is_not_the_registrys(client: Client) -> None:
    too_large = FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max")
    client._transport.metadata_stub = FakeWatchStub([FakeStream([too_large])])  # type: ignore[assignment]
    with pytest.raises(ResourceExhaustedError):
        next(client.watch("m", after_event_id="e0"))


def test_a_reconnect_waits_for_the_servers_hint_capped() -> None:
    policy = RetryPolicy(initial_backoff_s=0.0, max_backoff_s=0.0, max_retry_delay_s=10.0)
    assert reconnect_delay(policy, policy.backoffs(), "limit", 2.5) == 2.5
    assert reconnect_delay(policy, policy.backoffs(), "limit", 99.0) == 10.0
    assert reconnect_delay(policy, policy.backoffs(), "limit") == 0.0


def test_watch_with_no_retry_does_not_reconnect() -> None:
    with Client("127.0.0.1:1", retry=NO_RETRY, offline=False) as client:
        stub = FakeWatchStub([FakeStream([event(1), unavailable()])])
        client._transport.metadata_stub = stub  # type: ignore[assignment]
        stream = client.watch()
        assert next(stream).event_id == "e1"
        with pytest.raises(UnavailableError):
            next(stream)
        assert stub.requests[0].model == ""


def test_closing_from_another_thread_cancels_a_blocked_watch(client: Client) -> None:
    stub = FakeWatchStub([FakeStream([event(1)], block=True)])
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    received: list[str] = []
    with client.watch("m") as stream:

        def consume() -> None:
            received.extend(e.event_id for e in stream)

        worker = threading.Thread(target=consume)
        worker.start()
        while not received:
            threading.Event().wait(0.01)
        stream.close()  # the consumer is blocked inside next(): only a cancel can free it
        worker.join(5)
        assert not worker.is_alive()
    assert received == ["e1"]
    assert stub.opened[0].cancelled.is_set()


def test_breaking_out_and_closing_cancels_the_stream(client: Client) -> None:
    stub = FakeWatchStub([FakeStream([event(1), event(2)], block=True)])
    client._transport.metadata_stub = stub  # type: ignore[assignment]
    with client.watch("m") as stream:
        for received in stream:
            assert received.event_id == "e1"
            break
    assert stub.opened[0].cancelled.is_set()


def test_watch_rejects_unknown_event_types_immediately(client: Client) -> None:
    with pytest.raises(InvalidArgumentError):
        client.watch("m", event_types=["NOPE"])


def test_a_watch_on_a_closed_client_fails_typed() -> None:
    client = Client("127.0.0.1:1", offline=False)
    stream = client.watch("m")
    client.close()
    with pytest.raises(CancelledError) as info:
        next(stream)
    assert info.value.reason == "CLIENT_CLOSED"


async def test_an_async_watch_on_a_closed_client_fails_typed() -> None:
    client = AsyncClient("127.0.0.1:1", offline=False)
    stream = client.watch("m")
    await client.close()
    with pytest.raises(CancelledError) as info:
        await anext(stream)
    assert info.value.reason == "CLIENT_CLOSED"

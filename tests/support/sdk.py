"""What the SDK end-to-end tests share: tokens, helpers to run the sync SDK off the loop,
versions made through the raw stubs, and a thread that consumes a watch."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from modelregistry import (
    RetryPolicy,
    UnavailableError,
    _convert,
)
from modelregistry.metadata.v1 import model_event_pb2, model_version_pb2
from tests.conftest import RunningRegistry
from tests.support.auth import create_token
from tests.support.metadata import push

T = TypeVar("T")
READY = model_version_pb2.MODEL_VERSION_STATE_READY
DELETED = model_version_pb2.MODEL_VERSION_STATE_DELETED
ALIAS_MOVED = model_event_pb2.MODEL_EVENT_TYPE_ALIAS_MOVED
# Reconnect quickly in tests; the default backoff is tuned for real outages.
FAST_RECONNECT = RetryPolicy(max_attempts=5, initial_backoff_s=0.05, max_backoff_s=0.5)


def retry_until_up(work: Callable[[], T], within: float = 30.0) -> T:
    """Call ``work`` until the restarted server answers (the channel reconnects with backoff)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return work()
        except UnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def sdk_tester(registry: RunningRegistry) -> str:
    """A token of principal ``sdk-tester``: what the audit log must name for SDK calls."""
    return await create_token(registry.target, "sdk-tester")


async def off_loop(work: Callable[[], T]) -> T:
    """Run blocking SDK calls in a thread while the loop keeps serving them."""
    return await asyncio.to_thread(work)


async def push_version(
    registry: RunningRegistry,
    model: str,
    files: dict[str, bytes],
    params: dict[str, str | int | float | bool] | None = None,
    metrics: dict[str, float] | None = None,
) -> model_version_pb2.ModelVersion:
    """A READY version made through the raw stubs, with Python-typed ``params``."""
    return await push(
        registry, model, files, params=_convert.params_to_proto(params), metrics=metrics or {}
    )


def consume_in_thread(
    stream: Iterable[model_event_pb2.ModelEvent],
) -> tuple[list[model_event_pb2.ModelEvent], threading.Event, threading.Thread]:
    """Collect ``stream``'s events on a daemon thread; the event is set at each arrival."""
    received: list[model_event_pb2.ModelEvent] = []
    arrived = threading.Event()

    def consume() -> None:
        for event in stream:
            received.append(event)
            arrived.set()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    return received, arrived, consumer

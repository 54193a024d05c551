"""The SDK's watch streams against a real registry: subscription, reconnects, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from modelregistry import (
    AsyncClient,
    Client,
    InvalidArgumentError,
)
from modelregistry.metadata.v1 import model_event_pb2
from modelregistry_server.common.adapters.embedded_postgres import free_loopback_port
from tests.conftest import RunningRegistry, _start_registry
from tests.support.sdk import (
    ALIAS_MOVED,
    FAST_RECONNECT,
    consume_in_thread,
    off_loop,
    push_version,
    retry_until_up,
    sdk_tester,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_watch_sees_an_alias_move_and_close_cancels_it(
    registry: RunningRegistry, client: Client
) -> None:
    await off_loop(lambda: client.create_model("m"))
    await push_version(registry, "m", {"a": b"1"})
    await push_version(registry, "m", {"a": b"2"})
    stream = client.watch("m", event_types=["ALIAS_MOVED"])
    await asyncio.wait_for(off_loop(stream.wait_subscribed), 30)
    received, first, consumer = consume_in_thread(stream)
    await off_loop(lambda: client.set_alias("m", "production", 1))  # one move is enough
    assert await off_loop(lambda: first.wait(30)), "the move after wait_subscribed never arrived"
    event = received[0]
    assert event.type == ALIAS_MOVED
    assert event.alias == "models/m/aliases/production"
    assert event.actor == "sdk-tester"
    assert stream.last_event_id
    await off_loop(stream.close)  # the consumer is blocked in next(): close must free it
    await off_loop(lambda: consumer.join(10))
    assert not consumer.is_alive()

    # Resuming from the last id replays what happened while nobody watched, without gaps.
    last = received[-1].event_id
    await off_loop(lambda: client.set_alias("m", "production", 3 - int(event.model_version[-1])))

    def resume() -> model_event_pb2.ModelEvent:
        with client.watch("m", after_event_id=last) as resumed:
            return next(resumed)

    replayed = await asyncio.wait_for(off_loop(resume), 30)
    assert replayed.type == ALIAS_MOVED
    assert replayed.event_id != last


async def test_after_wait_subscribed_a_single_move_is_never_missed(
    registry: RunningRegistry, client: Client, aclient: AsyncClient
) -> None:
    # No retry loop here (unlike the test above): one move made right after wait_subscribed()
    # returns must arrive, for the sync and the async stream.
    await off_loop(lambda: client.create_model("w"))
    await push_version(registry, "w", {"a": b"1"})
    await push_version(registry, "w", {"a": b"2"})

    def sync_side() -> tuple[str, model_event_pb2.ModelEvent]:
        with client.watch("w", event_types=["ALIAS_MOVED"]) as stream:
            start = stream.wait_subscribed()
            assert stream.last_event_id == start
            client.set_alias("w", "production", 1)
            return start, next(stream)

    start, event = await asyncio.wait_for(off_loop(sync_side), 30)
    assert start.isdigit()
    assert int(event.event_id) > int(start)
    assert event.alias == "models/w/aliases/production"
    assert event.model_version == "models/w/versions/1"

    async with asyncio.timeout(30), aclient.watch("w", event_types=["ALIAS_MOVED"]) as astream:
        astart = await astream.wait_subscribed()
        assert int(astart) >= int(event.event_id)  # the sync side's move came before
        await aclient.set_alias("w", "production", 2)
        moved = await anext(astream)
    assert moved.model_version == "models/w/versions/2"
    assert int(moved.event_id) > int(astart)


async def test_wait_subscribed_raises_the_servers_refusal(
    client: Client, aclient: AsyncClient
) -> None:
    def scenario() -> None:
        stream = client.watch("m", after_event_id="not-an-id")
        with stream, pytest.raises(InvalidArgumentError) as info:
            stream.wait_subscribed()
        assert "after_event_id" in info.value.message

    await asyncio.wait_for(off_loop(scenario), 30)
    async with aclient.watch("m", after_event_id="not-an-id") as astream:
        with pytest.raises(InvalidArgumentError) as ainfo:
            await asyncio.wait_for(astream.wait_subscribed(), 30)
    assert "after_event_id" in ainfo.value.message


async def test_watch_reconnects_across_a_server_restart_without_missing_events(
    database_url: str, tmp_path: Path
) -> None:
    port = free_loopback_port()
    listen = [f"--listen=127.0.0.1:{port}"]  # the last --listen wins: same address after restart
    first = _start_registry(database_url, tmp_path / "data", listen)
    registry = await anext(first)
    token = await sdk_tester(registry)
    client = Client(registry.target, token=token, retry=FAST_RECONNECT, offline=False)
    try:
        await off_loop(lambda: client.create_model("m"))
        await push_version(registry, "m", {"a": b"1"})
        await push_version(registry, "m", {"a": b"2"})
        stream = client.watch("m", event_types=["ALIAS_MOVED"])
        await asyncio.wait_for(off_loop(stream.wait_subscribed), 30)
        received, arrived, consumer = consume_in_thread(stream)
        await off_loop(lambda: client.set_alias("m", "production", 1))
        assert await off_loop(lambda: arrived.wait(30)), "no event before the restart"
        seen_before = len(received)
        with contextlib.suppress(StopAsyncIteration):
            await anext(first)  # stops the server: the open stream fails with UNAVAILABLE
        arrived.clear()
        second = _start_registry(database_url, tmp_path / "data", listen)
        registry = await anext(second)
        try:
            target = received[-1].model_version
            moved_to = 3 - int(target.rsplit("/", 1)[1])
            await off_loop(
                lambda: retry_until_up(lambda: client.set_alias("m", "production", moved_to))
            )
            assert await off_loop(lambda: arrived.wait(30)), "no event after the restart"
            after = received[seen_before]
            assert after.type == ALIAS_MOVED
            assert after.model_version == f"models/m/versions/{moved_to}"
            await off_loop(stream.close)
            await off_loop(lambda: consumer.join(10))
            assert not consumer.is_alive()
        finally:
            with contextlib.suppress(StopAsyncIteration):
                await anext(second)
    finally:
        await off_loop(client.close)

"""Audit log and WatchModelEvents over real gRPC, including a second server process."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest

from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import metadata_service_pb2_grpc, model_event_pb2, model_pb2
from tests.conftest import RunningRegistry
from tests.support.auth import authenticated_channel, bearer, create_token
from tests.support.metadata import new_model, push

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_every_mutation_is_audited_and_filterable(registry: RunningRegistry) -> None:
    # Alice's token, and a header that claims to be someone else: the server ignores it.
    ACTOR = (  # noqa: N806 - one constant per test, named as before
        *bearer(await create_token(registry.target, "alice@laptop")),
        ("x-modelregistry-actor", "mallory@elsewhere"),
    )
    await registry.metadata.CreateModel(
        ms.CreateModelRequest(model_id="m", model=model_pb2.Model()), metadata=ACTOR
    )
    version = await push(registry, "m", {"w": os.urandom(32)})
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="production", version=version.name),
        metadata=ACTOR,
    )
    await registry.metadata.DeleteAlias(
        ms.DeleteAliasRequest(name="models/m/aliases/production"), metadata=ACTOR
    )
    page = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(model="models/m", order_by="event_time asc")
    )
    methods = [e.method for e in page.audit_events]
    assert methods == [
        "CreateModel", "CreateModelVersion", "CommitModelVersion", "SetAlias", "DeleteAlias",
    ]  # fmt: skip
    moved = page.audit_events[3]
    assert moved.after["version"] == version.name
    assert moved.resource == "models/m/aliases/production"
    mine = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(model="models/m", actor="alice@laptop")
    )
    assert [e.method for e in mine.audit_events] == ["DeleteAlias", "SetAlias", "CreateModel"]
    spoofed = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(model="models/m", actor="mallory@elsewhere")
    )
    assert list(spoofed.audit_events) == []
    paged: list[str] = []
    token = ""
    while True:
        response = await registry.metadata.ListAuditEvents(
            ms.ListAuditEventsRequest(model="models/m", page_size=2, page_token=token)
        )
        paged += [e.name for e in response.audit_events]
        token = response.next_page_token
        if not token:
            break
    assert len(paged) == len(set(paged)) == 5


class Watcher:
    """Collects a WatchModelEvents stream in the background."""

    def __init__(self, registry: RunningRegistry, model: str, after: str = "") -> None:
        self.events: list[model_event_pb2.ModelEvent] = []
        self.consumed = 0
        self.arrived = asyncio.Event()
        self.call = registry.metadata.WatchModelEvents(
            ms.WatchModelEventsRequest(model=model, after_event_id=after)
        )
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self.call:
            # A version's scan verdict arrives on its own schedule (test_model_scan.py covers
            # it); these tests follow the changes callers make.
            if event.type == model_event_pb2.MODEL_EVENT_TYPE_VERSION_SCANNED:
                continue
            self.events.append(event)
            self.arrived.set()

    async def next(self, within: float) -> model_event_pb2.ModelEvent:
        """Return the next event not returned yet, waiting at most ``within`` seconds."""
        deadline = time.monotonic() + within
        while len(self.events) <= self.consumed:
            self.arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no event within {within}s")
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except TimeoutError:
                raise AssertionError(f"no event within {within}s") from None
        self.consumed += 1
        return self.events[self.consumed - 1]

    async def stop(self) -> None:
        self.call.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def watcher_factory(registry: RunningRegistry) -> AsyncIterator[list[Watcher]]:
    watchers: list[Watcher] = []
    yield watchers
    for watcher in watchers:
        await watcher.stop()


async def test_watch_sees_ready_alias_move_and_delete_within_a_second(
    registry: RunningRegistry, watcher_factory: list[Watcher]
) -> None:
    await new_model(registry, "m")
    watcher = Watcher(registry, "models/m")
    watcher_factory.append(watcher)
    await asyncio.sleep(0.2)  # the stream is open before the changes
    version = await push(registry, "m", {"w": b"abc"})
    ready = await watcher.next(within=1.0)
    assert ready.type == model_event_pb2.MODEL_EVENT_TYPE_VERSION_READY
    assert ready.model_version == version.name
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="production", version=version.name)
    )
    moved = await watcher.next(within=1.0)
    assert moved.type == model_event_pb2.MODEL_EVENT_TYPE_ALIAS_MOVED
    assert moved.alias == "models/m/aliases/production"
    await registry.metadata.DeleteModelVersion(ms.DeleteModelVersionRequest(name=version.name))
    kinds = {(await watcher.next(within=1.0)).type, (await watcher.next(within=1.0)).type}
    assert model_event_pb2.MODEL_EVENT_TYPE_VERSION_DELETED in kinds


async def test_watch_sees_changes_made_through_another_server_process(
    registry: RunningRegistry, watcher_factory: list[Watcher], second_server: str
) -> None:
    await new_model(registry, "m")
    first = await push(registry, "m", {"w": b"one"})
    watcher = Watcher(registry, "models/m")
    watcher_factory.append(watcher)
    await asyncio.sleep(0.2)
    async with authenticated_channel(second_server) as channel:
        other = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        other_version = await other.CreateModelVersion(
            ms.CreateModelVersionRequest(parent="models/m")
        )
        await other.CommitModelVersion(
            ms.CommitModelVersionRequest(name=other_version.name, files=list(first.files))
        )
        ready = await watcher.next(within=1.0)
        assert ready.type == model_event_pb2.MODEL_EVENT_TYPE_VERSION_READY
        assert ready.model_version == other_version.name
        await other.SetAlias(
            ms.SetAliasRequest(model="models/m", alias="prod", version=other_version.name)
        )
        moved = await watcher.next(within=1.0)
        assert moved.type == model_event_pb2.MODEL_EVENT_TYPE_ALIAS_MOVED
        await other.DeleteModelVersion(ms.DeleteModelVersionRequest(name=first.name))
        deleted = await watcher.next(within=1.0)
        assert deleted.type == model_event_pb2.MODEL_EVENT_TYPE_VERSION_DELETED


async def test_reconnect_with_last_event_id_misses_nothing(
    registry: RunningRegistry, watcher_factory: list[Watcher]
) -> None:
    await new_model(registry, "m")
    watcher = Watcher(registry, "models/m")
    await asyncio.sleep(0.2)
    version = await push(registry, "m", {"w": b"v1"})
    last = await watcher.next(within=1.0)
    await watcher.stop()
    # While nobody watches: three more changes.
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="staging", version=version.name)
    )
    second = await push(registry, "m", {"w": b"v2"})
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="staging", version=second.name)
    )
    resumed = Watcher(registry, "models/m", after=last.event_id)
    watcher_factory.append(resumed)
    got = [await resumed.next(within=2.0) for _ in range(3)]
    assert [e.type for e in got] == [
        model_event_pb2.MODEL_EVENT_TYPE_ALIAS_MOVED,
        model_event_pb2.MODEL_EVENT_TYPE_VERSION_READY,
        model_event_pb2.MODEL_EVENT_TYPE_ALIAS_MOVED,
    ]
    ids = [int(e.event_id) for e in got]
    assert ids == sorted(ids)
    assert ids[0] > int(last.event_id)


async def test_audit_time_range_is_start_inclusive_end_exclusive(
    registry: RunningRegistry,
) -> None:
    await new_model(registry, "early")
    first = await registry.metadata.ListAuditEvents(ms.ListAuditEventsRequest(model="models/early"))
    boundary = first.audit_events[0].event_time
    await asyncio.sleep(0.05)
    await new_model(registry, "late")
    everything = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(start_time=boundary)
    )
    assert [e.resource for e in everything.audit_events] == ["models/late", "models/early"]
    before = await registry.metadata.ListAuditEvents(ms.ListAuditEventsRequest(end_time=boundary))
    # Before the boundary: only the server's start-up (its bootstrap admin token and role).
    assert sorted((e.actor, e.method) for e in before.audit_events) == [
        ("bootstrap", "CreateAccessToken"), ("bootstrap", "CreateRoleBinding"),
    ]  # fmt: skip

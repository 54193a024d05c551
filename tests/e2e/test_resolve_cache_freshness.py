"""The resolve cache never serves a stale answer: writes here, writes through another server
process, and a lost notification connection, over real gRPC and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2

from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import metadata_service_pb2_grpc, model_version_pb2
from modelregistry_server.metadata.app.resolve_cache import ResolveCache
from tests.conftest import RunningRegistry
from tests.support.auth import authenticated_channel, bearer, create_token
from tests.support.metadata import new_model, push

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _cache(registry: RunningRegistry) -> ResolveCache:
    cache = registry.server.resolve_cache
    assert cache is not None
    return cache


async def _listening(registry: RunningRegistry) -> ResolveCache:
    """Wait until the event feed listens (the cache is off until then)."""
    cache = _cache(registry)
    deadline = time.monotonic() + 10
    while not cache.enabled:
        assert time.monotonic() < deadline, "the event feed never started listening"
        await asyncio.sleep(0.05)
    return cache


async def _resolve(registry: RunningRegistry, ref: str) -> model_version_pb2.ModelVersion:
    return await registry.metadata.ResolveModelVersion(ms.ResolveModelVersionRequest(ref=ref))


async def _cached(registry: RunningRegistry, ref: str) -> model_version_pb2.ModelVersion:
    """Resolve twice and check the second answer came from the cache.

    The NOTIFY of this test's own last write comes back asynchronously and may empty the
    model's entries between the two resolves; so try again for a short while.
    """
    cache = _cache(registry)
    deadline = time.monotonic() + 2
    while True:
        first = await _resolve(registry, ref)
        hits = cache.hits
        second = await _resolve(registry, ref)
        if cache.hits == hits + 1:
            break
        assert time.monotonic() < deadline, f"{ref} was not answered from the cache"
        await asyncio.sleep(0.05)
    assert second == first
    return second


async def _not_found(registry: RunningRegistry, ref: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _resolve(registry, ref)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value.details()


async def _listening_with_production(registry: RunningRegistry) -> model_version_pb2.ModelVersion:
    """Once the cache listens: model ``m`` with one READY version, aliased ``production``."""
    await _listening(registry)
    await new_model(registry, "m")
    v1 = await push(registry, "m", {"w": b"one"})
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="production", version=v1.name)
    )
    return v1


async def test_local_writes_are_visible_to_the_very_next_resolve(
    registry: RunningRegistry,
) -> None:
    v1 = await _listening_with_production(registry)
    assert (await _cached(registry, "m@production")).name == v1.name
    assert (await _cached(registry, "m")).name == v1.name
    assert list((await _cached(registry, "m:1")).aliases) == ["production"]
    assert (await _cached(registry, v1.uid)).name == v1.name

    # A new READY version is the new "latest".
    v2 = await push(registry, "m", {"w": b"two"})
    assert (await _cached(registry, "m")).name == v2.name

    # An alias move changes the alias' answer and the `aliases` of both versions.
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="production", version=v2.name)
    )
    assert (await _cached(registry, "m@production")).name == v2.name
    assert list((await _resolve(registry, "m:1")).aliases) == []
    assert list((await _resolve(registry, "m:2")).aliases) == ["production"]

    # A label change on a READY version (no watchable event, but a different answer).
    v2.labels["stage"] = "canary"
    await registry.metadata.UpdateModelVersion(
        ms.UpdateModelVersionRequest(
            model_version=v2, update_mask=field_mask_pb2.FieldMask(paths=["labels"])
        )
    )
    for ref in ("m", "m@production", "m:2", v2.uid):
        assert dict((await _cached(registry, ref)).labels) == {"stage": "canary"}, ref

    # Deleting the alias.
    await registry.metadata.DeleteAlias(ms.DeleteAliasRequest(name="models/m/aliases/production"))
    await _not_found(registry, "m@production")
    assert list((await _cached(registry, "m:2")).aliases) == []

    # Deleting a version: it no longer resolves, and "latest" falls back to the one before.
    await registry.metadata.DeleteModelVersion(ms.DeleteModelVersionRequest(name=v2.name))
    await _not_found(registry, "m:2")
    await _not_found(registry, v2.uid)
    assert (await _cached(registry, "m")).name == v1.name

    # Deleting the model (with its versions).
    await registry.metadata.DeleteModel(ms.DeleteModelRequest(name="models/m", force=True))
    await _not_found(registry, "m")
    await _not_found(registry, "m:1")


async def _eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Poll ``check`` until it is true; return how long that took."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < within, f"{what} not visible within {within} s"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_writes_through_another_server_process_are_visible_within_a_second(
    registry: RunningRegistry,
    second_server: str,
) -> None:
    v1 = await _listening_with_production(registry)
    second = bearer(await create_token(registry.target, "second@replica"))
    async with authenticated_channel(second_server) as channel:
        other = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        for ref in ("m", "m@production", "m:1"):
            await _cached(registry, ref)

        async def answer(ref: str) -> model_version_pb2.ModelVersion:
            return await _resolve(registry, ref)

        # A new READY version, committed through the other process.
        created = await other.CreateModelVersion(ms.CreateModelVersionRequest(parent="models/m"))
        v2 = await other.CommitModelVersion(
            ms.CommitModelVersionRequest(name=created.name, files=list(v1.files))
        )

        async def latest_is_v2() -> bool:
            return (await answer("m")).name == v2.name

        await _eventually(latest_is_v2, 1.0, "a new READY version")
        await _cached(registry, "m@production")

        # An alias move.
        await other.SetAlias(
            ms.SetAliasRequest(model="models/m", alias="production", version=v2.name)
        )

        async def alias_moved() -> bool:
            return (await answer("m@production")).name == v2.name

        await _eventually(alias_moved, 1.0, "an alias move")
        await _cached(registry, "m:1")

        # A label change (UpdateModelVersion: a NOTIFY without an event row).
        v1.labels["owner"] = "someone-else"
        await other.UpdateModelVersion(
            ms.UpdateModelVersionRequest(
                model_version=v1, update_mask=field_mask_pb2.FieldMask(paths=["labels"])
            )
        )

        async def relabelled() -> bool:
            return dict((await answer("m:1")).labels) == {"owner": "someone-else"}

        await _eventually(relabelled, 1.0, "a label change")
        await _cached(registry, "m@production")

        # Deleting the alias, then the version behind "latest".
        await other.DeleteAlias(
            ms.DeleteAliasRequest(name="models/m/aliases/production"),
            metadata=second,
        )

        async def alias_gone() -> bool:
            try:
                await answer("m@production")
            except grpc.aio.AioRpcError as exc:
                return exc.code() == grpc.StatusCode.NOT_FOUND
            return False

        await _eventually(alias_gone, 1.0, "an alias deletion")
        await _cached(registry, "m")
        await other.DeleteModelVersion(ms.DeleteModelVersionRequest(name=v2.name))

        async def latest_is_v1() -> bool:
            return (await answer("m")).name == v1.name

        await _eventually(latest_is_v1, 1.0, "a version deletion")

    # That server runs without a trace exporter (no spans recorded, no OpenTelemetry server
    # interceptor on unary calls), yet its audit rows still carry a trace id.
    audit = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(model="models/m", actor="second@replica")
    )
    assert [e.method for e in audit.audit_events] == ["DeleteAlias"]
    assert len(audit.audit_events[0].trace_id) == 32, audit.audit_events[0].trace_id


async def test_a_lost_notification_connection_switches_the_cache_off_until_it_is_back(
    registry: RunningRegistry, database_url: str
) -> None:
    cache = await _listening(registry)
    await new_model(registry, "m")
    await push(registry, "m", {"w": b"one"})
    await _cached(registry, "m")
    conn = await asyncpg.connect(database_url)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
        )
        assert killed == 1
        deadline = time.monotonic() + 5
        while cache.enabled:
            assert time.monotonic() < deadline, "the cache stayed on without a listener"
            await asyncio.sleep(0.01)
        assert len(cache) == 0
        # While nobody listens, a change made behind this server's back (straight in the
        # database, as another replica would) must not be hidden by a cached answer.
        await _resolve(registry, "m")
        await conn.execute(
            "UPDATE metadata.model_versions SET labels = '{\"changed\": \"yes\"}', etag = 'x' "
            "WHERE model_id = 'm' AND version = 1"
        )
        assert dict((await _resolve(registry, "m")).labels) == {"changed": "yes"}
    finally:
        await conn.close()
    await _listening(registry)  # the feed reconnects by itself...
    await _cached(registry, "m")  # ...and caching resumes

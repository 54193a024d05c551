"""The health monitor: NOT_SERVING while a dependency fails its probe, SERVING when it is back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from modelregistry_server.common.rpc.health import NOT_SERVING, SERVING, Dependency, HealthMonitor

pytestmark = pytest.mark.timeout(10)


class _Context:
    """What ``HealthServicer.Check`` needs of a call context."""

    async def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"unknown service: {details}")


async def _status(health: HealthServicer, service: str) -> int:
    reply = await health.Check(health_pb2.HealthCheckRequest(service=service), _Context())
    return int(reply.status)


class _Switch:
    """A probe that fails while ``down`` is set, or hangs while ``hang`` is set."""

    def __init__(self) -> None:
        self.down = False
        self.hang = False
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.hang:
            await asyncio.sleep(3600)
        if self.down:
            raise ConnectionRefusedError("refused")


async def test_a_down_dependency_turns_only_the_services_needing_it_not_serving() -> None:
    health = HealthServicer()
    database, store = _Switch(), _Switch()
    db, objects = Dependency("database", database), Dependency("object store", store)
    monitor = HealthMonitor(health, {"meta": [db], "art": [db, objects]}, interval_s=0.05)
    await monitor.set_all_serving()
    assert [await _status(health, s) for s in ("meta", "art", "")] == [SERVING] * 3

    store.down = True
    await monitor.check_once()
    assert await _status(health, "meta") == SERVING
    assert await _status(health, "art") == NOT_SERVING
    assert await _status(health, "") == NOT_SERVING

    store.down, database.down = False, True
    await monitor.check_once()
    assert [await _status(health, s) for s in ("meta", "art", "")] == [NOT_SERVING] * 3

    database.down = False
    await monitor.check_once()
    assert [await _status(health, s) for s in ("meta", "art", "")] == [SERVING] * 3


async def test_a_hanging_probe_counts_as_down_within_its_timeout() -> None:
    health = HealthServicer()
    probe = _Switch()
    monitor = HealthMonitor(health, {"meta": [Dependency("database", probe)]}, interval_s=0.05)
    await monitor.set_all_serving()
    probe.hang = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    await monitor.check_once()
    assert await _status(health, "meta") == NOT_SERVING
    assert loop.time() - started < 1.5  # the probe timeout is max(interval, 1 s)


async def test_the_background_task_probes_until_stopped() -> None:
    health = HealthServicer()
    probe = _Switch()
    monitor = HealthMonitor(health, {"meta": [Dependency("database", probe)]}, interval_s=0.02)
    await monitor.set_all_serving()
    monitor.start()
    probe.down = True
    for _ in range(100):
        if await _status(health, "meta") == NOT_SERVING:
            break
        await asyncio.sleep(0.02)
    assert await _status(health, "meta") == NOT_SERVING
    await monitor.stop()
    calls = probe.calls
    await asyncio.sleep(0.1)
    assert probe.calls == calls

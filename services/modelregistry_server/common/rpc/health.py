"""Health that tells the truth: each service is ``SERVING`` only while what it needs answers.

Load balancers and Kubernetes read ``grpc.health.v1`` to decide where calls go. A service whose
database or object store is unreachable cannot serve, so the monitor probes each dependency in
the background (never per call: a health check must stay cheap under a flood of them) and
turns the services that need a failed dependency ``NOT_SERVING`` until it answers again. The
overall status (service ``""``) is ``NOT_SERVING`` while any dependency is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

_log = logging.getLogger(__name__)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

# A probe returns when the dependency answers and raises when it does not.
Probe = Callable[[], Awaitable[None]]


@dataclass
class Dependency:
    """Something services need (``database``, ``object store``) and how to probe it."""

    name: str
    probe: Probe
    up: bool = True
    # When it was last seen down, for the log line that says how long the outage lasted.
    down_since: float = field(default=0.0, repr=False)


class HealthMonitor:
    """Probes dependencies every ``interval_s`` and sets each service's health from them.

    Args:
        health: The server's health servicer.
        needs: For each served service, the dependencies it cannot serve without.
        interval_s: Pause between probe rounds. A probe that takes longer than this counts as
            failed, so a dependency that hangs is reported within about twice the interval.
    """

    def __init__(
        self,
        health: HealthServicer,
        needs: Mapping[str, Sequence[Dependency]],
        interval_s: float,
    ) -> None:
        self._health = health
        self._needs = needs
        self._interval_s = interval_s
        self._dependencies = list({id(d): d for deps in needs.values() for d in deps}.values())
        self._task: asyncio.Task[None] | None = None

    async def set_all_serving(self) -> None:
        """Report every service (and the server) ``SERVING``: the state right after start."""
        for service in [*self._needs, ""]:
            await self._health.set(service, SERVING)

    def start(self) -> None:
        """Probe in the background until :meth:`stop`."""
        if self._task is None and self._interval_s > 0:
            self._task = asyncio.create_task(self._run(), name="health-monitor")

    async def stop(self) -> None:
        """Stop probing (before graceful shutdown, which sets ``NOT_SERVING`` for good)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check_once(self) -> None:
        """One round: probe every dependency, then publish the statuses that changed."""
        changed = False
        for dependency in self._dependencies:
            up = await self._probe(dependency)
            if up != dependency.up:
                changed = True
                dependency.up = up
                if up:
                    _log.warning(
                        "the %s answers again after %.1fs; serving",
                        dependency.name,
                        time.monotonic() - dependency.down_since,
                    )
                else:
                    dependency.down_since = time.monotonic()
        if changed:
            await self._publish()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in a probe must not end health reporting
                _log.exception("health check round failed")

    async def _probe(self, dependency: Dependency) -> bool:
        try:
            await asyncio.wait_for(dependency.probe(), timeout=max(self._interval_s, 1.0))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure to answer means down
            if dependency.up:
                _log.error(
                    "the %s is unreachable (%s); reporting NOT_SERVING for %s",
                    dependency.name,
                    str(exc) or type(exc).__name__,
                    ", ".join(self._services_needing(dependency)),
                )
            return False
        return True

    def _services_needing(self, dependency: Dependency) -> list[str]:
        return [s for s, deps in self._needs.items() if any(d is dependency for d in deps)]

    async def _publish(self) -> None:
        all_up = True
        for service, dependencies in self._needs.items():
            up = all(d.up for d in dependencies)
            all_up = all_up and up
            await self._health.set(service, SERVING if up else NOT_SERVING)
        await self._health.set("", SERVING if all_up else NOT_SERVING)

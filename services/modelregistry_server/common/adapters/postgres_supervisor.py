"""Keeps the embedded PostgreSQL running: a postmaster that dies is restarted, with backoff.

Without it, a registry on the embedded default whose database was killed (the OOM killer, an
operator's mistake) would answer ``DATABASE_UNAVAILABLE`` forever while looking alive. The
supervisor notices the exit within a second, restarts PostgreSQL on the same port and data
directory (the pool reconnects by itself), and logs both. If PostgreSQL cannot be brought
back after the last attempt, it calls ``give_up`` and the server exits non-zero, so that
whatever runs it (systemd, Kubernetes) sees a failed process instead of one serving errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from modelregistry_server.common.adapters.embedded_postgres import EmbeddedPostgresError

_log = logging.getLogger(__name__)

# Pauses before each restart attempt. A postmaster killed with SIGKILL leaves its backends to
# notice and exit; until they have, a new one refuses to start (shared memory still in use).
RESTART_BACKOFF_S: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
CHECK_INTERVAL_S = 0.5
READY_TIMEOUT_S = 60.0


class Supervised(Protocol):
    """What the supervisor needs of ``EmbeddedPostgres``."""

    def exit_code(self) -> int | None:
        """The exit code once the server has exited, else None."""
        ...

    def spawn(self) -> None:
        """Start the server without waiting."""
        ...

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until it accepts connections; raise ``EmbeddedPostgresError`` if it does not."""
        ...

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of its log."""
        ...


class PostgresSupervisor:
    """Watches ``postgres`` and restarts it when it exits; ``give_up(why)`` when it cannot."""

    def __init__(
        self,
        postgres: Supervised,
        give_up: Callable[[str], None],
        *,
        check_interval_s: float = CHECK_INTERVAL_S,
        backoff_s: Sequence[float] = RESTART_BACKOFF_S,
    ) -> None:
        self._postgres = postgres
        self._give_up = give_up
        self._check_interval_s = check_interval_s
        self._backoff_s = backoff_s
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0

    def start(self) -> None:
        """Watch in the background until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="postgres-supervisor")

    async def stop(self) -> None:
        """Stop watching (before the server stops PostgreSQL itself)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval_s)
            code = self._postgres.exit_code()
            if code is None:
                continue
            _log.error(
                "the embedded PostgreSQL exited (code %s); restarting it. Its log:\n%s",
                code,
                self._postgres.log_tail(5),
            )
            if not await self._restart():
                why = (
                    f"the embedded PostgreSQL exited (code {code}) and could not be restarted "
                    f"after {len(self._backoff_s)} attempts; its log:\n{self._postgres.log_tail()}"
                )
                _log.critical("%s", why)
                self._give_up(why)
                return

    async def _restart(self) -> bool:
        for attempt, pause in enumerate(self._backoff_s, start=1):
            await asyncio.sleep(pause)
            try:
                # Spawned on the event loop's thread, which lives as long as the server: the
                # postmaster's parent-death signal follows the thread that started it.
                self._postgres.spawn()
                await asyncio.to_thread(self._postgres.wait_ready, READY_TIMEOUT_S)
            except (EmbeddedPostgresError, OSError) as exc:
                _log.warning(
                    "restart attempt %d of the embedded PostgreSQL failed: %s", attempt, exc
                )
                continue
            self.restarts += 1
            _log.warning("the embedded PostgreSQL is running again (restart %d)", self.restarts)
            return True
        return False

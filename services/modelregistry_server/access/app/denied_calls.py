"""Refused calls: every one is counted, and recorded in the audit log at a bounded rate.

A caller that hammers a method it may not call must not be able to fill the audit log (or
slow the server with one insert per refusal), yet an admin must see that it tried. So a
refusal is written at most once per ``PER_KEY_INTERVAL_S`` for each (principal, method,
resource), and at most ``PER_WINDOW`` times per ``WINDOW_S`` on this server; the count keeps
every refusal. The write runs in the background: the caller's ``PERMISSION_DENIED`` does not
wait for it, and a database that cannot take it only costs a log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from modelregistry_server.access.app.ports import DeniedCallLog
from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.errors import PermissionDenied
from modelregistry_server.common.kernel.identity import Principal

PER_KEY_INTERVAL_S = 60.0
WINDOW_S = 60.0
PER_WINDOW = 60
_MAX_KEYS = 10_000  # distinct (principal, method, resource) remembered; older ones are dropped
_log = logging.getLogger(__name__)


class DeniedCalls:
    """Counts refusals and hands the ones the rate allows to ``log``."""

    def __init__(
        self, log: DeniedCallLog | None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = log
        self._monotonic = monotonic
        self._last: dict[tuple[str, str, str], float] = {}
        self._window_start = -WINDOW_S
        self._window_count = 0
        self._writes: set[asyncio.Task[None]] = set()
        self.count = 0  # every refusal so far, recorded or not (metrics and tests read it)
        self.recorded = 0  # refusals handed to the audit log

    def note(self, principal: Principal, method: str, error: PermissionDenied) -> None:
        """Count one refusal of ``method`` (``/package.Service/Method``); record it if the
        rate allows."""
        self.count += 1
        resource = error.metadata.get("resource", "")
        if self._log is None or not self._admit((principal.name, method, resource)):
            return
        self.recorded += 1
        model = resource.removeprefix("models/").split("/", 1)[0]
        entry = AuditEntry(
            actor=principal.name,
            method=method.rsplit("/", 1)[-1],
            resource=resource,
            model_id=model if resource.startswith("models/") else None,
            before=None,
            after=None,
            request_id=None,
            denied_permission=error.metadata.get("permission", ""),
        )
        task = asyncio.get_running_loop().create_task(self._write(entry))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def flush(self) -> None:
        """Wait for the records being written (on shutdown, before the pool closes)."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def _admit(self, key: tuple[str, str, str]) -> bool:
        now = self._monotonic()
        last = self._last.get(key)
        if last is not None and now - last < PER_KEY_INTERVAL_S:
            return False
        if now - self._window_start >= WINDOW_S:
            self._window_start, self._window_count = now, 0
        if self._window_count >= PER_WINDOW:
            return False
        self._window_count += 1
        if len(self._last) >= _MAX_KEYS:
            self._last = {k: t for k, t in self._last.items() if now - t < PER_KEY_INTERVAL_S}
            if len(self._last) >= _MAX_KEYS:  # all recent: forget them rather than grow
                self._last.clear()
        self._last[key] = now
        return True

    async def _write(self, entry: AuditEntry) -> None:
        assert self._log is not None
        try:
            await self._log.record(entry)
        except Exception:  # the refusal stands; only its record is lost
            _log.warning(
                "could not record a refused %s call in the audit log", entry.method, exc_info=True
            )

"""Model files checked after their commit: the background scan of each new READY version.

``CommitModelVersion`` answers first, then calls ``ModelScanner.schedule``: a queue feeds a
few workers (2 by default), each scanning one version at a time. A file is scanned by the
pure library (``domain/scanning``) in a thread (``asyncio.to_thread``), reading the blob
through ``RangeFile``, whose ranged reads go back to this event loop and on to the
ArtifactService (``BlobReader``). The verdict is stored in its own transaction, only while
the version is READY and not scanned yet. At start-up every READY version without a verdict
is queued, so a scan lost to a crash or a restart is done again. A scan whose reads failed
(the artifact service is down) stores nothing: the next start-up retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import BinaryIO, cast

from modelregistry_server.metadata.app.range_file import RangeFile
from modelregistry_server.metadata.app.scan_ports import BlobReader, ScanStore
from modelregistry_server.metadata.domain.scanning import (
    DEFAULT_LIMITS,
    DEFAULT_POLICY,
    FileVerdict,
    FindingKind,
    ImportPolicy,
    ScanLimits,
    Verdict,
    scan_file,
    version_verdict,
)
from modelregistry_server.metadata.domain.version import ModelVersion

_log = logging.getLogger(__name__)

# What is kept of a scan, so any version with its results stays under the gRPC message
# budget (domain/version.py): at most 100 files listed (worst verdicts first), 10 findings
# each, 200 characters a detail: about 0.3 MiB with 1 KiB paths.
MAX_FILE_RESULTS = 100
MAX_FINDINGS_PER_FILE = 10
MAX_DETAIL_CHARS = 200
READ_TIMEOUT_S = 120.0
STARTUP_BATCH = 500
_ORDER = {Verdict.UNSAFE: 0, Verdict.ERROR: 1, Verdict.SAFE: 2, Verdict.UNSCANNED: 3}


def cap_results(results: list[FileVerdict]) -> list[FileVerdict]:
    """The per-file results as stored: worst first, capped in files, findings and detail."""
    ordered = sorted(results, key=lambda r: (_ORDER[r.verdict], r.path))[:MAX_FILE_RESULTS]
    return [
        replace(
            r,
            findings=tuple(
                replace(f, detail=f.detail[:MAX_DETAIL_CHARS])
                for f in r.findings[:MAX_FINDINGS_PER_FILE]
            ),
        )
        for r in ordered
    ]


class ModelScanner:
    """Scans READY versions in the background with bounded concurrency.

    Args:
        store: where verdicts are kept.
        reader: reads blob ranges.
        concurrency: versions scanned at a time.
        on_scanned: called with the model id after a verdict is stored (drops this process's
            resolve cache of the model).
    """

    def __init__(
        self,
        store: ScanStore,
        reader: BlobReader,
        *,
        concurrency: int = 2,
        on_scanned: Callable[[str], None] | None = None,
        policy: ImportPolicy = DEFAULT_POLICY,
        limits: ScanLimits = DEFAULT_LIMITS,
    ) -> None:
        self._store = store
        self._reader = reader
        self._concurrency = concurrency
        self._on_scanned = on_scanned
        self._policy = policy
        self._limits = limits
        self._queue: asyncio.Queue[ModelVersion] = asyncio.Queue()
        self._queued: set[tuple[str, int]] = set()  # queued or being scanned
        self._tasks: list[asyncio.Task[None]] = []
        # Set by stop(): a scan thread still running (cancelling its task does not stop it) fails
        # its next read at once instead of waiting for an event loop that is shutting down.
        self._stopping = threading.Event()
        self.scanned = 0  # verdicts stored by this process (tests and benchmarks read it)

    def start(self) -> None:
        """Start the workers and the start-up pass over versions not scanned yet."""
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._concurrency)]
        self._tasks.append(asyncio.create_task(self._scan_unscanned()))

    async def stop(self) -> None:
        """Cancel the workers (an interrupted scan is redone at the next start-up)."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    def schedule(self, version: ModelVersion) -> None:
        """Queue ``version`` for a scan unless it is queued already; never waits."""
        key = (version.model_id, version.version)
        if key in self._queued or version.scan_verdict:
            return
        self._queued.add(key)
        self._queue.put_nowait(version)

    async def _scan_unscanned(self) -> None:
        """Queue READY versions without a verdict, batch by batch, until none is new."""
        tried: set[tuple[str, int]] = set()
        while True:
            try:
                versions = await self._store.unscanned(STARTUP_BATCH)
            except Exception:
                _log.exception("listing versions not scanned yet failed")
                return
            new = [v for v in versions if (v.model_id, v.version) not in tried]
            if not new:
                return
            for version in new:
                tried.add((version.model_id, version.version))
                self.schedule(version)
            await self._queue.join()

    async def _work(self) -> None:
        while True:
            version = await self._queue.get()
            try:
                await self.scan(version)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("scanning %s failed", version.name)
            finally:
                self._queued.discard((version.model_id, version.version))
                self._queue.task_done()

    async def scan(self, version: ModelVersion) -> Verdict | None:
        """Scan every file of ``version`` and store the verdict; None if nothing was stored."""
        loop = asyncio.get_running_loop()
        results = []
        for entry in version.files:
            opener = self._opener(loop, version.name, entry.sha256, entry.size)
            scanned = await asyncio.to_thread(
                scan_file, entry.path, entry.size, opener, policy=self._policy, limits=self._limits
            )
            results.append(scanned)
        if any(f.kind is FindingKind.READ_FAILED for r in results for f in r.findings):
            _log.warning("scan of %s could not read its files; retried at start-up", version.name)
            return None
        overall = version_verdict(results)
        stored = await self._store.record(
            version.model_id, version.version, overall, cap_results(results)
        )
        if stored:
            self.scanned += 1
            if self._on_scanned is not None:
                self._on_scanned(version.model_id)
        return overall if stored else None

    def _opener(
        self, loop: asyncio.AbstractEventLoop, name: str, sha256: str, size: int
    ) -> Callable[[], BinaryIO]:
        reader, stopping = self._reader, self._stopping

        def fetch(offset: int, length: int) -> bytes:
            # On the scan's thread: the read runs on the event loop, this thread waits (in short
            # steps, so that a stop ends the wait).
            if stopping.is_set():
                raise OSError("the scanner is stopping")
            future = asyncio.run_coroutine_threadsafe(
                reader.read(name, sha256, offset, length), loop
            )
            waited = 0.0
            try:
                while True:
                    try:
                        return future.result(0.25)
                    except TimeoutError:
                        waited += 0.25
                        if stopping.is_set() or waited >= READ_TIMEOUT_S:
                            raise
            except Exception as exc:
                future.cancel()
                raise OSError(f"reading blob {sha256} at {offset} failed: {exc}") from exc

        return lambda: cast(BinaryIO, RangeFile(fetch, size))

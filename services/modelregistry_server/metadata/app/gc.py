"""Garbage collection: expire abandoned PENDING versions, delete blobs nothing references."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.request_ids import validate_request_id
from modelregistry_server.metadata.app.ports import (
    BlobChecker,
    UnitOfWorkFactory,
    VersionRepository,
)
from modelregistry_server.metadata.domain import lifecycle
from modelregistry_server.metadata.domain.errors import InvalidArgument
from modelregistry_server.metadata.domain.version import VersionState

DEFAULT_GRACE = timedelta(hours=48)
DEFAULT_PENDING_TTL = timedelta(hours=24)
MIN_PENDING_TTL = timedelta(hours=1)
MAX_LISTED = 10_000
# Digests named in a run's audit event (deleted_blob_count has the total).
MAX_AUDITED = 1000


@dataclass(frozen=True)
class GcResult:
    """What one run deleted (or would delete, in a dry run)."""

    deleted_blobs: list[str]
    deleted_blob_count: int
    deleted_size_bytes: int
    expired_version_count: int
    dry_run: bool


MAX_PERIOD = timedelta(days=3650)


class GarbageCollector:
    """Runs garbage collection through the ArtifactService.

    A blob is deleted only if no non-deleted version references it and it is older than the
    grace period, which is at least the PENDING lifetime, so a version still being pushed
    never loses a blob it uploaded. The reference is checked again under the digest's lock
    right before deleting, the lock a commit holds while it verifies its blobs: a commit that
    races GC either lands first (and GC keeps the blob) or finds the blob gone and fails.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        versions: VersionRepository,
        artifacts: BlobChecker,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._versions = versions
        self._artifacts = artifacts
        self._clock = clock
        # Totals of the runs that deleted (not dry runs) since start-up, for the metrics.
        self.runs = 0
        self.deleted_blobs = 0
        self.freed_bytes = 0

    async def run(
        self,
        dry_run: bool,
        grace: timedelta | None,
        pending_ttl: timedelta | None,
        actor: str,
        request_id: str = "",
        only: Sequence[str] = (),
    ) -> GcResult:
        """Expire stale PENDING versions, then delete unreferenced blobs past the grace period.

        With ``only`` (blob names), just those blobs are collected, whatever their age, and
        nothing is expired. ``request_id`` is checked like every other one and goes into the
        audit event, but no replay record is kept: a retry runs again, which is safe because a
        run only does what is still to do.
        """
        request = validate_request_id(request_id)
        targets = _blob_names(only)
        ttl = pending_ttl or DEFAULT_PENDING_TTL
        grace_period = grace or DEFAULT_GRACE
        if ttl < MIN_PENDING_TTL:
            raise InvalidArgument("pending_version_ttl", "must be at least 1 hour")
        # Beyond this, "now minus the period" would fall before the calendar's year 1.
        for name, period in (("pending_version_ttl", ttl), ("grace_period", grace_period)):
            if period > MAX_PERIOD:
                raise InvalidArgument(name, f"must be at most {MAX_PERIOD.days} days")
        if grace_period < ttl:
            raise InvalidArgument(
                "grace_period",
                f"must not be shorter than pending_version_ttl ({ttl}), or blobs of versions "
                "still being pushed could be deleted",
            )
        now = self._clock()
        candidates: list[tuple[str, int]]
        if targets:
            expired = 0
            sizes = [(sha, await self._artifacts.size_of(sha)) for sha in targets]
            candidates = [(sha, size) for sha, size in sizes if size is not None]
        else:
            expired = await self._expire_pending(now - ttl, dry_run, actor)
            candidates = await self._artifacts.list_blobs(now - grace_period)
        referenced = await self._versions.referenced([sha for sha, _ in candidates])
        deleted: list[str] = []
        deleted_bytes = 0
        for sha256, size in candidates:
            if sha256 in referenced:
                continue
            if dry_run or await self._delete_if_unreferenced(sha256):
                deleted.append(sha256)
                deleted_bytes += size
        result = GcResult(deleted[:MAX_LISTED], len(deleted), deleted_bytes, expired, dry_run)
        if not dry_run:
            summary = {
                "deleted_blob_count": result.deleted_blob_count,
                "deleted_size_bytes": deleted_bytes,
                "expired_version_count": expired,
                # What went, for the tamper-evident record; bounded like the response.
                "deleted_blobs": deleted[:MAX_AUDITED],
            }
            async with self._uow() as uow:
                await uow.audit(
                    AuditEntry(actor, "RunGarbageCollection", "blobs", "", None, summary, request)
                )
            self.runs += 1
            self.deleted_blobs += result.deleted_blob_count
            self.freed_bytes += deleted_bytes
        return result

    async def _expire_pending(self, created_before: datetime, dry_run: bool, actor: str) -> int:
        """Move PENDING versions created before the time to FAILED; return how many."""
        async with self._uow() as uow:
            stale = [v for v in await uow.versions.stale_pending(created_before)]
            if dry_run:
                return len(stale)
            for version in stale:
                if not lifecycle.can_expire(version):
                    continue
                await uow.versions.mark_failed(version.model_id, version.version)
                await uow.audit(
                    AuditEntry(
                        actor, "RunGarbageCollection", version.name, version.model_id,
                        {"state": VersionState.PENDING.value},
                        {"state": VersionState.FAILED.value, "reason": "pending too long"}, None,
                    )
                )  # fmt: skip
            return len(stale)

    async def _delete_if_unreferenced(self, sha256: str) -> bool:
        """Delete a blob unless a live version references it.

        The reference check and the deletion happen under the digest's exclusive lock, which
        a commit takes shared while it verifies its blobs, so the two never interleave.
        """
        async with self._uow() as uow:
            await uow.blobs.lock_exclusive(sha256)
            if await uow.blobs.is_referenced(sha256):
                return False
            await self._artifacts.delete_blob(sha256)
            return True


MAX_TARGETS = 1000
_BLOB_NAME = re.compile(r"blobs/([0-9a-f]{64})")


def _blob_names(names: Sequence[str]) -> list[str]:
    """The digests of ``blobs/<sha256>`` names, in order, without repeats."""
    if len(names) > MAX_TARGETS:
        raise InvalidArgument("blobs", f"at most {MAX_TARGETS} per call")
    digests: list[str] = []
    for index, name in enumerate(names):
        match = _BLOB_NAME.fullmatch(name)
        if match is None:
            raise InvalidArgument(f"blobs[{index}]", "must be blobs/<64 lowercase hex digits>")
        if match.group(1) not in digests:
            digests.append(match.group(1))
    return digests

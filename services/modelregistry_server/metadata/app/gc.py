"""Garbage collection: expire abandoned PENDING versions, delete blobs nothing references."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelregistry_server.metadata.app.models import validate_request_id
from modelregistry_server.metadata.app.ports import BlobChecker, VersionRepository
from modelregistry_server.metadata.domain.errors import InvalidArgument

DEFAULT_GRACE = timedelta(hours=48)
DEFAULT_PENDING_TTL = timedelta(hours=24)
MIN_PENDING_TTL = timedelta(hours=1)
MAX_LISTED = 10_000


@dataclass(frozen=True)
class GcResult:
    """What one run deleted (or would delete, in a dry run)."""

    deleted_blobs: list[str]
    deleted_blob_count: int
    deleted_size_bytes: int
    expired_version_count: int
    dry_run: bool


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
        versions: VersionRepository,
        artifacts: BlobChecker,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._versions = versions
        self._artifacts = artifacts
        self._clock = clock

    async def run(
        self,
        dry_run: bool,
        grace: timedelta | None,
        pending_ttl: timedelta | None,
        actor: str,
        request_id: str = "",
    ) -> GcResult:
        """Expire stale PENDING versions, then delete unreferenced blobs past the grace period.

        ``request_id`` is checked like every other one and goes into the audit event, but no
        replay record is kept: a retry runs again, which is safe because a run only does what
        is still to do.
        """
        request = validate_request_id(request_id)
        ttl = pending_ttl or DEFAULT_PENDING_TTL
        grace_period = grace or DEFAULT_GRACE
        if ttl < MIN_PENDING_TTL:
            raise InvalidArgument("pending_version_ttl", "must be at least 1 hour")
        if grace_period < ttl:
            raise InvalidArgument(
                "grace_period",
                f"must not be shorter than pending_version_ttl ({ttl}), or blobs of versions "
                "still being pushed could be deleted",
            )
        now = self._clock()
        expired = await self._versions.expire_pending(now - ttl, dry_run, actor)
        candidates = await self._artifacts.list_blobs(now - grace_period)
        referenced = await self._versions.referenced([sha for sha, _ in candidates])
        deleted: list[str] = []
        deleted_bytes = 0
        for sha256, size in candidates:
            if sha256 in referenced:
                continue
            if dry_run or await self._versions.delete_blob_if_unreferenced(
                sha256, self._artifacts.delete_blob
            ):
                deleted.append(sha256)
                deleted_bytes += size
        result = GcResult(deleted[:MAX_LISTED], len(deleted), deleted_bytes, expired, dry_run)
        if not dry_run:
            await self._versions.record_gc(
                actor,
                {
                    "deleted_blob_count": result.deleted_blob_count,
                    "deleted_size_bytes": deleted_bytes,
                    "expired_version_count": expired,
                },
                request,
            )
        return result

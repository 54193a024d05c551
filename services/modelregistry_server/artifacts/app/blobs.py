"""Reading and inspecting stored blobs: Read, FindMissingBlobs, GetBlob, download URLs, listing."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelregistry_server.artifacts.app.ports import BlobIndex, BlobStore, ManifestLookup
from modelregistry_server.artifacts.domain.blob import (
    BlobChunk,
    BlobInfo,
    parse_blob_name,
    validate_sha256,
)
from modelregistry_server.artifacts.domain.errors import (
    BlobNotFound,
    FailedPrecondition,
    InvalidArgument,
)
from modelregistry_server.common.kernel.paging import Page, Paginator
from modelregistry_server.common.kernel.request_ids import validate_request_id

MAX_FIND_MISSING = 10_000
# A presigned URL is a bearer capability: anyone holding it can download the blob until it
# expires, with no further check. Hence a short default and a cap well below S3's 7 days.
DEFAULT_URL_TTL = timedelta(minutes=15)
MAX_DOWNLOAD_URL_TTL = timedelta(hours=1)


@dataclass(frozen=True)
class BlobRef:
    """A digest with the size the caller expects."""

    sha256: str
    size: int


class BlobService:
    """Read-side blob use cases."""

    def __init__(
        self,
        index: BlobIndex,
        store: BlobStore,
        paginator: Paginator,
        url_ttl: timedelta = DEFAULT_URL_TTL,
    ) -> None:
        """``url_ttl`` is the lifetime of a download URL when the caller asks for none."""
        if not timedelta(seconds=1) <= url_ttl <= MAX_DOWNLOAD_URL_TTL:
            raise ValueError(f"url_ttl must be from 1 second to 1 hour, not {url_ttl}")
        self._index = index
        self._store = store
        self._paginator = paginator
        self._url_ttl = url_ttl

    def read(self, sha256: str, offset: int, limit: int) -> AsyncGenerator[BlobChunk, None]:
        """Stream a byte range of a blob (``limit`` 0 = to the end)."""
        validate_sha256(sha256)
        if offset < 0:
            raise InvalidArgument("read_offset", "must not be negative")
        if limit < 0:
            raise InvalidArgument("read_limit", "must not be negative (0 means to the end)")
        return self._store.read(sha256, offset, limit)

    async def find_missing(self, refs: Sequence[BlobRef]) -> list[BlobRef]:
        """Return the refs the store does not hold with exactly that size."""
        if len(refs) > MAX_FIND_MISSING:
            raise InvalidArgument(
                "blobs",
                f"at most {MAX_FIND_MISSING} digests per call, got {len(refs)}",
                reason="TOO_MANY_BLOBS",
            )
        for i, ref in enumerate(refs):
            validate_sha256(ref.sha256, f"blobs[{i}].sha256")
            if ref.size < 0:
                raise InvalidArgument(f"blobs[{i}].size_bytes", "must not be negative")
        present = await self._index.find_present(sorted({r.sha256 for r in refs}))
        return [r for r in refs if present.get(r.sha256) != r.size]

    async def get(self, name: str) -> BlobInfo:
        """Return a stored blob's size and creation time."""
        sha256 = parse_blob_name(name)
        blob = await self._index.get(sha256)
        if blob is None:
            raise BlobNotFound(sha256)
        return blob

    async def download_url(self, name: str, expires_in: timedelta | None) -> tuple[str, timedelta]:
        """Return a presigned URL for the blob and how long it is valid (at most 1 hour)."""
        sha256 = parse_blob_name(name)
        ttl = expires_in or self._url_ttl
        if not timedelta(seconds=1) <= ttl <= MAX_DOWNLOAD_URL_TTL:
            default = int(self._url_ttl.total_seconds())
            raise InvalidArgument(
                "expires_in", f"must be from 1 second to 1 hour (default {default} seconds)"
            )
        return await self._store.presigned_download_url(sha256, ttl), ttl

    async def list(
        self, page_size: int, page_token: str, created_before: datetime | None
    ) -> Page[BlobInfo]:
        """Return one page of blobs in digest order."""
        page = self._paginator.open(
            "ListBlobs", page_size, page_token, created_before.isoformat() if created_before else ""
        )
        rows, cursor = await self._index.list(page.after, page.limit, created_before)
        return self._paginator.page(page, rows, cursor)

    async def delete(self, name: str, request_id: str = "") -> None:
        """Delete a blob outright (the metadata service's garbage collection, under its lock):
        unindex it first so nobody is told it exists while it goes.

        ``request_id`` is checked like every other one, but no replay record is kept: deleting
        is idempotent, and a retry after a successful delete gets ``BLOB_NOT_FOUND`` (the proto
        says so).
        """
        sha256 = parse_blob_name(name)
        validate_request_id(request_id)
        await self._require_stored(sha256)
        await self._index.remove(sha256)
        await self._store.delete(sha256)

    async def delete_if_unreferenced(
        self, name: str, request_id: str, actor: str, references: ManifestLookup
    ) -> None:
        """An operator's delete: only a blob no live version references goes.

        The metadata service decides, under the per-digest lock commits take, and calls back
        ``delete`` if the blob may go.

        Raises:
            FailedPrecondition: ``BLOB_IN_USE``.
        """
        sha256 = parse_blob_name(name)
        validate_request_id(request_id)
        await self._require_stored(sha256)
        if not await references.collect_blob(sha256, actor):
            raise FailedPrecondition(
                f"blobs/{sha256} is part of a version that is not deleted; delete those "
                "versions first, and garbage collection frees it",
                reason="BLOB_IN_USE",
            )

    async def _require_stored(self, sha256: str) -> None:
        if await self._index.get(sha256) is None and await self._store.stat(sha256) is None:
            raise BlobNotFound(sha256)

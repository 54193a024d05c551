"""The ports the artifact use cases depend on."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from modelregistry_server.artifacts.domain.blob import (
    BlobChunk,
    BlobInfo,
    DirectUpload,
    IncompleteUpload,
    PartData,
    UploadedPart,
)
from modelregistry_server.artifacts.domain.upload import UploadQuota, UploadSession
from modelregistry_server.common.kernel.paging import Cursor


class BlobStore(Protocol):
    """Content-addressed byte storage: MinIO/S3 (``S3BlobStore``) or a folder
    (``LocalDirBlobStore``). Keys come from ``blob_key(sha256)`` only.

    Uploads are multipart: ``create_upload`` opens one, ``upload_part`` stores parts durably
    (re-sending a part number replaces it), ``complete_upload`` makes the blob visible under its
    key in one step, ``abort_upload`` discards everything. Verification of the digest is the
    caller's job and happens *before* ``complete_upload``; the store never exposes a blob early.
    """

    async def stat(self, sha256: str, *, unindexed: bool = False) -> BlobInfo | None:
        """Return the blob's size and creation time, or None if it is not stored.

        ``unindexed``: the caller is about to index an object no index row names; a store
        answers None for one that carries anything the registry never writes (headers a
        direct upload's PUT added without their being signed).
        """
        ...

    async def check_space(self, nbytes: int) -> None:
        """Refuse to take ``nbytes`` more if that would leave the store short of space.

        Raises:
            ResourceExhausted: ``STORAGE_FULL`` (stores without a size limit never raise).
        """
        ...

    async def check(self) -> None:
        """Return once the store answers (health probes): the bucket or folder is there.

        Raises:
            StoreUnavailable: It does not.
        """
        ...

    async def create_upload(self, sha256: str) -> str:
        """Open a multipart upload for ``sha256``; return its durable upload id."""
        ...

    async def upload_part(
        self, sha256: str, upload_id: str, part_number: int, offset: int, data: PartData
    ) -> UploadedPart:
        """Store part ``part_number`` (1-based) holding bytes ``[offset, offset+len(data))``;
        ``data`` may be a view of a buffer the caller reuses once this returns.

        Every part but the last is at least ``MIN_PART_SIZE`` bytes. Returns when the part is
        durable.
        """
        ...

    async def complete_upload(
        self, sha256: str, upload_id: str, parts: Sequence[UploadedPart], size: int
    ) -> None:
        """Assemble the parts (in part-number order) into the blob and make it visible."""
        ...

    async def abort_upload(self, sha256: str, upload_id: str) -> None:
        """Discard an upload and its parts. Aborting an unknown upload is not an error."""
        ...

    async def list_incomplete_uploads(self) -> list[IncompleteUpload]:
        """Return every upload opened and neither completed nor aborted."""
        ...

    def read(self, sha256: str, offset: int, limit: int) -> AsyncGenerator[BlobChunk, None]:
        """Stream bytes ``[offset, offset+limit)`` (``limit`` 0 = to the end) in chunks of at
        most ``MAX_CHUNK_SIZE``.

        Raises:
            BlobNotFound: No such blob.
            OutOfRange: ``offset`` is past the end (``offset == size`` yields nothing).
        """
        ...

    async def presigned_download_url(self, sha256: str, expires: timedelta) -> str:
        """Return a URL that GETs the blob without credentials until ``expires`` passes.

        Raises:
            PresignNotSupported: The store has no URLs (local directory).
            BlobNotFound: No such blob.
        """
        ...

    async def direct_upload(self, sha256: str, size: int, expires: timedelta) -> DirectUpload:
        """Return a presigned PUT that can store exactly this blob under its key: the store
        itself must refuse a body whose SHA-256 is not ``sha256`` and must not overwrite an
        existing blob, so nothing unverified ever becomes visible.

        Raises:
            PresignNotSupported: The store has no URLs (local directory).
        """
        ...

    async def verified_size(self, sha256: str) -> int | None:
        """The size of the blob if the store holds it *and* recorded that it checked the
        blob's SHA-256 itself (a direct upload); None otherwise, also for a blob that
        ``complete_upload`` stored (its index row is what says it exists)."""
        ...

    async def delete(self, sha256: str) -> None:
        """Delete the blob; deleting a missing blob is not an error."""
        ...

    async def close(self) -> None:
        """Release threads and connections."""
        ...


class UploadSessionRepository(Protocol):
    """Durable upload-session state (the ``artifacts.upload_sessions`` table)."""

    async def create(
        self, session: UploadSession, request_id: str | None, quota: UploadQuota | None = None
    ) -> UploadSession:
        """Insert a new session; a ``request_id`` seen before returns that earlier session.

        With ``quota``, the owner's unfinished sessions are counted and checked
        (``UploadQuota.check``) atomically with the insert, so racing creations cannot pass it.
        """
        ...

    async def get(self, session_id: str) -> UploadSession:
        """Return the session. Raises ``UploadSessionNotFound``."""
        ...

    async def claim_writer(self, session_id: str) -> tuple[UploadSession, str]:
        """Make the caller the session's only writer; return the session and a writer token.

        A later ``claim_writer`` takes over; the earlier writer's next ``record_progress``
        then fails, so two streams can never both advance one session.
        """
        ...

    async def set_upload_id(self, session_id: str, writer: str, upload_id: str) -> None:
        """Record the store's multipart upload id (once, when the first part is sent)."""
        ...

    async def record_progress(
        self,
        session_id: str,
        writer: str,
        committed_size: int,
        hash_state: bytes,
        parts: Sequence[UploadedPart],
    ) -> None:
        """Persist a new durable prefix.

        Raises:
            FailedPrecondition: Another writer took the session over.
        """
        ...

    async def mark_complete(self, session_id: str, writer: str) -> None:
        """Mark the session finished (its blob exists)."""
        ...

    async def delete(self, session_id: str) -> None:
        """Forget the session."""
        ...

    async def list_expired(self, now: datetime, limit: int) -> list[UploadSession]:
        """Return sessions whose expiry is before ``now``."""
        ...

    async def known_upload_ids(self) -> set[str]:
        """Return the store upload ids of every session (to spot orphaned uploads)."""
        ...


class BlobIndex(Protocol):
    """The index of stored blobs (``artifacts.blobs``), for fast existence checks."""

    async def add(self, sha256: str, size: int) -> BlobInfo:
        """Record a stored blob (idempotent); return its row."""
        ...

    async def get(self, sha256: str) -> BlobInfo | None:
        """Return the blob's row, or None."""
        ...

    async def find_present(self, sha256s: Sequence[str]) -> dict[str, int]:
        """Return ``{sha256: size}`` of the given digests that are indexed."""
        ...

    async def list(
        self, after: Cursor | None, limit: int, created_before: datetime | None
    ) -> tuple[list[BlobInfo], Cursor | None]:
        """Return up to ``limit`` blobs in digest order after the position ``after``
        (``[sha256]``), and the position of the last one if more follow.

        Raises:
            InvalidArgument: ``after`` is not a position this listing made (a tampered token).
        """
        ...

    async def remove(self, sha256: str) -> None:
        """Forget a blob."""
        ...


@dataclass(frozen=True)
class VersionManifest:
    """The digests a model version's manifest holds, and whether they can still change."""

    digests: frozenset[str]
    final: bool  # READY or ARCHIVED: the manifest never changes again
    pending: bool = False  # PENDING: files may still be uploaded for it


class ManifestLookup(Protocol):
    """Which blobs a model version holds; the metadata service knows (over gRPC: services
    never import each other)."""

    async def manifest_of(self, version_name: str) -> VersionManifest | None:
        """The manifest of ``models/{model}/versions/{version}``; None if there is no such
        version. Raises ``Unavailable`` if the metadata service does not answer."""
        ...

    async def collect_blob(self, sha256: str, actor: str) -> bool:
        """Ask the metadata service to delete the blob unless a live version references it
        (checked under the lock commits take); True if it was deleted. ``actor`` is who asked,
        for the audit log. Raises ``Unavailable`` if the metadata service does not answer."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...

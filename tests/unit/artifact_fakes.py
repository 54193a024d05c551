"""In-memory fakes of the artifact ports, for unit tests of the upload use cases."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import uuid
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime, timedelta

from modelregistry_server.artifacts.domain.blob import (
    MAX_CHUNK_SIZE,
    BlobInfo,
    DirectUpload,
    IncompleteUpload,
    PartData,
    UploadedPart,
)
from modelregistry_server.artifacts.domain.errors import (
    BlobNotFound,
    FailedPrecondition,
    OutOfRange,
    PresignNotSupported,
    UploadSessionNotFound,
)
from modelregistry_server.artifacts.domain.upload import (
    SESSION_NAME_PREFIX,
    UploadQuota,
    UploadSession,
)
from modelregistry_server.common.kernel.paging import Cursor, split_page

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class InMemoryBlobStore:
    """``BlobStore`` over dicts; counts part uploads so tests can see what was re-sent."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.upload_sha: dict[str, str] = {}
        self.part_uploads = 0
        self.direct = False  # whether direct_upload offers URLs (S3) or refuses (local)
        self.verified: set[str] = set()  # blobs stored by put_direct

    async def check_space(self, nbytes: int) -> None:
        return None

    async def check(self) -> None:
        return None

    async def stat(self, sha256: str, *, unindexed: bool = False) -> BlobInfo | None:
        data = self.blobs.get(sha256)
        return None if data is None else BlobInfo(sha256, len(data), NOW)

    async def create_upload(self, sha256: str) -> str:
        upload_id = uuid.uuid4().hex
        self.uploads[upload_id] = {}
        self.upload_sha[upload_id] = sha256
        return upload_id

    async def upload_part(
        self, sha256: str, upload_id: str, part_number: int, offset: int, data: PartData
    ) -> UploadedPart:
        self.part_uploads += 1
        data = bytes(data)  # a view of a buffer the caller reuses
        self.uploads[upload_id][part_number] = data
        return UploadedPart(part_number, offset, len(data), hashlib.md5(data).hexdigest())  # noqa: S324

    async def complete_upload(
        self, sha256: str, upload_id: str, parts: Sequence[UploadedPart], size: int
    ) -> None:
        stored = self.uploads.pop(upload_id)
        data = b"".join(stored[p.part_number] for p in sorted(parts, key=lambda p: p.part_number))
        assert len(data) == size
        self.blobs[sha256] = data

    async def abort_upload(self, sha256: str, upload_id: str) -> None:
        self.uploads.pop(upload_id, None)

    async def list_incomplete_uploads(self) -> list[IncompleteUpload]:
        return [
            IncompleteUpload(self.upload_sha[u], u, NOW - timedelta(days=30)) for u in self.uploads
        ]

    async def read(self, sha256: str, offset: int, limit: int) -> AsyncGenerator[bytes, None]:
        data = self.blobs.get(sha256)
        if data is None:
            raise BlobNotFound(sha256)
        if offset > len(data):
            raise OutOfRange(f"offset {offset} is past the end ({len(data)} bytes)")
        end = len(data) if limit == 0 else min(len(data), offset + limit)
        for start in range(offset, end, MAX_CHUNK_SIZE):
            yield data[start : min(end, start + MAX_CHUNK_SIZE)]

    async def presigned_download_url(self, sha256: str, expires: timedelta) -> str:
        raise PresignNotSupported("no URLs in memory")

    async def direct_upload(self, sha256: str, size: int, expires: timedelta) -> DirectUpload:
        if not self.direct:
            raise PresignNotSupported("no URLs in memory")
        return DirectUpload(f"memory://{sha256}", {"x-amz-checksum-sha256": sha256}, NOW + expires)

    def put_direct(self, sha256: str, data: bytes) -> None:
        """What S3 does with a direct upload's PUT: store the body only if it hashes right."""
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("XAmzContentChecksumMismatch")
        self.blobs[sha256] = data
        self.verified.add(sha256)

    async def verified_size(self, sha256: str) -> int | None:
        return len(self.blobs[sha256]) if sha256 in self.verified else None

    async def delete(self, sha256: str) -> None:
        self.blobs.pop(sha256, None)

    async def close(self) -> None:
        pass


class InMemoryUploadSessions:
    """``UploadSessionRepository`` over a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, UploadSession] = {}
        self.writers: dict[str, str] = {}
        self.requests: dict[str, str] = {}

    async def create(
        self, session: UploadSession, request_id: str | None, quota: UploadQuota | None = None
    ) -> UploadSession:
        if request_id is not None and request_id in self.requests:
            return self.rows[self.requests[request_id]]
        if quota is not None:
            mine = [s for s in self.rows.values() if s.owner == session.owner and not s.complete]
            unwritten = sum(s.size - s.committed_size for s in mine)
            quota.check(session.owner, len(mine), unwritten, session.size)
        if request_id is not None:
            self.requests[request_id] = session.session_id
        self.rows[session.session_id] = session
        return session

    async def get(self, session_id: str) -> UploadSession:
        if session_id not in self.rows:
            raise UploadSessionNotFound(SESSION_NAME_PREFIX + session_id)
        return self.rows[session_id]

    async def claim_writer(self, session_id: str) -> tuple[UploadSession, str]:
        session = await self.get(session_id)
        token = secrets.token_hex(4)
        self.writers[session_id] = token
        return session, token

    def _check(self, session_id: str, writer: str) -> UploadSession:
        if self.writers.get(session_id) != writer or session_id not in self.rows:
            raise FailedPrecondition("taken over", reason="UPLOAD_SESSION_TAKEN_OVER")
        return self.rows[session_id]

    async def set_upload_id(self, session_id: str, writer: str, upload_id: str) -> None:
        row = self._check(session_id, writer)
        self.rows[session_id] = dataclasses.replace(row, upload_id=upload_id)

    async def record_progress(
        self,
        session_id: str,
        writer: str,
        committed_size: int,
        hash_state: bytes,
        parts: Sequence[UploadedPart],
    ) -> None:
        row = self._check(session_id, writer)
        self.rows[session_id] = dataclasses.replace(
            row, committed_size=committed_size, hash_state=hash_state, parts=tuple(parts)
        )

    async def mark_complete(self, session_id: str, writer: str) -> None:
        row = self._check(session_id, writer)
        self.rows[session_id] = dataclasses.replace(row, complete=True, committed_size=row.size)

    async def delete(self, session_id: str) -> None:
        self.rows.pop(session_id, None)

    async def list_expired(self, now: datetime, limit: int) -> list[UploadSession]:
        return [s for s in self.rows.values() if s.expire_time < now][:limit]

    async def known_upload_ids(self) -> set[str]:
        return {s.upload_id for s in self.rows.values() if s.upload_id}


class InMemoryBlobIndex:
    """``BlobIndex`` over a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, BlobInfo] = {}

    async def add(self, sha256: str, size: int) -> BlobInfo:
        return self.rows.setdefault(sha256, BlobInfo(sha256, size, NOW))

    async def get(self, sha256: str) -> BlobInfo | None:
        return self.rows.get(sha256)

    async def find_present(self, sha256s: Sequence[str]) -> dict[str, int]:
        return {s: self.rows[s].size for s in sha256s if s in self.rows}

    async def list(
        self, after: Cursor | None, limit: int, created_before: datetime | None
    ) -> tuple[list[BlobInfo], Cursor | None]:
        start = "" if after is None else str(after[0])
        rows = sorted((b for s, b in self.rows.items() if s > start), key=lambda b: b.sha256)
        return split_page(rows[: limit + 1], limit, lambda b: [b.sha256])

    async def remove(self, sha256: str) -> None:
        self.rows.pop(sha256, None)

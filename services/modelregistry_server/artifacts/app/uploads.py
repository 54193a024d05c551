"""Resumable, verified uploads: CreateUploadSession, Write, QueryWriteStatus, and the sweeper.

The server hashes every byte itself; the declared digest is checked, never trusted, because a
blob's key is its digest and a lying client could otherwise poison the store for everyone.
Progress becomes durable one part at a time: a part is stored, then the session row records
the new ``committed_size`` together with the SHA-256 state at that offset, so a client can
resume from ``committed_size`` after a dropped stream *or* a server restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelregistry_server.artifacts.app.part_buffers import PartBuffer, PartBufferPool
from modelregistry_server.artifacts.app.ports import BlobIndex, BlobStore, UploadSessionRepository
from modelregistry_server.artifacts.domain.blob import (
    MAX_CHUNK_SIZE,
    MAX_DIRECT_UPLOAD_SIZE,
    BlobInfo,
    UploadedPart,
    validate_sha256,
)
from modelregistry_server.artifacts.domain.errors import (
    DirectUploadMissing,
    FailedPrecondition,
    InvalidArgument,
    PresignNotSupported,
    RegistryError,
    quoted,
)
from modelregistry_server.artifacts.domain.upload import (
    DEFAULT_PART_SIZE,
    MAX_BLOB_SIZE,
    UploadQuota,
    UploadSession,
    new_session_id,
    parse_session_name,
    part_size_for,
)
from modelregistry_server.common.kernel.request_ids import validate_request_id
from modelregistry_server.common.kernel.resumable_sha256 import ResumableSha256

_log = logging.getLogger(__name__)
# Shorter than MinIO's default expiry of stale multipart uploads (24 h), so MinIO never drops
# the parts of a session that is still allowed to resume.
DEFAULT_SESSION_TTL = timedelta(hours=20)
# A direct upload's URL stores only its one blob; an hour covers 5 GiB at 1.5 MB/s.
DIRECT_UPLOAD_URL_TTL = timedelta(hours=1)


@dataclass(frozen=True)
class WriteChunk:
    """One ``WriteRequest`` in domain terms."""

    session: str
    offset: int
    # A view into the received message where the transport allows it (no copy).
    data: bytes | memoryview
    finish: bool


@dataclass(frozen=True)
class WriteResult:
    """What a Write stream ends with: the durable size, and the blob once finished."""

    committed_size: int
    blob: BlobInfo | None


@dataclass(frozen=True)
class SweepResult:
    """What one sweep cleaned up."""

    expired_sessions: int
    aborted_uploads: int


@dataclass
class _PendingPart:
    task: asyncio.Task[UploadedPart]
    end: int
    hash_state: bytes
    buffer: PartBuffer  # back to the pool once the part is stored


class UploadService:
    """The upload use cases.

    Args:
        sessions: Durable session state.
        index: The index of stored blobs.
        store: Where the bytes go.
        part_size: Preferred multipart part size (bigger blobs get bigger parts).
        parts_in_flight: Parts uploaded concurrently per stream; memory per stream is about
            ``(parts_in_flight + 1) * part_size`` whatever the blob size.
        session_ttl: How long a session may stay unfinished before the sweeper removes it.
        direct_uploads: Whether a session may offer a presigned PUT straight to the store.
        quota: What one principal's unfinished sessions may hold (None: unbounded). The
            registry's own sessions (no owner) are not counted.
        clock: Returns the current time (tests move it).
    """

    def __init__(
        self,
        sessions: UploadSessionRepository,
        index: BlobIndex,
        store: BlobStore,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        parts_in_flight: int = 2,
        session_ttl: timedelta = DEFAULT_SESSION_TTL,
        direct_uploads: bool = True,
        quota: UploadQuota | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._index = index
        self._store = store
        self._part_size = part_size
        self._parts_in_flight = parts_in_flight
        self._session_ttl = session_ttl
        self._direct_uploads = direct_uploads
        self._quota = quota
        self._clock = clock
        self._buffers = PartBufferPool()
        self._streams = 0  # Write streams running now

    async def create_session(
        self,
        sha256: str,
        size: int,
        request_id: str = "",
        owner: str | None = None,
        *,
        direct: bool = False,
    ) -> UploadSession:
        """Open an upload session of ``owner`` (None: the registry itself), finished at once if
        the blob exists; ``direct`` asks for a URL to PUT it to the store (if offered)."""
        validate_sha256(sha256, "blob.sha256")
        request = validate_request_id(request_id)
        if not 0 <= size <= MAX_BLOB_SIZE:
            raise InvalidArgument("blob.size_bytes", f"must be from 0 to {MAX_BLOB_SIZE} bytes")
        existing = await self._existing_blob(sha256)
        if existing is not None and existing.size != size:
            raise InvalidArgument(
                "blob.size_bytes",
                f"blob {sha256} is stored with size {existing.size}, not {size}; "
                "a digest names exactly one content",
                reason="SIZE_MISMATCH",
            )
        now = self._clock()
        session = UploadSession(
            session_id=new_session_id(),
            sha256=sha256,
            size=size,
            part_size=part_size_for(size, self._part_size),
            committed_size=size if existing else 0,
            complete=existing is not None,
            create_time=now,
            expire_time=now + self._session_ttl,
            owner=owner or "",
        )
        quota = self._quota if owner and existing is None else None
        if existing is None:
            await self._store.check_space(size)  # refuse now what could not be stored later
        created = await self._sessions.create(session, request, quota)
        created.check_owner(owner)  # a request_id another principal used: not theirs to see
        direct = direct and self._direct_uploads
        if direct and not created.complete and created.size <= MAX_DIRECT_UPLOAD_SIZE:
            ttl = min(DIRECT_UPLOAD_URL_TTL, created.expire_time - now)
            if ttl >= timedelta(seconds=1):
                with contextlib.suppress(PresignNotSupported):  # then the client uses Write
                    target = await self._store.direct_upload(created.sha256, created.size, ttl)
                    created = dataclasses.replace(created, direct_upload=target)
        return created

    async def finish_direct(self, name: str, owner: str | None = None) -> UploadSession:
        """Complete a session whose blob was PUT straight to the store: the store must hold
        it with the SHA-256 it checked itself (only the session's owner may ask)."""
        session = await self._sessions.get(parse_session_name(name))
        session.check_owner(owner)
        if session.complete:
            return session
        size = await self._store.verified_size(session.sha256)
        if size is None:
            indexed = await self._index.get(session.sha256)  # a Write of it finished meanwhile
            if indexed is None:
                raise DirectUploadMissing(session.name, session.sha256)
            size = indexed.size
        if size != session.size:
            # The content is what the digest names; only the declared size was wrong.
            await self._sessions.delete(session.session_id)
            raise InvalidArgument(
                "blob.size_bytes",
                f"blobs/{session.sha256} holds {size} bytes, not the {session.size} the "
                "session declared; the session is closed",
                reason="SIZE_MISMATCH",
            )
        await self._index.add(session.sha256, size)
        _, writer = await self._sessions.claim_writer(session.session_id)
        await self._sessions.mark_complete(session.session_id, writer)
        return dataclasses.replace(session, committed_size=size, complete=True)

    async def _existing_blob(self, sha256: str) -> BlobInfo | None:
        indexed = await self._index.get(sha256)
        if indexed is not None:
            return indexed
        # A crash between storing a blob and indexing it leaves it unindexed; repair here.
        stored = await self._store.stat(sha256, unindexed=True)
        if stored is None:
            return None
        return await self._index.add(sha256, stored.size)

    async def query_write_status(self, name: str, owner: str | None = None) -> UploadSession:
        """Return the session, whose ``committed_size`` is where a client resumes (only to
        its owner)."""
        session = await self._sessions.get(parse_session_name(name))
        session.check_owner(owner)
        return session

    async def write(
        self, chunks: AsyncIterator[WriteChunk], owner: str | None = None
    ) -> WriteResult:
        """Consume one Write stream (only the session's owner may write to it)."""
        first = await anext(chunks, None)
        if first is None:
            raise InvalidArgument("upload_session", "the Write stream carried no message")
        session_id = parse_session_name(first.session)
        (await self._sessions.get(session_id)).check_owner(owner)
        session, writer = await self._sessions.claim_writer(session_id)
        if session.complete:
            raise FailedPrecondition(
                f"{session.name} is finished and blobs/{session.sha256} exists; "
                "there is nothing more to write",
                reason="UPLOAD_SESSION_COMPLETE",
            )
        stream = _UploadStream(self, session, writer)
        self._streams += 1
        try:
            return await stream.run(first, chunks)
        finally:
            self._streams -= 1
            if not self._streams:
                self._buffers.clear()  # an idle server keeps no part buffers

    async def sweep(self, *, expire_all: bool = False, limit: int = 1000) -> SweepResult:
        """Remove expired sessions and abort their (and orphaned) multipart uploads.

        Args:
            expire_all: Treat every session as expired (tests, and operators draining a store).
            limit: Sessions handled per call.
        """
        now = self._clock()
        cutoff = datetime.max.replace(tzinfo=UTC) if expire_all else now
        aborted = 0
        expired = await self._sessions.list_expired(cutoff, limit)
        for session in expired:
            if not session.complete and session.upload_id is not None:
                await self._store.abort_upload(session.sha256, session.upload_id)
                aborted += 1
            elif not session.complete:
                await self._index_unfinished_direct_upload(session)
            await self._sessions.delete(session.session_id)
        # Uploads the store holds but no session names (a crash between opening one and
        # recording its id) are aborted once they are older than any session can live.
        known = await self._sessions.known_upload_ids()
        orphan_cutoff = cutoff if expire_all else now - self._session_ttl
        for upload in await self._store.list_incomplete_uploads():
            if upload.upload_id not in known and upload.initiated < orphan_cutoff:
                await self._store.abort_upload(upload.sha256, upload.upload_id)
                aborted += 1
        if expired or aborted:
            _log.info("sweep: %d expired sessions, %d uploads aborted", len(expired), aborted)
        return SweepResult(len(expired), aborted)

    async def _index_unfinished_direct_upload(self, session: UploadSession) -> None:
        """A direct upload never finished leaves a checked blob no index row names, which GC
        (it lists the index) would never see: index it, so GC frees it unless a version uses it."""
        size = await self._store.verified_size(session.sha256)
        if size is not None and await self._index.get(session.sha256) is None:
            await self._index.add(session.sha256, size)
            _log.info("sweep: indexed blobs/%s, PUT directly but never finished", session.sha256)


class _UploadStream:
    """The state of one Write stream on one session."""

    def __init__(self, service: UploadService, session: UploadSession, writer: str) -> None:
        self._svc = service
        self._session = session
        self._writer = writer
        self._parts: list[UploadedPart] = list(session.parts)
        self._committed = session.committed_size
        self._received = session.committed_size
        # The part being filled: a pooled buffer (part_buffers.py) into which each message is
        # copied on arrival, so that the message is freed at once; where it starts in the blob.
        self._part: PartBuffer | None = None
        self._filled = 0
        self._part_offset = session.committed_size
        self._hasher = ResumableSha256(session.hash_state if session.committed_size else None)
        self._pending: deque[_PendingPart] = deque()
        self._upload_id = session.upload_id

    async def run(self, first: WriteChunk, rest: AsyncIterator[WriteChunk]) -> WriteResult:
        try:
            chunk: WriteChunk | None = first
            while chunk is not None:
                await self._absorb(self._accept(chunk))
                if chunk.finish:
                    return await self._finish()
                chunk = await self._next(rest)
            # The client half-closed without finishing: keep what is durable, drop the tail
            # (it is re-sent from committed_size on resume).
            await self._drain()
            self._release_part()
            return WriteResult(self._committed, None)
        except BaseException:
            self._release_part()
            # Cancelled, deadline, bad input or a store failure: stop feeding the store now.
            # Parts already in a worker thread finish on their own; none are started after this.
            with contextlib.suppress(BaseException):
                await self._cancel_pending()
            raise

    async def _next(self, rest: AsyncIterator[WriteChunk]) -> WriteChunk | None:
        """The next chunk. If the stream itself ends in an error (it idled, the server is
        shutting down, the request did not decode), the parts already on their way to the
        store are waited for and recorded first: a resume then starts after them."""
        try:
            return await anext(rest, None)
        except RegistryError:
            with contextlib.suppress(Exception):
                await self._drain()
            raise

    def _accept(self, chunk: WriteChunk) -> memoryview:
        """Check one chunk; return its bytes not received before (a view, not a copy)."""
        session = self._session
        if chunk.session and chunk.session != session.name:
            raise InvalidArgument(
                "upload_session", f"a stream writes one session; got {quoted(chunk.session)} "
                f"after {session.name!r}"
            )  # fmt: skip
        if len(chunk.data) > MAX_CHUNK_SIZE:
            raise InvalidArgument(
                "data",
                f"chunk of {len(chunk.data)} bytes exceeds the maximum of {MAX_CHUNK_SIZE} "
                "bytes (1 MiB); send smaller chunks",
                reason="CHUNK_TOO_LARGE",
            )
        if chunk.offset < 0:
            raise InvalidArgument("write_offset", "must not be negative")
        if chunk.offset > self._received:
            raise InvalidArgument(
                "write_offset",
                f"gap in the stream: got offset {chunk.offset}, expected offset "
                f"{self._received}; resume from the committed_size that QueryWriteStatus "
                "returns",
                reason="WRITE_OFFSET_INVALID",
                metadata={"expected_offset": str(self._received)},
            )
        # Bytes below what we already have are ignored: re-sending them cannot corrupt anything.
        skip = self._received - chunk.offset
        data = memoryview(chunk.data)
        if skip:
            data = data[skip:]
        if self._received + len(data) > session.size:
            raise InvalidArgument(
                "data",
                f"the stream goes past the declared size of {session.size} bytes",
                reason="SIZE_EXCEEDED",
            )
        self._received += len(data)
        return data

    def _release_part(self) -> None:
        """Give the unshipped part buffer back (no worker thread has seen it)."""
        if self._part is not None:
            self._svc._buffers.release(self._part)
            self._part, self._filled = None, 0

    async def _absorb(self, data: memoryview) -> None:
        """Copy ``data`` into part buffers, shipping each one that fills up."""
        part_size = self._session.part_size
        while data:
            if self._part is None:
                self._part = self._svc._buffers.acquire(part_size)
            take = min(len(data), part_size - self._filled)
            self._part[self._filled : self._filled + take] = data[:take]
            self._filled += take
            data = data[take:]
            if self._filled == part_size:
                await self._ship_filled()

    def _take_part(self) -> tuple[PartBuffer | None, memoryview]:
        """The part being filled, hashed, and its bytes; the next bytes go into a new buffer."""
        buffer, filled = self._part, self._filled
        self._part, self._filled = None, 0
        part = memoryview(buffer)[:filled] if buffer is not None else memoryview(b"")
        self._hasher.update(part)
        return buffer, part

    async def _ship_filled(self) -> None:
        """Hash the filled part and upload it."""
        buffer, part = self._take_part()
        assert buffer is not None
        await self._ship(part, buffer)

    async def _ship(self, data: memoryview, buffer: PartBuffer) -> None:
        """Upload ``data`` (already hashed; a view of ``buffer``) as the next part."""
        offset = self._part_offset
        self._part_offset += len(data)
        if self._upload_id is None:
            self._upload_id = await self._svc._store.create_upload(self._session.sha256)
            await self._svc._sessions.set_upload_id(
                self._session.session_id, self._writer, self._upload_id
            )
        while len(self._pending) >= self._svc._parts_in_flight:
            await self._settle_oldest()
        part_number = offset // self._session.part_size + 1
        task = asyncio.create_task(
            self._svc._store.upload_part(
                self._session.sha256, self._upload_id, part_number, offset, data
            )
        )
        self._pending.append(_PendingPart(task, offset + len(data), self._hasher.state(), buffer))

    async def _settle_oldest(self) -> None:
        pending = self._pending[0]
        part = await pending.task
        self._pending.popleft()
        # The store is done with it (its worker thread returned): the buffer may be reused. A
        # part that failed or was cancelled keeps its buffer out of the pool, since a worker
        # thread may still be reading it.
        self._svc._buffers.release(pending.buffer)
        self._parts.append(part)
        self._committed = pending.end
        await self._svc._sessions.record_progress(
            self._session.session_id,
            self._writer,
            self._committed,
            pending.hash_state,
            self._parts,
        )

    async def _drain(self) -> None:
        while self._pending:
            await self._settle_oldest()

    async def _finish(self) -> WriteResult:
        session = self._session
        if self._received != session.size:
            await self._discard()
            raise InvalidArgument(
                "finish_write",
                f"wrong size: the stream ended at {self._received} bytes but the session "
                f"declared {session.size}; nothing was stored and the session is closed",
                reason="SIZE_MISMATCH",
            )
        # Hash the tail before uploading it: a wrong digest is caught without storing more.
        buffer, tail = self._take_part()
        digest = self._hasher.hexdigest()
        if digest != session.sha256:
            await self._discard()
            raise InvalidArgument(
                "sha256",
                f"the bytes received hash to {digest}, not the declared {session.sha256}; "
                "nothing was stored and the session is closed",
                reason="DIGEST_MISMATCH",
            )
        if buffer is not None and len(tail):
            await self._ship(tail, buffer)
        await self._drain()
        store = self._svc._store
        if session.size == 0 and self._upload_id is None:
            self._upload_id = await store.create_upload(session.sha256)
        assert self._upload_id is not None
        await store.complete_upload(session.sha256, self._upload_id, self._parts, session.size)
        blob = await self._svc._index.add(session.sha256, session.size)
        await self._svc._sessions.mark_complete(session.session_id, self._writer)
        return WriteResult(session.size, blob)

    async def _cancel_pending(self) -> None:
        for pending in self._pending:
            pending.task.cancel()
        await asyncio.gather(*(p.task for p in self._pending), return_exceptions=True)
        self._pending.clear()

    async def _discard(self) -> None:
        await self._cancel_pending()
        if self._upload_id is not None:
            await self._svc._store.abort_upload(self._session.sha256, self._upload_id)
        await self._svc._sessions.delete(self._session.session_id)

"""``BlobStore`` in a local directory: the embedded default.

Layout under ``root``::

    blobs/sha256/<aa>/<64 hex>     finished blobs (the key from ``blob_key``)
    uploads/<upload id>/data       an upload's bytes, each part written at its offset
    uploads/<upload id>/meta.json  {"sha256": ..., "initiated": ...}, for listing after a restart
    uploads/.new-* , .trash-*      uploads being created / deleted (renamed, so never half-seen)

A part is durable when ``upload_part`` returns (``fdatasync``). ``complete_upload`` truncates
``data`` to the blob's size and renames it into place, so a reader sees the whole blob or none.

Part ETags are the CRC32C of the part's bytes, computed in the worker thread: they tell a part
from one re-sent with other bytes. A SHA-256 per part would be a second full hash of every byte
(the upload stream already computes the blob's content address); CRC32C runs on the CPU's
CRC32 instruction at a fifth of the cost. A part may be a view of a pooled buffer; it is written
as it is, without a copy.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from modelregistry_server.artifacts.adapters.blob_io import (
    check_part,
    ordered_parts,
    read_length,
    shutdown,
    stream_chunks,
    submit_job,
    upload_not_found,
)
from modelregistry_server.artifacts.adapters.checksums import crc32c
from modelregistry_server.artifacts.domain.blob import (
    BlobChunk,
    BlobInfo,
    DirectUpload,
    IncompleteUpload,
    PartData,
    UploadedPart,
    blob_key,
    validate_sha256,
)
from modelregistry_server.artifacts.domain.errors import (
    BlobNotFound,
    FailedPrecondition,
    InvalidArgument,
    PresignNotSupported,
    StoreUnavailable,
    storage_full,
)

_log = logging.getLogger(__name__)
_STORE = "blob store"  # How errors name this store.

_T = TypeVar("_T")

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_NEW_PREFIX = ".new-"
_TRASH_PREFIX = ".trash-"
# A ".new-" folder older than this was left by a crash inside create_upload.
_STALE_NEW_UPLOAD_S = 3600.0


class LocalDirBlobStore:
    """Blobs as files under ``root``.

    Args:
        root: The store's directory; created if missing.
        max_workers: Threads doing file I/O.
        reserve_bytes: Free disk space kept for everyone else: a session or part that would
            leave less is refused (``STORAGE_FULL``), so one upload cannot fill the disk.
    """

    def __init__(self, root: Path, *, max_workers: int = 4, reserve_bytes: int = 0) -> None:
        self._root = root
        self._reserve = reserve_bytes
        self._uploads = root / "uploads"
        # Once, at start-up: fail early if the directory cannot be created.
        self._uploads.mkdir(parents=True, exist_ok=True)
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="localfs"
        )
        self._closed = False

    async def check_space(self, nbytes: int) -> None:
        """Refuse ``nbytes`` more if the disk would then have less than the reserve free.

        Raises:
            ResourceExhausted: ``STORAGE_FULL``.
        """
        usage = await self._run(shutil.disk_usage, self._root)
        if usage.free - nbytes < self._reserve:
            raise storage_full(usage.free, nbytes, self._reserve)

    async def check(self) -> None:
        """Return once the blob folder is there and writable (a lost mount is not).

        Raises:
            StoreUnavailable: It is not.
        """
        if not await self._run(os.access, self._root, os.W_OK | os.X_OK):
            raise StoreUnavailable(f"the blob folder {self._root} is missing or not writable")

    async def stat(self, sha256: str, *, unindexed: bool = False) -> BlobInfo | None:
        """Return the blob's size and modification time, or None if it is not stored."""
        path = self._blob_path(sha256)
        try:
            st = await self._run(os.stat, path, missing_ok=True)
        except FileNotFoundError:
            return None
        return BlobInfo(sha256, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    async def create_upload(self, sha256: str) -> str:
        """Open an upload: a folder with an empty ``data`` file and ``meta.json``.

        Returns:
            The upload id (uuid4 hex).
        """
        validate_sha256(sha256)
        upload_id = uuid.uuid4().hex
        await self._run(self._create_upload, sha256, upload_id)
        return upload_id

    def _create_upload(self, sha256: str, upload_id: str) -> None:
        # Built under a temporary name and renamed, so a listed upload always has its meta.json.
        tmp = self._uploads / (_NEW_PREFIX + upload_id)
        tmp.mkdir()
        meta = {"sha256": sha256, "initiated": datetime.now(UTC).isoformat()}
        _write_durably(tmp / "meta.json", json.dumps(meta).encode())
        _write_durably(tmp / "data", b"")
        _fsync_dir(tmp)
        os.rename(tmp, self._uploads / upload_id)
        _fsync_dir(self._uploads)

    async def upload_part(
        self, sha256: str, upload_id: str, part_number: int, offset: int, data: PartData
    ) -> UploadedPart:
        """Write the part at its offset and flush it to disk before returning.

        Re-sending a part number writes the same range again, replacing the earlier bytes.

        Raises:
            InvalidArgument: ``part_number`` outside 1..10000 or a negative ``offset``.
            FailedPrecondition: No such upload for this blob (reason ``STORE_UPLOAD_NOT_FOUND``).
        """
        validate_sha256(sha256)
        check_part(part_number, offset)
        upload = self._upload_dir(sha256, upload_id)
        await self.check_space(len(data))
        try:
            etag = await self._run(self._write_part, sha256, upload, offset, data, missing_ok=True)
        except FileNotFoundError:
            raise upload_not_found(_STORE, sha256, upload_id) from None
        return UploadedPart(part_number, offset, len(data), etag)

    def _write_part(self, sha256: str, upload: Path, offset: int, data: PartData) -> str:
        _check_meta(upload, sha256)
        fd = os.open(upload / "data", os.O_WRONLY)
        # The ETag only tells parts apart; the blob's sha256 is checked by the upload stream.
        # A CRC32C (CPU instruction) instead of a second SHA-256 of every byte.
        try:
            view = memoryview(data)
            written = 0
            while written < len(view):
                written += os.pwrite(fd, view[written:], offset + written)
            # Data and file size reach the disk; "committed" must survive a power cut.
            os.fdatasync(fd)
        finally:
            os.close(fd)
        return f"{crc32c(data):08x}"

    async def complete_upload(
        self, sha256: str, upload_id: str, parts: Sequence[UploadedPart], size: int
    ) -> None:
        """Rename the upload's ``data`` into the blob's path (atomic) and remove the upload.

        If the blob already exists with this size (an identical upload finished first, or this
        is a retry), the upload is discarded instead.

        Raises:
            FailedPrecondition: The parts do not cover ``[0, size)`` exactly, the upload holds
                fewer bytes, or there is no such upload (and no such blob).
        """
        validate_sha256(sha256)
        ordered_parts(parts, size)
        upload = self._upload_dir(sha256, upload_id)
        await self._run(self._complete, sha256, upload_id, upload, size)

    def _complete(self, sha256: str, upload_id: str, upload: Path, size: int) -> None:
        final = self._blob_path(sha256)
        try:
            _check_meta(upload, sha256)
            if _file_size(final) == size:
                self._discard(upload)
                return
            data = upload / "data"
            fd = os.open(data, os.O_WRONLY)
            try:
                held = os.fstat(fd).st_size
                if held < size:
                    raise FailedPrecondition(
                        f"upload {upload_id} holds {held} bytes, fewer than the blob's {size}",
                        reason="UPLOAD_PARTS_INVALID",
                    )
                # A re-sent shorter last part may leave stale bytes past the end.
                os.ftruncate(fd, size)
                os.fsync(fd)
            finally:
                os.close(fd)
            _make_dirs_durably(final.parent)
            os.replace(data, final)
        except FileNotFoundError:
            # Gone: completed by a concurrent or earlier call, or never existed.
            if _file_size(final) == size:
                return
            raise upload_not_found(_STORE, sha256, upload_id) from None
        _fsync_dir(final.parent)
        self._discard(upload)

    async def abort_upload(self, sha256: str, upload_id: str) -> None:
        """Delete an upload's folder; an unknown upload (or a foreign id) is not an error."""
        validate_sha256(sha256)
        if not _UPLOAD_ID.fullmatch(upload_id):
            return  # Not one of ours (e.g. an S3 upload id from before a change of store).
        await self._run(self._discard, self._uploads / upload_id)

    def _discard(self, upload: Path) -> None:
        # Rename first: a crash halfway through rmtree must not leave a listed upload without
        # its meta.json. Leftover trash is removed by list_incomplete_uploads.
        trash = self._uploads / f"{_TRASH_PREFIX}{upload.name}-{secrets.token_hex(4)}"
        try:
            os.rename(upload, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    async def list_incomplete_uploads(self) -> list[IncompleteUpload]:
        """Return every upload folder (also those from before a restart), oldest first."""
        return await self._run(self._list_uploads)

    def _list_uploads(self) -> list[IncompleteUpload]:
        found: list[IncompleteUpload] = []
        now = time.time()
        for entry in os.scandir(self._uploads):
            if entry.name.startswith(_TRASH_PREFIX):
                shutil.rmtree(entry.path, ignore_errors=True)
            elif entry.name.startswith(_NEW_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    if now - entry.stat().st_mtime > _STALE_NEW_UPLOAD_S:
                        shutil.rmtree(entry.path, ignore_errors=True)
            elif _UPLOAD_ID.fullmatch(entry.name):
                try:
                    meta = json.loads((Path(entry.path) / "meta.json").read_bytes())
                    found.append(
                        IncompleteUpload(
                            validate_sha256(meta["sha256"]),
                            entry.name,
                            datetime.fromisoformat(meta["initiated"]),
                        )
                    )
                except FileNotFoundError:
                    continue  # Completed or aborted while we listed.
                except (ValueError, KeyError, TypeError, InvalidArgument):
                    _log.warning("ignoring upload folder %s: unreadable meta.json", entry.path)
        return sorted(found, key=lambda u: (u.initiated, u.upload_id))

    async def read(self, sha256: str, offset: int, limit: int) -> AsyncGenerator[BlobChunk, None]:
        """Stream bytes ``[offset, offset+limit)`` (``limit`` 0 = to the end).

        Chunks are ``MAX_CHUNK_SIZE`` bytes except the last, one read ahead. A blob deleted
        while it is read is still read to the end (the open file keeps its bytes).

        Raises:
            BlobNotFound: No such blob.
            OutOfRange: ``offset`` is past the end (``offset == size`` yields nothing).
            StoreUnavailable: The file could not be read.
        """
        path = self._blob_path(sha256)

        def open_blob() -> tuple[int, int]:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise BlobNotFound(sha256) from None
            except OSError as exc:
                raise _os_error(exc) from exc
            try:
                length = read_length(sha256, offset, limit, os.fstat(fd).st_size)
                if length:
                    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_SEQUENTIAL)
                    os.lseek(fd, offset, os.SEEK_SET)
            except OSError as exc:
                os.close(fd)
                raise _os_error(exc) from exc
            except BaseException:
                os.close(fd)
                raise
            return fd, length

        async for chunk in stream_chunks(self._executor, open_blob, _read, os.close):
            yield chunk

    async def presigned_download_url(self, sha256: str, expires: timedelta) -> str:
        """Always raises: a local directory has no URLs.

        Raises:
            PresignNotSupported: Always.
        """
        raise PresignNotSupported(
            "the local-directory blob store cannot issue download URLs; use Read, or run with "
            "--s3-endpoint"
        )

    async def direct_upload(self, sha256: str, size: int, expires: timedelta) -> DirectUpload:
        """Always raises: a local directory has no URLs (uploads go through Write).

        Raises:
            PresignNotSupported: Always.
        """
        raise PresignNotSupported(
            "the local-directory blob store cannot take direct uploads; use Write"
        )

    async def verified_size(self, sha256: str) -> int | None:
        """None: nothing reaches a local directory but through Write, which indexes it."""
        return None

    async def delete(self, sha256: str) -> None:
        """Delete the blob's file; a missing blob is not an error."""
        path = self._blob_path(sha256)
        with contextlib.suppress(FileNotFoundError):
            await self._run(os.unlink, path, missing_ok=True)

    async def close(self) -> None:
        """Stop the worker threads; queued calls are cancelled, running ones finish."""
        self._closed = True
        await shutdown(self._executor)

    def _blob_path(self, sha256: str) -> Path:
        return self._root / blob_key(sha256)

    def _upload_dir(self, sha256: str, upload_id: str) -> Path:
        # Upload ids come back from the database; never build a path from an unchecked one.
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise upload_not_found(_STORE, sha256, upload_id)
        return self._uploads / upload_id

    async def _run(self, fn: Callable[..., _T], /, *args: Any, missing_ok: bool = False) -> _T:
        """Run blocking file I/O on the store's threads; ``OSError`` becomes
        ``StoreUnavailable``, except ``FileNotFoundError`` when ``missing_ok`` (the caller
        turns it into "not found")."""
        if self._closed:
            raise StoreUnavailable("the blob store is shut down")
        # submit_job, not run_in_executor: a store closed meanwhile is StoreUnavailable too.
        job = submit_job(self._executor, fn, *args)
        try:
            return await asyncio.wrap_future(job)
        except FileNotFoundError as exc:
            if missing_ok:
                raise
            raise _os_error(exc) from exc
        except OSError as exc:
            raise _os_error(exc) from exc


# ---------------------------------------------------------------- file helpers


def _write_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # A rename or a new entry is durable only once the directory itself is flushed.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs_durably(path: Path) -> None:
    if path.is_dir():
        return
    _make_dirs_durably(path.parent)
    with contextlib.suppress(FileExistsError):
        path.mkdir()
    _fsync_dir(path.parent)


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _check_meta(upload: Path, sha256: str) -> None:
    meta = json.loads((upload / "meta.json").read_bytes())
    if meta.get("sha256") != sha256:
        raise FailedPrecondition(
            f"upload {upload.name} belongs to blobs/{meta.get('sha256')}, not blobs/{sha256}",
            reason="UPLOAD_BLOB_MISMATCH",
        )


def _read(fd: int, size: int) -> bytes:
    # stream_chunks reads one chunk at a time, so the file position carries the offset.
    try:
        return os.read(fd, size)
    except OSError as exc:
        raise _os_error(exc) from exc


def _os_error(exc: OSError) -> StoreUnavailable:
    """The one place where a file-system failure becomes a registry error (never INTERNAL)."""
    # strerror only ("No space left on device"): no paths or stack traces in client messages.
    _log.warning("local blob store I/O failed: %s", exc)
    return StoreUnavailable(f"the local blob store failed: {exc.strerror or type(exc).__name__}")

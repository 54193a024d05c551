"""``BlobStore`` on MinIO / S3 through the ``minio`` SDK.

minio-py is synchronous. Every call runs on this store's own ``ThreadPoolExecutor`` (not the
event loop's default executor, not ``asyncio.to_thread``) so the number of threads talking to S3
is bounded per store and ``close()`` can shut them down.

Uploads use S3 multipart uploads through minio-py's low-level methods, because the callers
stream parts as they arrive (and across server restarts) instead of handing over one file.

Listing incomplete uploads has a MinIO limitation: MinIO treats the ``prefix`` of
ListMultipartUploads as one exact object key, and without a prefix it answers from an in-memory
cache of the uploads started since that MinIO process started (per node). This store lists
without a prefix, which is complete on AWS S3 and on a MinIO that has not restarted. Uploads
MinIO forgot that way are still removed by MinIO itself after ``api stale_uploads_expiry``
(default 24 h).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import io
import logging
import re
from collections.abc import AsyncGenerator, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from minio import Minio
from minio.datatypes import Object, Part
from minio.error import S3Error
from minio.helpers import DictType
from urllib3 import BaseHTTPResponse

from modelregistry_server.artifacts.adapters.blob_io import (
    check_part,
    ordered_parts,
    read_length,
    shutdown,
    stream_chunks,
    submit_job,
    upload_not_found,
)
from modelregistry_server.artifacts.adapters.checksums import part_checksum
from modelregistry_server.artifacts.adapters.s3_errors import (
    S3_FAILURES,
    close_response,
    read_response,
    store_error,
)
from modelregistry_server.artifacts.adapters.s3_parts import CHECKSUM_HEADER, make_client
from modelregistry_server.artifacts.adapters.s3_presign import (
    checked_sha256,
    direct_upload_headers,
    foreign_headers,
    presign_put,
)
from modelregistry_server.artifacts.domain.blob import (
    MAX_URL_TTL,
    BlobChunk,
    BlobInfo,
    DirectUpload,
    IncompleteUpload,
    PartData,
    UploadedPart,
    blob_key,
)
from modelregistry_server.artifacts.domain.errors import (
    BlobNotFound,
    FailedPrecondition,
    InvalidArgument,
    StoreUnavailable,
)

_log = logging.getLogger(__name__)
_STORE = "object store"  # How errors name this store.

_T = TypeVar("_T")

_KEY_PATTERN = re.compile(r"^blobs/sha256/([0-9a-f]{2})/([0-9a-f]{64})$")
# Upload ids are opaque, but every S3 server seen uses URL-safe tokens (MinIO: base64url;
# AWS: [A-Za-z0-9._-]; Ceph adds "~"). Anything else cannot be one of ours, and MinIO answers
# ids with path-like parts with an error instead of NoSuchUpload.
_UPLOAD_ID_PATTERN = re.compile(r"^[A-Za-z0-9._~=+-]{1,1024}$")
# Errors by which S3 says the part list handed to CompleteMultipartUpload does not match the
# stored parts: a caller bug or a lost part, not an outage.
# The worker pool: its size bounds the S3 requests in flight; its threads are named
# "s3_<n>" (tests tell them from leaked threads by that).
DEFAULT_WORKERS = 8
THREAD_NAME_PREFIX = "s3"
_BAD_PARTS_CODES = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})


class S3BlobStore:
    """Blobs in one S3 bucket, under ``blob_key(sha256)``.

    Args:
        client: A minio-py client. Its connection pool should keep more than ``max_workers``
            connections (minio-py's default keeps 10): every open read holds one, and
            connections beyond the pool size are closed after use and re-opened under load.
        bucket: The bucket holding the blobs (see :meth:`ensure_bucket`).
        max_workers: Threads running S3 calls; also the most S3 requests in flight at once.
    """

    def __init__(self, client: Minio, bucket: str, *, max_workers: int = DEFAULT_WORKERS) -> None:
        self._client = client
        self._bucket = bucket
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix=THREAD_NAME_PREFIX
        )
        self._closed = False

    @classmethod
    def from_config(
        cls,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool,
        region: str | None = None,
        *,
        max_workers: int = DEFAULT_WORKERS,
    ) -> S3BlobStore:
        """Build a store with its own minio-py client.

        Args:
            endpoint: ``host:port`` of MinIO / S3, without a scheme.
            access_key: S3 access key.
            secret_key: S3 secret key.
            bucket: The bucket holding the blobs.
            secure: Use TLS.
            region: The bucket's region; given, it saves minio-py a GetBucketLocation call.
            max_workers: Threads running S3 calls.

        Returns:
            The store; call :meth:`ensure_bucket` before use.
        """
        client = make_client(endpoint, access_key, secret_key, secure, region, max_workers)
        return cls(client, bucket, max_workers=max_workers)

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet.

        Raises:
            StoreUnavailable: S3 cannot be reached or refused the request.
        """
        if await self._call(self._client.bucket_exists, self._bucket):
            return
        try:
            await self._call(
                self._client.make_bucket,
                self._bucket,
                expect={"BucketAlreadyOwnedByYou"},
            )
        except S3Error:
            return  # Another replica created it between our check and our request.
        _log.info("created S3 bucket %s", self._bucket)

    async def check_space(self, nbytes: int) -> None:
        """S3 reports no free space to check; its operators bound it with quotas instead."""
        return None

    async def check(self) -> None:
        """Return once S3 answers that the bucket exists.

        Raises:
            StoreUnavailable: S3 cannot be reached, or the bucket is gone.
        """
        if not await self._call(self._client.bucket_exists, self._bucket):
            raise StoreUnavailable(f"the bucket {self._bucket} does not exist")

    async def stat(self, sha256: str, *, unindexed: bool = False) -> BlobInfo | None:
        """The blob's size and creation time, or None (see the port and ``_stat_object``);
        raises ``StoreUnavailable`` if S3 cannot be reached or failed."""
        obj = await self._stat_object(sha256, unindexed=unindexed)
        if obj is None:
            return None
        return BlobInfo(sha256, obj.size or 0, _utc(obj.last_modified))

    async def _stat_object(
        self, sha256: str, *, unindexed: bool, checksums: bool = False
    ) -> Object | None:
        """The blob's object, or None. One about to be indexed (``unindexed``) that carries
        headers the registry never sets (``s3_presign.foreign_headers``) is not a blob; indexed
        blobs are not judged so, lest an operator's own object tags hide them."""
        try:
            obj = await self._call(
                self._client.stat_object,
                self._bucket,
                blob_key(sha256),
                extra_headers={"x-amz-checksum-mode": "ENABLED"} if checksums else None,
                expect={"NoSuchKey"},
            )
        except S3Error:
            return None
        if unindexed and foreign_headers(obj.metadata or {}):
            _log.warning("blobs/%s carries headers a direct upload added; not a blob", sha256)
            return None
        return obj

    async def direct_upload(self, sha256: str, size: int, expires: timedelta) -> DirectUpload:
        """Return a presigned PUT of the blob that S3 checks (``s3_presign.py``); raises
        ``InvalidArgument`` for ``expires`` outside S3's 1 second to 7 days."""
        if not timedelta(seconds=1) <= expires <= MAX_URL_TTL:
            raise InvalidArgument("expires", "must be from 1 second to 7 days")
        headers = direct_upload_headers(sha256)
        url: str = await self._call(
            presign_put, self._client, self._bucket, blob_key(sha256), headers, expires
        )
        return DirectUpload(url, headers, datetime.now(UTC) + expires)

    async def verified_size(self, sha256: str) -> int | None:
        """The blob's size if S3 holds it with the SHA-256 it checked on a direct upload."""
        obj = await self._stat_object(sha256, unindexed=True, checksums=True)
        if obj is None or not checked_sha256(obj.metadata or {}, sha256):
            return None  # none, or e.g. a blob a Write stored: its index row says it exists
        return obj.size or 0

    async def create_upload(self, sha256: str) -> str:
        """Open a multipart upload for ``sha256``.

        Returns:
            The S3 upload id; it stays valid across restarts of this server.

        Raises:
            StoreUnavailable: S3 cannot be reached or failed.
        """
        key = blob_key(sha256)
        upload_id: str = await self._call(
            self._client._create_multipart_upload,
            self._bucket,
            key,
            {"Content-Type": "application/octet-stream"},
        )
        return upload_id

    async def upload_part(
        self, sha256: str, upload_id: str, part_number: int, offset: int, data: PartData
    ) -> UploadedPart:
        """Upload one part; re-sending a part number replaces the earlier part.

        Returns:
            The stored part, with the ETag S3 returned.

        Raises:
            InvalidArgument: ``part_number`` outside 1..10000 or a negative ``offset``.
            FailedPrecondition: S3 no longer holds the upload (reason
                ``STORE_UPLOAD_NOT_FOUND``).
            StoreUnavailable: S3 cannot be reached or failed.
        """
        key = blob_key(sha256)
        check_part(part_number, offset)
        if not _is_upload_id(upload_id):
            raise upload_not_found(_STORE, sha256, upload_id)
        try:
            etag: str = await self._call(
                self._upload_checked_part,
                key,
                data,
                upload_id,
                part_number,
                expect={"NoSuchUpload"},
            )
        except S3Error:
            raise upload_not_found(_STORE, sha256, upload_id) from None
        return UploadedPart(part_number, offset, len(data), etag)

    async def complete_upload(
        self, sha256: str, upload_id: str, parts: Sequence[UploadedPart], size: int
    ) -> None:
        """Assemble the parts into the blob and make it visible in one step.

        Completing an upload that was already completed (a retry after a crash) succeeds if the
        blob is stored. A 0-byte blob has no parts: it is written with one empty PUT and the
        multipart upload is aborted.

        Raises:
            FailedPrecondition: The parts do not cover ``[0, size)`` exactly, do not match what
                S3 holds, or S3 no longer holds the upload.
            StoreUnavailable: S3 cannot be reached or failed.
        """
        key = blob_key(sha256)
        ordered = ordered_parts(parts, size)
        if not _is_upload_id(upload_id):
            raise upload_not_found(_STORE, sha256, upload_id)
        if size == 0:
            # S3 needs at least one part to complete a multipart upload; a plain empty PUT is
            # simpler than uploading an empty part and equally atomic.
            await self._call(self._client.put_object, self._bucket, key, io.BytesIO(b""), 0)
            await self.abort_upload(sha256, upload_id)
            return
        existing = await self.stat(sha256, unindexed=True)  # one a direct PUT tainted: replace
        if existing is not None and existing.size == size:
            # An identical upload finished first; keep its object instead of rewriting it under
            # readers that may be streaming it.
            await self.abort_upload(sha256, upload_id)
            return
        s3_parts = [Part(p.part_number, p.etag) for p in ordered]
        try:
            await self._call(
                self._client._complete_multipart_upload,
                self._bucket,
                key,
                upload_id,
                s3_parts,
                expect={"NoSuchUpload", *_BAD_PARTS_CODES},
            )
        except S3Error as exc:
            if exc.code != "NoSuchUpload":
                raise FailedPrecondition(
                    f"the parts of upload {upload_id} do not match the parts the object store "
                    f"holds ({exc.code}); abort the upload and start again",
                    reason="UPLOAD_PARTS_INVALID",
                ) from None
            # Retried after an earlier complete succeeded (the upload is gone, the blob is not).
            done = await self.stat(sha256, unindexed=True)
            if done is not None and done.size == size:
                return
            raise upload_not_found(_STORE, sha256, upload_id) from None

    async def abort_upload(self, sha256: str, upload_id: str) -> None:
        """Discard an upload and its parts; an unknown upload is not an error.

        Raises:
            StoreUnavailable: S3 cannot be reached or failed.
        """
        key = blob_key(sha256)
        if not _is_upload_id(upload_id):
            return  # Not one of ours (e.g. a local-store id from before a change of store).
        with contextlib.suppress(S3Error):
            await self._call(
                self._client._abort_multipart_upload,
                self._bucket,
                key,
                upload_id,
                expect={"NoSuchUpload"},
            )

    async def list_incomplete_uploads(self) -> list[IncompleteUpload]:
        """Return the open multipart uploads of blobs (see the module docstring for MinIO).

        Raises:
            StoreUnavailable: S3 cannot be reached or failed.
        """
        found: dict[str, IncompleteUpload] = {}
        key_marker: str | None = None
        upload_id_marker: str | None = None
        while True:
            # No prefix: MinIO would treat "blobs/sha256/" as one exact key and list nothing.
            result = await self._call(
                self._client._list_multipart_uploads,
                self._bucket,
                key_marker=key_marker,
                upload_id_marker=upload_id_marker,
            )
            for upload in result.uploads:
                match = _KEY_PATTERN.fullmatch(upload.object_name or "")
                if match is None or upload.upload_id is None:
                    continue
                sha256 = match.group(2)
                if match.group(1) != sha256[:2]:
                    continue
                found[upload.upload_id] = IncompleteUpload(
                    sha256, upload.upload_id, _utc(upload.initiated_time)
                )
            if not result.is_truncated or not result.uploads:
                break
            # minio-py 7.2.20 drops NextUploadIdMarker, so continue after the last upload seen.
            last = result.uploads[-1]
            if (last.object_name, last.upload_id) == (key_marker, upload_id_marker):
                break
            key_marker, upload_id_marker = last.object_name, last.upload_id
        return sorted(found.values(), key=lambda u: (u.initiated, u.upload_id))

    async def read(self, sha256: str, offset: int, limit: int) -> AsyncGenerator[BlobChunk, None]:
        """Stream bytes ``[offset, offset+limit)`` (``limit`` 0 = to the end).

        Chunks are ``MAX_CHUNK_SIZE`` bytes except the last. One chunk is read ahead while the
        consumer handles the previous one. Closing the generator early closes the HTTP
        response, also when a read is still running in a worker thread.

        Raises:
            BlobNotFound: No such blob.
            OutOfRange: ``offset`` is past the end (``offset == size`` yields nothing).
            StoreUnavailable: S3 cannot be reached, failed, or ended the download early.
        """
        key = blob_key(sha256)
        length = read_length(sha256, offset, limit, await self._size(sha256))

        if length == 0:
            return  # offset == size: nothing to fetch (S3 would answer 416).

        def open_response() -> tuple[BaseHTTPResponse, int]:
            try:
                response = self._client.get_object(self._bucket, key, offset=offset, length=length)
            except S3Error as exc:
                if exc.code == "NoSuchKey":  # Deleted between the stat and the GET.
                    raise BlobNotFound(sha256) from None
                raise store_error(exc) from exc
            except S3_FAILURES as exc:
                raise store_error(exc) from exc
            return response, length

        async for chunk in stream_chunks(
            self._executor, open_response, read_response, close_response
        ):
            yield chunk

    async def presigned_download_url(self, sha256: str, expires: timedelta) -> str:
        """Return a URL that GETs the blob without credentials until ``expires`` passes.

        Raises:
            InvalidArgument: ``expires`` is under 1 second or over 7 days (S3's limits).
            BlobNotFound: No such blob.
            StoreUnavailable: S3 cannot be reached or failed.
        """
        key = blob_key(sha256)
        if not timedelta(seconds=1) <= expires <= MAX_URL_TTL:
            raise InvalidArgument("expires", "must be from 1 second to 7 days")
        if await self.stat(sha256) is None:
            raise BlobNotFound(sha256)
        # Signing is local, but minio-py may look up the bucket's region first (a request).
        url: str = await self._call(
            self._client.presigned_get_object, self._bucket, key, expires=expires
        )
        return url

    async def delete(self, sha256: str) -> None:
        """Delete the blob; deleting a missing blob is not an error.

        Raises:
            StoreUnavailable: S3 cannot be reached or failed.
        """
        key = blob_key(sha256)
        with contextlib.suppress(S3Error):
            await self._call(self._client.remove_object, self._bucket, key, expect={"NoSuchKey"})

    async def close(self) -> None:
        """Stop the worker threads; calls still queued are cancelled, running ones finish."""
        self._closed = True
        await shutdown(self._executor)

    def _upload_checked_part(
        self, key: str, data: PartData, upload_id: str, part_number: int
    ) -> str:
        """One part with its CRC32C, which S3 checks (s3_parts.py: the payload is not hashed
        again for the signature when the client is an ``UnsignedPartsMinio``). On a store
        thread: the checksum is computed there, not on the event loop."""
        headers: DictType = {CHECKSUM_HEADER: part_checksum(data)}
        # minio-py annotates bytes; it hands the body to urllib3, which sends any buffer.
        body = cast(bytes, data)
        etag: str = self._client._upload_part(
            self._bucket, key, body, headers, upload_id, part_number
        )
        return etag

    async def _size(self, sha256: str) -> int:
        info = await self.stat(sha256)
        if info is None:
            raise BlobNotFound(sha256)
        return info.size

    async def _call(
        self,
        fn: Callable[..., _T],
        /,
        *args: Any,
        expect: Collection[str] = (),
        **kwargs: Any,
    ) -> _T:
        """Run a blocking minio-py call on the store's threads.

        ``S3Error``s whose code is in ``expect`` are re-raised for the caller to handle (e.g.
        ``NoSuchKey`` from ``stat``); every other failure becomes ``StoreUnavailable``.
        """
        if self._closed:
            raise StoreUnavailable("the blob store is shut down")
        # submit_job, not run_in_executor: a store closed meanwhile is StoreUnavailable too.
        job = submit_job(self._executor, functools.partial(fn, *args, **kwargs))
        try:
            return await asyncio.wrap_future(job)
        except S3Error as exc:
            if exc.code in expect:
                raise
            raise store_error(exc) from exc
        except S3_FAILURES as exc:
            raise store_error(exc) from exc


def _utc(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _is_upload_id(upload_id: str) -> bool:
    return _UPLOAD_ID_PATTERN.fullmatch(upload_id) is not None and ".." not in upload_id

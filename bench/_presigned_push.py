"""The other direction of issue 16's target 6: a push that does not go through the server.

A prototype of the direct path, measured beside the SDK's push through ``Write`` and beside
the baseline (SHA-256 + ``put_object``), so the two directions can be weighed by figures:

1. the client hashes each file once, keeping the SHA-256 of the whole file (its content
   address) and a checksum of each 16 MiB part for MinIO to check: its SHA-256, as the issue
   proposes (a second hash of every byte), or a CRC32C, as the registry's own parts carry;
2. the *artifact node* starts a multipart upload under a staging key and presigns a URL per
   part (that is all it does until the end);
3. the client PUTs each part to its URL with ``x-amz-checksum-sha256`` (or ``-crc32c``):
   MinIO refuses a part whose bytes do not match (``XAmzContentChecksumMismatch``);
4. the artifact node completes the upload, reads the object back and computes its SHA-256:
   only when that matches the digest the client claimed may the blob become addressable by it.
   With ``copy`` it then copies the staging object to the digest's key on MinIO (a
   server-side copy) and removes the staging object, which keeps today's storage layout;
   without it the staging object stays where it is, which is what a digest → object-key
   indirection would allow.

The third way, one presigned PUT per file to the digest's own key with its SHA-256 signed into
the URL and checked by MinIO, is what the SDK's push now does (``direct_upload``, the
registry's ``s3_presign.py``): ``bench-pull``'s push rows measure it for real.

The artifact node's steps run in threads of the bench process; each measures its own thread
CPU time, which is reported as the server's and taken out of the client's. Nothing here is
used by the registry: it measures what the direct path would cost.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import cast

import urllib3
from minio import Minio
from minio.commonconfig import ComposeSource
from minio.datatypes import Part

from modelregistry_server.artifacts.adapters.checksums import part_checksum

PART_SIZE = 16 * 1024 * 1024
_READ_BLOCK = 4 * 1024 * 1024


class VerificationFailed(RuntimeError):
    """The object read back does not hash to the digest the client claimed."""


@dataclasses.dataclass
class PresignedPush:
    """What one push wrote and what the artifact node's part of it cost."""

    keys: list[str] = dataclasses.field(default_factory=list)
    server_cpu: float = 0.0
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def server_work(self) -> Iterator[None]:
        """Count the CPU of this thread inside the block as the artifact node's."""
        start = time.thread_time()
        try:
            yield
        finally:
            spent = time.thread_time() - start
            with self._lock:
                self.server_cpu += spent


def _sha256_checksum(data: memoryview | bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


CHECKSUMS: dict[str, tuple[str, Callable[[memoryview | bytes], str]]] = {
    # what the issue names: MinIO checks each part's SHA-256, a second hash of every byte
    "sha256": ("x-amz-checksum-sha256", _sha256_checksum),
    # what the registry's own parts carry (artifacts/adapters/s3_parts.py): a CRC32C
    "crc32c": ("x-amz-checksum-crc32c", part_checksum),
}


def _hash_file(path: Path, checksum: Callable[[memoryview | bytes], str]) -> tuple[str, list[str]]:
    """The file's SHA-256 (hex) and each part's checksum, in one pass."""
    whole = hashlib.sha256()
    parts: list[str] = []
    buffer = bytearray(PART_SIZE)
    view = memoryview(buffer)
    with path.open("rb") as source:
        while n := source.readinto(buffer):
            whole.update(view[:n])
            parts.append(checksum(view[:n]))
    if not parts:  # an empty file is one empty part: S3 wants at least one
        parts.append(checksum(b""))
    return whole.hexdigest(), parts


def _verify(client: Minio, bucket: str, key: str, digest: str) -> None:
    """Read the object back and check its SHA-256 (the artifact node's verification)."""
    hasher = hashlib.sha256()
    response = client.get_object(bucket, key)
    try:
        for block in response.stream(_READ_BLOCK):
            hasher.update(block)
    finally:
        response.close()
        response.release_conn()
    if hasher.hexdigest() != digest:
        raise VerificationFailed(f"{key}: read back {hasher.hexdigest()}, claimed {digest}")


def presigned_push(
    client: Minio, bucket: str, model_dir: Path, parallel: int, *, checksum: str, copy: bool
) -> PresignedPush:
    """Push every file of ``model_dir`` the direct way, ``parallel`` files at once, each part
    with a ``checksum`` (a key of ``CHECKSUMS``) that MinIO checks."""
    result = PresignedPush()
    http = urllib3.PoolManager(maxsize=parallel)
    header, compute = CHECKSUMS[checksum]

    def one(path: Path) -> str:
        digest, part_sums = _hash_file(path, compute)
        staging = f"staging/{uuid.uuid4().hex}"
        with result.server_work():
            upload_id = client._create_multipart_upload(bucket, staging, {})
            urls = [
                client.get_presigned_url(
                    "PUT",
                    bucket,
                    staging,
                    expires=timedelta(hours=1),
                    extra_query_params={"uploadId": upload_id, "partNumber": str(number)},
                )
                for number in range(1, len(part_sums) + 1)
            ]
        parts: list[Part] = []
        buffer = bytearray(PART_SIZE)
        view = memoryview(buffer)
        with path.open("rb") as source:
            for number, (url, part_sum) in enumerate(zip(urls, part_sums, strict=True), 1):
                n = source.readinto(buffer)
                answer = http.request(
                    "PUT",
                    url,
                    # urllib3 sends any bytes-like body as it is; its stubs only name bytes.
                    body=cast(bytes, view[:n]),
                    headers={"Content-Length": str(n), header: part_sum},
                )
                if answer.status != 200:
                    raise RuntimeError(f"part {number} of {path.name}: {answer.status}")
                parts.append(Part(number, str(answer.headers["ETag"]).strip('"')))
        with result.server_work():
            client._complete_multipart_upload(bucket, staging, upload_id, parts)
            _verify(client, bucket, staging, digest)
            if not copy:
                return staging
            final = f"presigned-push/{digest}"
            client.compose_object(bucket, final, [ComposeSource(bucket, staging)])
            client.remove_object(bucket, staging)
            return final

    files = sorted(model_dir.iterdir(), key=lambda p: -p.stat().st_size)
    with ThreadPoolExecutor(parallel, thread_name_prefix="presigned-put") as pool:
        result.keys.extend(pool.map(one, files))
    return result

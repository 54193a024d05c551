"""Part uploads to S3 that hash each byte once: an unsigned payload with a CRC32C checksum.

Over plain HTTP, minio-py signs a request's payload: it computes the SHA-256 of every part body
for the ``x-amz-content-sha256`` header, and MinIO computes it again to check it. The artifact
service already computes the blob's SHA-256 (its content address) over the same bytes, so that
was a second and a third full SHA-256 pass per byte uploaded (bench/README.md, issue 16).

Instead a part is sent with ``x-amz-content-sha256: UNSIGNED-PAYLOAD`` (the headers, the
method, the key, the upload id and the part number are still signed) and an
``x-amz-checksum-crc32c`` header, which S3 checks against the bytes it received and refuses
the part on a mismatch (``XAmzContentChecksumMismatch``): the bytes stored are the bytes sent,
at a fifteenth of the CPU of a SHA-256 (adapters/checksums.py: the CPU's CRC32 instruction).
Whether the *blob* is the right one is still decided by the content address, which the upload
stream verifies before completing the upload.

The checksum is per part and not declared when the upload is created, so the complete request
stays as it is (MinIO accepts this; a store that insists on a declared checksum algorithm, as
AWS S3 may, is not supported by this path: see deploy/docs/operations.md).
"""

from __future__ import annotations

import os
from datetime import datetime

import certifi
import urllib3
from minio import Minio
from minio import time as minio_time
from minio.credentials.credentials import Credentials
from minio.helpers import DictType

CHECKSUM_HEADER = "x-amz-checksum-crc32c"


class UnsignedPartsMinio(Minio):
    """A minio-py client that sends a request carrying a CRC32C checksum header with an
    unsigned payload; every other request is built as minio-py builds it.

    Such a request's body may be a view of a pooled part buffer: urllib3 sends it as it is
    (``Content-Length`` is set here), and a retry sends it again from the start.

    It overrides one private method of the pinned minio-py (7.2.20): the store already calls
    its private multipart methods, and the pin is what keeps that safe.
    """

    def _build_headers(
        self,
        host: str,
        headers: DictType | None = None,
        body: bytes | None = None,
        creds: Credentials | None = None,
    ) -> tuple[DictType, datetime]:
        if not headers or CHECKSUM_HEADER not in headers or creds is None:
            return super()._build_headers(host, headers, body, creds)
        headers = dict(headers)
        headers["Host"] = host
        headers["User-Agent"] = self._user_agent
        headers["Content-Length"] = str(len(body or b""))
        headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        if creds.session_token:
            headers["X-Amz-Security-Token"] = creds.session_token
        date = minio_time.utcnow()
        headers["x-amz-date"] = minio_time.to_amz_date(date)
        return headers, date


def make_client(
    endpoint: str,
    access_key: str,
    secret_key: str,
    secure: bool,
    region: str | None,
    max_workers: int,
) -> UnsignedPartsMinio:
    """The store's minio-py client (see ``S3BlobStore.from_config`` for the arguments)."""
    # minio-py's default pool waits 5 minutes to connect and keeps 10 connections. Fail
    # faster when S3 is down, and keep more connections than threads: an open read holds
    # its connection between chunk reads, while no thread is using it.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10.0, read=120.0),
        maxsize=4 * max_workers,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return UnsignedPartsMinio(
        endpoint,
        access_key=access_key,
        secret_key=secret_key,
        secure=secure,
        region=region,
        http_client=http,
    )

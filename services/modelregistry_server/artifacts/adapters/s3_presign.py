"""Presigned PUTs whose signature covers chosen headers, for direct uploads.

minio-py presigns the ``host`` header only: a client holding such a URL could PUT any bytes
with any headers. A direct upload must store exactly one blob, so its URL also signs:

* ``x-amz-checksum-sha256``: the blob's digest. S3 computes the SHA-256 of the body and refuses
  to store an object that does not match (``XAmzContentChecksumMismatch``);
* ``if-none-match: *``: an existing object is never replaced (``412 PreconditionFailed``);
* ``content-type``: what the registry stores every blob as.

A request without one of them, or with another value, fails the signature. This is SigV4 query
signing ("Authenticating Requests: Using Query Parameters") over the signing helpers of the
pinned minio-py (7.2.20), as ``s3_parts.py`` relies on its private methods.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import timedelta

from minio import Minio, signer
from minio import time as minio_time
from minio.helpers import queryencode

# Headers S3 keeps from a presigned PUT without their being signed, which the registry never
# sets: tags (a lifecycle rule could act on them), encodings and dispositions (a browser or an
# HTTP client fetching the blob would act on them). An object with any of them is not a blob.
_FOREIGN_HEADERS = (
    "x-amz-tagging-count",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "x-amz-website-redirect-location",
)


def foreign_headers(headers: Mapping[str, str]) -> bool:
    """True if a stored object's headers (case-insensitive) hold one the registry never sets."""
    return any(name in headers for name in _FOREIGN_HEADERS)


def _checksum(sha256: str) -> str:
    """A hex digest as S3's ``x-amz-checksum-sha256`` writes it (base64 of the bytes)."""
    return base64.b64encode(bytes.fromhex(sha256)).decode("ascii")


def checked_sha256(headers: Mapping[str, str], sha256: str) -> bool:
    """True if a stored object's headers say S3 checked its SHA-256 and it is ``sha256``."""
    return headers.get("x-amz-checksum-sha256") == _checksum(sha256)


def direct_upload_headers(sha256: str) -> dict[str, str]:
    """The headers a direct upload of the blob ``sha256`` must carry, as signed."""
    return {
        "x-amz-checksum-sha256": _checksum(sha256),
        "if-none-match": "*",
        "content-type": "application/octet-stream",
    }


def presign_put(
    client: Minio, bucket: str, key: str, headers: dict[str, str], expires: timedelta
) -> str:
    """A presigned PUT URL of ``key`` whose signature also covers ``headers``.

    Blocking: minio-py may ask S3 for the bucket's region first (once; it caches it).
    """
    creds = client._provider.retrieve() if client._provider else None
    if creds is None:
        raise ValueError("presigning needs credentials")
    region = client._get_region(bucket)
    url = client._base_url.build(method="PUT", region=region, bucket_name=bucket, object_name=key)
    date = minio_time.utcnow()
    scope = signer._get_scope(date, region, "s3")
    signed = {"host": url.netloc, **{name.lower(): value for name, value in headers.items()}}
    names = sorted(signed)
    signed_names = ";".join(names)
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={queryencode(creds.access_key + '/' + scope)}"
        f"&X-Amz-Date={minio_time.to_amz_date(date)}"
        f"&X-Amz-Expires={int(expires.total_seconds())}"
        f"&X-Amz-SignedHeaders={queryencode(signed_names)}"
    )
    if creds.session_token:
        query += f"&X-Amz-Security-Token={queryencode(creds.session_token)}"
    canonical_headers = "".join(f"{name}:{signed[name].strip()}\n" for name in names)
    # The body is not signed (it cannot be, in a URL): the checksum header stands for it.
    canonical_request = (
        f"PUT\n{url.path}\n{signer._get_canonical_query_string(query)}\n"
        f"{canonical_headers}\n{signed_names}\nUNSIGNED-PAYLOAD"
    )
    string_to_sign = signer._get_string_to_sign(
        date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()
    )
    signature = signer._get_signature(
        signer._get_signing_key(creds.secret_key, date, region, "s3"), string_to_sign
    )
    return url._replace(query=f"{query}&X-Amz-Signature={signature}").geturl()

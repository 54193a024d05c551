"""Blobs: immutable byte strings named only by their sha256 digest."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelregistry_server.artifacts.domain.errors import InvalidArgument, quoted

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
BLOB_NAME_PREFIX = "blobs/"
# S3 refuses multipart parts below 5 MiB (except the last one).
MIN_PART_SIZE = 5 * 1024 * 1024
# Wire chunks: big enough to amortise per-message cost, well below gRPC's 4 MiB limit.
MAX_CHUNK_SIZE = 1024 * 1024
# S3 accepts presigned URLs valid for 1 second up to 7 days.
MAX_URL_TTL = timedelta(days=7)


@dataclass(frozen=True)
class BlobInfo:
    """What the store knows about a stored blob."""

    sha256: str
    size: int
    create_time: datetime

    @property
    def name(self) -> str:
        """The resource name, ``blobs/{sha256}``."""
        return BLOB_NAME_PREFIX + self.sha256


# S3 takes at most 5 GiB in one PUT: bigger blobs are uploaded through Write.
MAX_DIRECT_UPLOAD_SIZE = 5 * 1024**3


@dataclass(frozen=True)
class DirectUpload:
    """A presigned PUT of one whole blob to the store: the URL, the headers it must carry with
    exactly these values (the signature covers them), and when it stops working."""

    url: str
    headers: dict[str, str]
    expire_time: datetime


@dataclass(frozen=True)
class UploadedPart:
    """A durably stored part of an upload in progress."""

    part_number: int
    offset: int
    size: int
    etag: str


# A part's bytes as the stores take them: a view of a pooled part buffer (app/part_buffers.py)
# is written as it is, never copied into a ``bytes`` first.
PartData = bytes | memoryview

# A chunk of a blob being read (at most MAX_CHUNK_SIZE): a slice of a larger block the store
# read at once (adapters/blob_io.py, READ_BLOCK_SIZE), handed on without a copy.
BlobChunk = bytes | memoryview


@dataclass(frozen=True)
class IncompleteUpload:
    """An upload a store holds open (a multipart upload, or a partial file)."""

    sha256: str
    upload_id: str
    initiated: datetime


def validate_sha256(value: str, field: str = "sha256") -> str:
    """Return ``value`` if it is 64 lowercase hex characters, else raise ``InvalidArgument``."""
    if not SHA256_PATTERN.fullmatch(value):
        raise InvalidArgument(
            field,
            f"{quoted(value, 80)} is not a sha256 digest: expected 64 lowercase hex characters",
        )
    return value


def blob_key(sha256: str) -> str:
    """The storage key of a blob, derived from its digest alone (never from a client path).

    The two-character fan-out keeps directory listings small on the local store.
    """
    validate_sha256(sha256)
    return f"blobs/sha256/{sha256[:2]}/{sha256}"


def parse_blob_name(name: str, field: str = "name") -> str:
    """Return the digest in a ``blobs/{sha256}`` resource name."""
    if not name.startswith(BLOB_NAME_PREFIX):
        raise InvalidArgument(
            field, f"{quoted(name)} is not a blob name; expected 'blobs/{{sha256}}'"
        )
    return validate_sha256(name[len(BLOB_NAME_PREFIX) :], field)

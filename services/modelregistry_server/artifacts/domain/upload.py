"""Upload sessions: the durable state of one resumable blob upload."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from modelregistry_server.artifacts.domain.blob import MIN_PART_SIZE, DirectUpload, UploadedPart
from modelregistry_server.artifacts.domain.errors import (
    InvalidArgument,
    NotSessionOwner,
    ResourceExhausted,
    quoted,
)

SESSION_NAME_PREFIX = "uploadSessions/"
DEFAULT_PART_SIZE = 16 * 1024 * 1024
# S3 allows at most 10000 parts per multipart upload; bigger blobs get bigger parts.
MAX_PARTS = 10_000
# S3's largest object.
MAX_BLOB_SIZE = 5 * 1024**4
_UUID_HEX = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class UploadSession:
    """One upload of one blob, resumable from ``committed_size``.

    ``hash_state`` is the SHA-256 state after the first ``committed_size`` bytes; ``parts`` are
    the durably stored parts covering exactly those bytes.
    """

    session_id: str
    sha256: str
    size: int
    part_size: int
    committed_size: int
    complete: bool
    create_time: datetime
    expire_time: datetime
    upload_id: str | None = None
    hash_state: bytes | None = None
    parts: tuple[UploadedPart, ...] = field(default_factory=tuple)
    # The principal that created it: only it may write to it or ask how far it got.
    owner: str = ""
    # Returned by CreateUploadSession when asked for and offered; never stored (the URL is
    # made anew for each request, and the session's state does not depend on it).
    direct_upload: DirectUpload | None = None

    def check_owner(self, principal: str | None) -> None:
        """Refuse anyone but the session's creator (``None``: the registry itself).

        Raises:
            NotSessionOwner: Another principal's session.
        """
        if principal is not None and self.owner and principal != self.owner:
            raise NotSessionOwner(self.name)

    @property
    def name(self) -> str:
        """The resource name, ``uploadSessions/{id}``."""
        return SESSION_NAME_PREFIX + self.session_id


def part_size_for(size: int, preferred: int = DEFAULT_PART_SIZE) -> int:
    """Pick a part size ≥ ``preferred`` that fits ``size`` into ``MAX_PARTS`` parts (whole MiB)."""
    needed = -(-size // MAX_PARTS)
    mib = 1024 * 1024
    return max(preferred, MIN_PART_SIZE, -(-needed // mib) * mib)


def new_session_id() -> str:
    """A fresh session id (uuid4 hex)."""
    return uuid.uuid4().hex


def parse_session_name(name: str, field_name: str = "upload_session") -> str:
    """Return the id in ``uploadSessions/{id}``."""
    if not name:
        raise InvalidArgument(field_name, "is required (the first WriteRequest must name it)")
    session_id = name.removeprefix(SESSION_NAME_PREFIX)
    if not name.startswith(SESSION_NAME_PREFIX) or not _UUID_HEX.fullmatch(session_id):
        raise InvalidArgument(
            field_name,
            f"{quoted(name)} is not an upload session name ('uploadSessions/<32 hex>')",
        )
    return session_id


UPLOAD_SESSIONS_EXHAUSTED = "UPLOAD_SESSIONS_EXHAUSTED"
UPLOAD_BYTES_EXHAUSTED = "UPLOAD_BYTES_EXHAUSTED"


@dataclass(frozen=True)
class UploadQuota:
    """What one principal's unfinished upload sessions may hold at once: sessions, and bytes
    declared but not yet written (a session's size minus its committed size).

    Without it, one caller could open sessions without end, each reserving a row and, for the
    local store, a promise of disk space that everyone else then lacks.
    """

    max_sessions: int
    max_unwritten_bytes: int

    def check(self, owner: str, open_sessions: int, unwritten: int, new_size: int) -> None:
        """Refuse a new session of ``new_size`` bytes beside ``owner``'s current usage.

        Raises:
            ResourceExhausted: ``UPLOAD_SESSIONS_EXHAUSTED`` or ``UPLOAD_BYTES_EXHAUSTED``.
        """
        if open_sessions >= self.max_sessions:
            raise ResourceExhausted(
                f"{quoted(owner)} has {open_sessions} unfinished upload sessions, the limit per "
                "principal (--max-upload-sessions-per-principal); finish them, or wait until "
                "they expire",
                reason=UPLOAD_SESSIONS_EXHAUSTED,
                retry_after_s=30.0,
            )
        if unwritten + new_size > self.max_unwritten_bytes:
            raise ResourceExhausted(
                f"{quoted(owner)}'s unfinished upload sessions already declare {unwritten} "
                f"bytes not yet written; {new_size} more would pass the limit of "
                f"{self.max_unwritten_bytes} per principal (--max-unwritten-gib-per-principal)",
                reason=UPLOAD_BYTES_EXHAUSTED,
                retry_after_s=30.0,
            )

"""Errors the artifact use cases and stores raise: the kernel's, plus the artifact-shaped ones.

Every class derives from ``common.kernel.errors`` (one status code each, translated once at
the rpc boundary); ``reason`` goes into ``google.rpc.ErrorInfo``.
"""

from __future__ import annotations

from modelregistry_server.common.kernel import errors as kernel
from modelregistry_server.common.kernel.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RegistryError,
    Unavailable,
    storage_unavailable,
)

BLOB = "BLOB"
UPLOAD_SESSION = "UPLOAD_SESSION"


class BlobNotFound(NotFound):
    """No blob with that digest is stored."""

    def __init__(self, sha256: str) -> None:
        super().__init__(BLOB, f"blobs/{sha256}")


class BlobNotInVersion(PermissionDenied):
    """The model version a read names does not hold the blob (or does not exist): the same
    answer either way, and whatever other models hold, so nothing leaks about their files."""

    def __init__(self, version_name: str, sha256: str) -> None:
        RegistryError.__init__(
            self,
            f"{version_name} does not hold blob {sha256}; read only the blobs of the version "
            "you pull",
            metadata={"model_version": version_name, "sha256": sha256},
        )
        self.permission = "models.read"


class UploadSessionNotFound(NotFound):
    """No upload session with that name (it may have expired and been swept)."""

    def __init__(self, name: str) -> None:
        super().__init__(UPLOAD_SESSION, name, detail="upload sessions expire; create a new one")


class OutOfRange(kernel.OutOfRange):
    """A read offset lies past the end of the blob."""

    reason = "READ_OFFSET_OUT_OF_RANGE"


class PresignNotSupported(FailedPrecondition):
    """The configured store cannot hand out URLs (the local-directory store)."""

    reason = "DOWNLOAD_URL_UNSUPPORTED"


class StoreUnavailable(Unavailable):
    """The blob store could not be reached or failed; the call may be retried."""

    reason = "STORAGE_UNAVAILABLE"


__all__ = [
    "BLOB",
    "UPLOAD_SESSION",
    "BlobNotFound",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "OutOfRange",
    "PresignNotSupported",
    "RegistryError",
    "StoreUnavailable",
    "Unavailable",
    "UploadSessionNotFound",
    "storage_unavailable",
]

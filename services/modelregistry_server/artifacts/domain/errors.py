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
    ResourceExhausted,
    Unavailable,
    quoted,
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


class ModelVersionNotFound(NotFound):
    """An upload names a version that does not exist (or was deleted)."""

    def __init__(self, name: str) -> None:
        super().__init__("MODEL_VERSION", name)


class VersionNotPending(FailedPrecondition):
    """An upload names a version whose files can no longer change."""

    reason = "VERSION_NOT_PENDING"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} is not PENDING: its files can no longer change; create a new version "
            "and upload to it",
            metadata={"model_version": name},
        )


class UploadSessionNotFound(NotFound):
    """No upload session with that name (it may have expired and been swept)."""

    def __init__(self, name: str) -> None:
        super().__init__(UPLOAD_SESSION, name, detail="upload sessions expire; create a new one")


class NotSessionOwner(kernel.RegistryError):
    """An upload session of another principal: nobody may write to someone else's upload."""

    code = "PERMISSION_DENIED"
    reason = "PERMISSION_DENIED"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} belongs to another principal; create an upload session of your own",
            metadata={"resource": name},
        )


class OutOfRange(kernel.OutOfRange):
    """A read offset lies past the end of the blob."""

    reason = "READ_OFFSET_OUT_OF_RANGE"


class PresignNotSupported(FailedPrecondition):
    """The configured store cannot hand out URLs (the local-directory store)."""

    reason = "DOWNLOAD_URL_UNSUPPORTED"


class DirectUploadMissing(FailedPrecondition):
    """``FinishDirectUpload`` before the store holds the blob the session's URL was for."""

    reason = "DIRECT_UPLOAD_MISSING"

    def __init__(self, session: str, sha256: str) -> None:
        super().__init__(
            f"the object store does not hold blobs/{sha256} yet: PUT the blob to the URL "
            f"{session} was created with (it must answer 200) before finishing, or upload it "
            "with Write",
            metadata={"resource": session},
        )


class StoreUnavailable(Unavailable):
    """The blob store could not be reached or failed; the call may be retried."""

    reason = "STORAGE_UNAVAILABLE"


__all__ = [
    "BLOB",
    "UPLOAD_SESSION",
    "BlobNotFound",
    "DirectUploadMissing",
    "FailedPrecondition",
    "InvalidArgument",
    "ModelVersionNotFound",
    "NotFound",
    "NotSessionOwner",
    "OutOfRange",
    "PresignNotSupported",
    "RegistryError",
    "ResourceExhausted",
    "StoreUnavailable",
    "Unavailable",
    "UploadSessionNotFound",
    "VersionNotPending",
    "quoted",
    "storage_full",
    "storage_unavailable",
]


STORAGE_FULL = "STORAGE_FULL"


def storage_full(free: int, needed: int, reserve: int) -> ResourceExhausted:
    """The error when ``needed`` more bytes would leave less than ``reserve`` free on disk."""
    return ResourceExhausted(
        f"the blob store's disk has {free} bytes free; {needed} more would eat into the "
        f"{reserve} bytes kept free for everyone (--disk-reserve-mib); try again once space "
        "is freed (garbage collection, or a larger disk)",
        reason=STORAGE_FULL,
        retry_after_s=60.0,
    )

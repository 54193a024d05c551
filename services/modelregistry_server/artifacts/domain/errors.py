"""Errors the artifact use cases and stores raise. The rpc layer maps each to one status."""

from __future__ import annotations

from collections.abc import Mapping


class ArtifactError(Exception):
    """Base class of the artifact domain errors. ``reason`` goes into ``ErrorInfo``."""

    reason = "ARTIFACT_ERROR"

    def __init__(
        self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(ArtifactError):
    """A request field breaks a rule."""

    reason = "FIELD_INVALID"

    def __init__(
        self,
        field: str,
        rule: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            f"{field}: {rule}", reason=reason, metadata={"field": field, **(metadata or {})}
        )
        self.field = field
        self.rule = rule


class BlobNotFound(ArtifactError):
    """No blob with that digest is stored."""

    reason = "BLOB_NOT_FOUND"

    def __init__(self, sha256: str) -> None:
        super().__init__(f"blobs/{sha256} not found", metadata={"resource": f"blobs/{sha256}"})


class UploadSessionNotFound(ArtifactError):
    """No upload session with that name (it may have expired and been swept)."""

    reason = "UPLOAD_SESSION_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} not found (upload sessions expire; create a new one)",
            metadata={"resource": name},
        )


class OutOfRange(ArtifactError):
    """A read offset lies past the end of the blob."""

    reason = "READ_OFFSET_OUT_OF_RANGE"


class FailedPrecondition(ArtifactError):
    """The request is valid but the current state does not allow it."""

    reason = "FAILED_PRECONDITION"


class PresignNotSupported(FailedPrecondition):
    """The configured store cannot hand out URLs (the local-directory store)."""

    reason = "DOWNLOAD_URL_UNSUPPORTED"


class StoreUnavailable(ArtifactError):
    """The blob store could not be reached or failed; the call may be retried."""

    reason = "STORAGE_UNAVAILABLE"

"""Errors the metadata use cases raise. The rpc layer maps each class to one gRPC status.

``reason`` is the UPPER_SNAKE ``google.rpc.ErrorInfo.reason`` clients can switch on; the
message is a sentence written for a person.
"""

from __future__ import annotations

from collections.abc import Mapping


class MetadataError(Exception):
    """Base class of the metadata domain errors."""

    reason = "METADATA_ERROR"

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(MetadataError):
    """A request field breaks a rule; ``field`` names it and ``rule`` says which rule."""

    reason = "FIELD_INVALID"

    def __init__(self, field: str, rule: str, *, reason: str = "FIELD_INVALID") -> None:
        super().__init__(f"{field}: {rule}", metadata={"field": field, "rule": rule})
        self.field = field
        self.rule = rule
        self.reason = reason


def _resource_kind(resource: str) -> str:
    # The reason names the kind of resource, which the resource name's shape tells.
    if "/aliases/" in resource:
        return "ALIAS"
    if "/versions/" in resource:
        return "MODEL_VERSION"
    return "MODEL"


class NotFound(MetadataError):
    """The named resource does not exist (or was deleted)."""

    reason = "NOT_FOUND"

    def __init__(self, resource: str) -> None:
        super().__init__(f"{resource} not found", metadata={"resource": resource})
        self.resource = resource
        self.reason = f"{_resource_kind(resource)}_NOT_FOUND"


class AlreadyExists(MetadataError):
    """A resource with that name exists already."""

    reason = "ALREADY_EXISTS"

    def __init__(self, resource: str) -> None:
        super().__init__(f"{resource} already exists", metadata={"resource": resource})
        self.resource = resource
        self.reason = f"{_resource_kind(resource)}_ALREADY_EXISTS"


class EtagMismatch(MetadataError):
    """The caller's etag is stale: someone changed the resource since the caller read it."""

    reason = "ETAG_MISMATCH"

    def __init__(self, resource: str, given: str, current: str) -> None:
        super().__init__(
            f"{resource} was modified since it was read (etag {given} is stale, current is "
            f"{current}); read it again and retry",
            metadata={"resource": resource, "current_etag": current},
        )


class FailedPrecondition(MetadataError):
    """The request is valid but the system is not in a state that allows it."""

    reason = "FAILED_PRECONDITION"

    def __init__(self, message: str, *, reason: str = "FAILED_PRECONDITION") -> None:
        super().__init__(message)
        self.reason = reason


class NotImplementedYet(MetadataError):
    """A part of the API contract that this server version does not serve yet."""

    reason = "NOT_IMPLEMENTED"


class Unavailable(MetadataError):
    """A service the metadata service depends on could not be reached; retrying may help."""

    reason = "UNAVAILABLE"

    def __init__(self, message: str, *, reason: str = "UNAVAILABLE") -> None:
        super().__init__(message)
        self.reason = reason

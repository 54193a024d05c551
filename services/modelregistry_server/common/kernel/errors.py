"""The error kernel: the base error types every layer of both services raises.

Each class stands for one gRPC status code (``code``, the code's name as a plain string so
this module needs nothing but the standard library); ``common.rpc.status`` turns any of them
into a rich status, once, at the rpc boundary. ``reason`` is the UPPER_SNAKE
``google.rpc.ErrorInfo.reason`` clients switch on (the catalogue is ``ErrorReason`` in the
protos); ``message`` is one sentence for a person; ``metadata`` names the resource or field.

Services subclass these for errors with a fixed shape (``BlobNotFound``, ``EtagMismatch``)
but never invent a new status: a new kind of failure picks the class whose code fits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

QUOTE_LIMIT = 64


def quoted(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``repr(text)`` for an error message, cut to its first ``limit`` characters.

    Every message that echoes what a caller sent goes through here, so a megabyte-long id
    comes back as the repr of its first 64 characters followed by ``… (1048576 characters)``,
    not as a megabyte: the rule still reads well and the reply stays small.
    """
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"


class RegistryError(Exception):
    """Base class of every error a client may see; anything else reaching the rpc layer is a bug."""

    code: ClassVar[str] = "UNKNOWN"
    reason: str = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(RegistryError):
    """A request field breaks a rule; ``field`` names it and ``rule`` says which rule."""

    code = "INVALID_ARGUMENT"
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
            f"{field}: {rule}",
            reason=reason,
            metadata={"field": field, "rule": rule, **(metadata or {})},
        )
        self.field = field
        self.rule = rule


class NotFound(RegistryError):
    """The resource ``name`` of kind ``kind`` (``MODEL``, ``BLOB``, ...) does not exist.

    The reason is ``<kind>_NOT_FOUND``; ``detail`` may add what the caller can do about it.
    """

    code = "NOT_FOUND"

    def __init__(self, kind: str, name: str, *, detail: str = "") -> None:
        message = f"{name} not found" + (f" ({detail})" if detail else "")
        super().__init__(message, reason=f"{kind}_NOT_FOUND", metadata={"resource": name})
        self.kind = kind
        self.name = name
        self.resource = name


class AlreadyExists(RegistryError):
    """A resource of kind ``kind`` named ``name`` exists (reason ``<kind>_ALREADY_EXISTS``)."""

    code = "ALREADY_EXISTS"

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(
            f"{name} already exists", reason=f"{kind}_ALREADY_EXISTS", metadata={"resource": name}
        )
        self.kind = kind
        self.name = name
        self.resource = name


class FailedPrecondition(RegistryError):
    """The request is valid, but the resource's state does not allow it now."""

    code = "FAILED_PRECONDITION"
    reason = "FAILED_PRECONDITION"


class Aborted(RegistryError):
    """A concurrent change won: the caller should read again and retry."""

    code = "ABORTED"
    reason = "CONCURRENT_MODIFICATION"


class EtagMismatch(Aborted):
    """The caller's etag is stale: someone changed the resource since the caller read it."""

    reason = "ETAG_MISMATCH"

    def __init__(self, resource: str, given: str, current: str) -> None:
        super().__init__(
            f"{resource} was modified since it was read (etag {given} is stale, current is "
            f"{current}); read it again and retry",
            metadata={"resource": resource, "current_etag": current},
        )


class OutOfRange(RegistryError):
    """A position (an offset, an event id) lies outside what exists."""

    code = "OUT_OF_RANGE"
    reason = "OUT_OF_RANGE"


class ResourceExhausted(RegistryError):
    """A bound on what one caller (or the whole server) may hold at once was reached.

    ``retry_after_s`` is how long the caller should wait before trying again; the status
    carries it as a ``google.rpc.RetryInfo``, which the SDK honours.
    """

    code = "RESOURCE_EXHAUSTED"
    reason = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        retry_after_s: float = 1.0,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after_s = retry_after_s


class Unavailable(RegistryError):
    """Something the service depends on cannot be reached now; the call may be retried."""

    code = "UNAVAILABLE"
    reason = "UNAVAILABLE"


class Unauthenticated(RegistryError):
    """The call carries no credential, or one the registry does not accept.

    The message says how to get a credential and nothing that helps guessing one.
    """

    code = "UNAUTHENTICATED"
    reason = "TOKEN_INVALID"


class PermissionDenied(RegistryError):
    """The caller is authenticated but holds no binding that allows this."""

    code = "PERMISSION_DENIED"
    reason = "PERMISSION_DENIED"

    def __init__(self, permission: str, resource: str) -> None:
        super().__init__(
            f"permission {permission} on {resource} is required; ask an admin for a role "
            "binding (`modelregistry access grant`)",
            metadata={"permission": permission, "resource": resource},
        )
        self.permission = permission


class Unimplemented(RegistryError):
    """A part of the API contract this server version does not serve yet."""

    code = "UNIMPLEMENTED"
    reason = "NOT_IMPLEMENTED"


DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
CONCURRENT_MODIFICATION = "CONCURRENT_MODIFICATION"


def database_unavailable(what: str) -> Unavailable:
    """The error for a database that refused, dropped or timed out a call (``what`` says how)."""
    return Unavailable(
        f"the registry's database is unavailable ({what}); retry shortly",
        reason=DATABASE_UNAVAILABLE,
    )


def storage_unavailable(what: str) -> Unavailable:
    """The error for a blob store that could not be reached or failed (``what`` says how)."""
    return Unavailable(
        f"the registry's blob storage is unavailable ({what}); retry shortly",
        reason=STORAGE_UNAVAILABLE,
    )


def concurrent_modification() -> Aborted:
    """The error for a transaction the database aborted because a concurrent one conflicted."""
    return Aborted(
        "a concurrent change to the same records won; read again and retry",
        reason=CONCURRENT_MODIFICATION,
    )

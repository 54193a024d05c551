"""Typed exceptions: one class per gRPC status code, plus the client's own failures.

Every error the SDK raises is a :class:`RegistryError`. Server errors keep the status code, the
server's sentence and the ``google.rpc.ErrorInfo`` reason and metadata, so callers can branch on
``exc.reason`` (e.g. ``"ETAG_MISMATCH"``) without parsing messages. A ``google.rpc.RetryInfo``
detail becomes ``exc.retry_delay_s``, the pause the server asked for before a retry.
``exit_code`` is what the CLI exits with, so scripts can tell "not found" from "server down"
without reading stderr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

import grpc
import grpc.aio
from google.rpc import error_details_pb2
from grpc_status import rpc_status

# The ErrorInfo domain of every error the registry itself raises.
DOMAIN = "modelregistry"

# Exit codes of the CLI, by error class. 2 is argparse's usage error, so a bad flag and an invalid
# argument the server rejects share it.
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNAVAILABLE = 5
EXIT_INTEGRITY = 6
EXIT_PERMISSION = 7


class RegistryError(Exception):
    """Base class of every error the SDK raises.

    Attributes:
        message: The server's sentence (or the client's own).
        reason: The ``google.rpc.ErrorInfo`` reason, e.g. ``"MODEL_NOT_FOUND"``; empty without
            one.
        domain: The ErrorInfo domain: ``"modelregistry"`` for the registry's own errors, empty
            for gRPC's (a connection failure, a message over the size limit).
        metadata: The ErrorInfo metadata, e.g. ``{"resource": "models/m"}``.
        retry_delay_s: The pause the server asked for before a retry (a ``google.rpc.RetryInfo``
            detail), in seconds; None when it sent none.
    """

    exit_code = EXIT_ERROR
    code: grpc.StatusCode | None = None

    def __init__(
        self,
        message: str,
        *,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
        code: grpc.StatusCode | None = None,
        domain: str = "",
        retry_delay_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.retry_delay_s = retry_delay_s
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidArgumentError(RegistryError):
    """The request was malformed: a bad reference, name, filter or field value."""

    exit_code = EXIT_USAGE
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(RegistryError):
    """The model, version, alias or blob does not exist."""

    exit_code = EXIT_NOT_FOUND
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(RegistryError):
    """The resource to create exists already."""

    exit_code = EXIT_CONFLICT
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(RegistryError):
    """The resource is not in a state that allows the call (e.g. a version not READY)."""

    exit_code = EXIT_CONFLICT
    code = grpc.StatusCode.FAILED_PRECONDITION


class ConflictError(RegistryError):
    """A concurrent change won (ABORTED: a stale etag, or a ``set_alias`` whose
    ``expected_version`` is no longer where the alias points); re-read and retry."""

    exit_code = EXIT_CONFLICT
    code = grpc.StatusCode.ABORTED


class OutOfRangeError(RegistryError):
    """An offset or range beyond the end of a blob."""

    code = grpc.StatusCode.OUT_OF_RANGE


class PermissionDeniedError(RegistryError):
    """The caller may not do this."""

    exit_code = EXIT_PERMISSION
    code = grpc.StatusCode.PERMISSION_DENIED


class UnauthenticatedError(RegistryError):
    """The caller did not prove who it is."""

    exit_code = EXIT_PERMISSION
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhaustedError(RegistryError):
    """A limit was hit: the registry's per-caller limits (concurrent streams, upload sessions,
    watch streams; ``domain`` is ``"modelregistry"``, often with ``retry_delay_s``), which the
    SDK retries with backoff before raising this, or gRPC's message size limit (no ``domain``),
    which no retry can help and which is raised at once."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(RegistryError):
    """The server could not be reached, even after retries."""

    exit_code = EXIT_UNAVAILABLE
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(RegistryError):
    """The call did not finish within its deadline."""

    exit_code = EXIT_UNAVAILABLE
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class CancelledError(RegistryError):
    """The call was cancelled."""

    code = grpc.StatusCode.CANCELLED


class InternalError(RegistryError):
    """A bug or an unexpected failure on the server; its log has the details."""

    code = grpc.StatusCode.INTERNAL


class IntegrityError(RegistryError):
    """Downloaded bytes do not match the digest the registry recorded for them."""

    exit_code = EXIT_INTEGRITY


class InvalidResponseError(IntegrityError):
    """The registry's answer breaks a rule the client relies on, so it is not acted upon.

    Raised by ``pull`` before it writes anything: a manifest path that is not a safe relative
    path (reason ``MANIFEST_INVALID``, the server's own rules), a malformed digest, or a version
    that is not what the reference asked for (``RESPONSE_INVALID``: another model, another
    number, a malformed name or uid). A registry never sends one; an impostor or a broken proxy
    might.
    """


class UnsafeDestinationError(FailedPreconditionError):
    """``pull`` would have to write through a symbolic link, or over a folder, to place a file.

    Reason ``DESTINATION_UNSAFE``. Raised before anything is written; remove the link (or
    choose another ``dest``) and pull again.
    """


class NotCachedError(NotFoundError):
    """Offline mode is on and the reference (or a file of it) is not in the local cache."""


# Every class above that stands for a status code (NotCachedError and UnsafeDestinationError are
# refinements the server never sends, so only direct subclasses count).
_BY_CODE: dict[grpc.StatusCode, type[RegistryError]] = {
    cls.code: cls for cls in RegistryError.__subclasses__() if cls.code is not None
}


def from_rpc_error(exc: grpc.RpcError, target: str = "") -> RegistryError:
    """Translate a failed gRPC call into the matching :class:`RegistryError` subclass."""
    # A sync stub's error is a grpc.Call; grpc.aio's AioRpcError has the same accessors but is
    # not one, and without this its errors would all become untyped (and never retried).
    if not isinstance(exc, grpc.Call | grpc.aio.AioRpcError):
        return RegistryError("unknown error")
    code = exc.code()
    details = exc.details() or ""
    info = _status_details(exc)
    reason = info.reason
    if code == grpc.StatusCode.UNAVAILABLE and not reason:
        # Transport failures carry gRPC's own wording ("failed to connect to all addresses;
        # last error: ..."): say what it means for the user first.
        where = f" at {target}" if target else ""
        message = f"cannot reach the registry{where} ({_first_line(details)})"
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED and not reason:
        message = "the registry did not answer within the deadline"
    else:
        message = details or (code.name.lower().replace("_", " ") if code else "unknown error")
    cls = _BY_CODE.get(code, RegistryError)
    return cls(
        message,
        reason=reason,
        metadata=info.metadata,
        code=code,
        domain=info.domain,
        retry_delay_s=info.retry_delay_s,
    )


@dataclass(frozen=True)
class _Details:
    """What the rich status details (``grpc-status-details-bin``) of a failed call say."""

    reason: str = ""
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    retry_delay_s: float | None = None


def _status_details(call: grpc.Call | grpc.aio.AioRpcError) -> _Details:
    """The call's ``google.rpc.ErrorInfo`` and ``google.rpc.RetryInfo`` details, if any."""
    try:
        # from_call only reads code, details and trailing metadata: AioRpcError has them.
        status = rpc_status.from_call(cast(grpc.Call, call))
    except ValueError:  # a status whose details do not match its code: ignore the details
        return _Details()
    error_info: error_details_pb2.ErrorInfo | None = None
    retry_delay_s: float | None = None
    for detail in status.details if status is not None else ():
        if error_info is None and detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            error_info = error_details_pb2.ErrorInfo()
            detail.Unpack(error_info)
        elif retry_delay_s is None and detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry_info = error_details_pb2.RetryInfo()
            detail.Unpack(retry_info)
            delay = retry_info.retry_delay
            # A negative hint means "now"; the retry loops cap long ones (RetryPolicy).
            retry_delay_s = max(0.0, delay.seconds + delay.nanos / 1e9)
    if error_info is None:
        return _Details(retry_delay_s=retry_delay_s)
    return _Details(error_info.reason, error_info.domain, dict(error_info.metadata), retry_delay_s)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no details"

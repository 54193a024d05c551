"""The one mapping from artifact domain errors to gRPC status codes."""

from __future__ import annotations

import grpc

from modelregistry_server.artifacts.domain import errors
from modelregistry_server.common.rpc_errors import domain_error_status

_CODES: list[tuple[type[Exception], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.BlobNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.UploadSessionNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.OutOfRange, grpc.StatusCode.OUT_OF_RANGE),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
]


def to_status(exc: Exception) -> grpc.Status | None:
    """Return the status for a artifacts domain error, or None for anything else (a bug)."""
    return domain_error_status(exc, _CODES)

"""The one mapping from metadata domain errors to gRPC status codes."""

from __future__ import annotations

import grpc

from modelregistry_server.common.rpc_errors import domain_error_status
from modelregistry_server.metadata.domain import errors

_CODES: list[tuple[type[Exception], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.EtagMismatch, grpc.StatusCode.ABORTED),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.NotImplementedYet, grpc.StatusCode.UNIMPLEMENTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
]


def to_status(exc: Exception) -> grpc.Status | None:
    """Return the status for a metadata domain error, or None for anything else (a bug)."""
    return domain_error_status(exc, _CODES)

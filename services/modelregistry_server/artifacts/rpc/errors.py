"""The one mapping from artifact domain errors to gRPC status codes."""

from __future__ import annotations

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from modelregistry_server.artifacts.domain import errors
from modelregistry_server.common.rpc_errors import rich_status

_CODES: list[tuple[type[errors.ArtifactError], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.BlobNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.UploadSessionNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.OutOfRange, grpc.StatusCode.OUT_OF_RANGE),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
]


def to_status(exc: Exception) -> grpc.Status | None:
    """Return the status for an artifact domain error, or None for anything else (a bug)."""
    if not isinstance(exc, errors.ArtifactError):
        return None
    extra: list[Message] = []
    if isinstance(exc, errors.InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=exc.field, description=exc.rule
        )
        extra.append(error_details_pb2.BadRequest(field_violations=[violation]))
    for error_type, code in _CODES:
        if isinstance(exc, error_type):
            return rich_status(code, exc.message, exc.reason, exc.metadata, extra)
    return None

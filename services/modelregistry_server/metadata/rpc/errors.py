"""The one mapping from metadata domain errors to gRPC status codes."""

from __future__ import annotations

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from modelregistry_server.common.rpc_errors import rich_status
from modelregistry_server.metadata.domain import errors

_CODES: list[tuple[type[errors.MetadataError], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.EtagMismatch, grpc.StatusCode.ABORTED),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.NotImplementedYet, grpc.StatusCode.UNIMPLEMENTED),
]


def to_status(exc: Exception) -> grpc.Status | None:
    """Return the status for a metadata domain error, or None for anything else (a bug)."""
    if not isinstance(exc, errors.MetadataError):
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

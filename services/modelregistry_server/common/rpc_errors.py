"""Rich gRPC error statuses: a status code, a sentence, and ``google.rpc.ErrorInfo``.

Both services translate their domain errors through here, once, at the rpc boundary.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from modelregistry_server.common.telemetry import current_trace_id

ERROR_DOMAIN = "modelregistry"
_log = logging.getLogger(__name__)


def rich_status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: Mapping[str, str] | None = None,
    extra_details: Sequence[Message] = (),
) -> grpc.Status:
    """Build a status carrying an ``ErrorInfo`` with ``reason`` and ``metadata``.

    ``extra_details`` are further ``google.rpc`` details (BadRequest, PreconditionFailure).
    """
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata or {})
    details = []
    for message_detail in (info, *extra_details):
        packed = any_pb2.Any()
        packed.Pack(message_detail)
        details.append(packed)
    status = status_pb2.Status(code=code.value[0], message=message, details=details)
    return rpc_status.to_status(status)


def internal_error_status(exc: BaseException) -> grpc.Status:
    """Log an unexpected exception and return a status that reveals nothing internal."""
    trace_id = current_trace_id()
    _log.exception("internal error: %s", type(exc).__name__)
    message = "internal error; the server logged the details"
    if trace_id:
        message += f" under trace id {trace_id}"
    return rich_status(grpc.StatusCode.INTERNAL, message, "INTERNAL", {"trace_id": trace_id})


def unimplemented_status(method: str) -> grpc.Status:
    """The status for a method this server version does not serve yet."""
    return rich_status(
        grpc.StatusCode.UNIMPLEMENTED,
        f"{method} is part of the API but not implemented in this server version yet",
        "NOT_IMPLEMENTED",
        {"method": method},
    )


def domain_error_status(
    exc: Exception, codes: Sequence[tuple[type[Exception], grpc.StatusCode]]
) -> grpc.Status | None:
    """Map a domain error to its status through ``codes`` (first matching class wins).

    Domain errors carry ``message``, ``reason`` and ``metadata``; one with ``field`` and
    ``rule`` (an invalid argument) also gets a ``google.rpc.BadRequest`` field violation.
    Returns None for an exception no entry matches, which the caller treats as a bug.
    """
    for error_type, code in codes:
        if isinstance(exc, error_type):
            extra: list[Message] = []
            field, rule = getattr(exc, "field", None), getattr(exc, "rule", None)
            if isinstance(field, str) and isinstance(rule, str):
                violation = error_details_pb2.BadRequest.FieldViolation(
                    field=field, description=rule
                )
                extra.append(error_details_pb2.BadRequest(field_violations=[violation]))
            return rich_status(
                code,
                getattr(exc, "message", str(exc)),
                getattr(exc, "reason", "ERROR"),
                getattr(exc, "metadata", None),
                extra,
            )
    return None

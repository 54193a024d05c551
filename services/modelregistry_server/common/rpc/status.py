"""Rich gRPC error statuses: a status code, a sentence, and ``google.rpc.ErrorInfo``.

Both services translate their errors through here, once, at the rpc boundary: every error a
client may see is a ``common.kernel.errors.RegistryError``.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry import metrics

from modelregistry_server.common.kernel.errors import (
    InvalidArgument,
    RegistryError,
    ResourceExhausted,
)
from modelregistry_server.common.telemetry import current_trace_id

ERROR_DOMAIN = "modelregistry"
_log = logging.getLogger(__name__)
# Kernel error classes name their status code as a string, so the kernel needs no grpc.
_CODES: dict[str, grpc.StatusCode] = {code.name: code for code in grpc.StatusCode}
# A status travels in trailers, which gRPC clients cap (8 KiB by default): a message (and each
# metadata value, field and rule) longer than this is cut. Messages quote callers' strings
# through ``kernel.errors.quoted`` and stay far shorter; this is the safety net.
MAX_MESSAGE_BYTES = 1024
MAX_DETAIL_BYTES = 512


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` UTF-8 bytes, else its start and how long it was."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    marker = f"… (cut from {len(data)} bytes)"
    keep = data[: limit - len(marker.encode())].decode("utf-8", "ignore")
    return keep + marker


# Calls refused because a bound was reached (RESOURCE_EXHAUSTED), by reason, since start-up:
# the counter of every limit (streams, upload sessions and bytes, disk reserve, idle streams).
# Also an OpenTelemetry counter, for whichever metrics exporter the process configures.
REFUSALS: collections.Counter[str] = collections.Counter()
_refusal_counter = metrics.get_meter("modelregistry").create_counter(
    "modelregistry.limits.refused",
    description="calls refused with RESOURCE_EXHAUSTED because a bound was reached",
)


def rich_status(
    code: grpc.StatusCode,
    message: str,
    reason: str,
    metadata: Mapping[str, str] | None = None,
    extra_details: Sequence[Message] = (),
) -> grpc.Status:
    """Build a status carrying an ``ErrorInfo`` with ``reason`` and ``metadata``.

    ``extra_details`` are further ``google.rpc`` details (BadRequest, PreconditionFailure).
    The message is cut to ``MAX_MESSAGE_BYTES`` and each metadata value to
    ``MAX_DETAIL_BYTES``.
    """
    message = cut(message, MAX_MESSAGE_BYTES)
    short = {key: cut(value, MAX_DETAIL_BYTES) for key, value in (metadata or {}).items()}
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=short)
    details = []
    for message_detail in (info, *extra_details):
        packed = any_pb2.Any()
        packed.Pack(message_detail)
        details.append(packed)
    status = status_pb2.Status(code=code.value[0], message=message, details=details)
    return rpc_status.to_status(status)


async def abort_with(context: Any, error: RegistryError) -> NoReturn:
    """End the call with ``error``'s rich status (``context.abort`` raises)."""
    status = to_status(error)
    assert status is not None  # a RegistryError always has one
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("unreachable: abort raises")


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


def to_status(exc: Exception) -> grpc.Status | None:
    """Return the rich status for an error of the kernel (``RegistryError``), or None.

    The status code comes from the error's class, the reason, message and metadata from the
    error itself; an invalid argument also gets a ``google.rpc.BadRequest`` field violation.
    Long texts are cut (see ``rich_status``), so no error can outgrow the trailers.
    None means ``exc`` is not a registry error, which the caller treats as a bug.
    """
    if not isinstance(exc, RegistryError):
        return None
    extra: list[Message] = []
    if isinstance(exc, InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=cut(exc.field, MAX_DETAIL_BYTES), description=cut(exc.rule, MAX_DETAIL_BYTES)
        )
        extra.append(error_details_pb2.BadRequest(field_violations=[violation]))
    if isinstance(exc, ResourceExhausted):
        REFUSALS[exc.reason] += 1
        _refusal_counter.add(1, {"reason": exc.reason})
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(exc.retry_after_s * 1e9))
        extra.append(error_details_pb2.RetryInfo(retry_delay=delay))
    return rich_status(_CODES[exc.code], exc.message, exc.reason, exc.metadata, extra)

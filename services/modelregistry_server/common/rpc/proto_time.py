"""Timestamps and durations between Python and protobuf, shared by both services' converters.

A request's Timestamp or Duration is checked against the range the protobuf well-known types
define before it is converted: protobuf's own conversion raises a bare ValueError or
OverflowError for seconds or nanos out of range, which would reach the client as INTERNAL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

from modelregistry_server.common.kernel.errors import InvalidArgument

# 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range of google.protobuf.Timestamp.
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799
# About 10,000 years, the range of google.protobuf.Duration.
_MAX_DURATION_SECONDS = 315576000000


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """Return ``value`` (timezone-aware) as a protobuf Timestamp."""
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(value)
    return result


def request_time(request: Message, field: str) -> datetime | None:
    """The UTC time in ``request.field``; None if unset.

    Raises:
        InvalidArgument: Seconds or nanos outside google.protobuf.Timestamp's range.
    """
    if not request.HasField(field):
        return None
    value: timestamp_pb2.Timestamp = getattr(request, field)
    if not _MIN_SECONDS <= value.seconds <= _MAX_SECONDS or not 0 <= value.nanos <= 999_999_999:
        raise InvalidArgument(
            field, "must be a Timestamp from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        )
    return value.ToDatetime(tzinfo=UTC)


def request_duration(request: Message, field: str) -> timedelta | None:
    """The duration in ``request.field``; None if unset.

    Raises:
        InvalidArgument: Outside google.protobuf.Duration's range (±10,000 years), nanos
            beyond ±999,999,999, or seconds and nanos of opposite signs.
    """
    if not request.HasField(field):
        return None
    value: duration_pb2.Duration = getattr(request, field)
    seconds, nanos = value.seconds, value.nanos
    if (
        abs(seconds) > _MAX_DURATION_SECONDS
        or abs(nanos) > 999_999_999
        or (seconds > 0 > nanos)
        or (seconds < 0 < nanos)
    ):
        raise InvalidArgument(field, "must be a Duration within ±10,000 years")
    return value.ToTimedelta()

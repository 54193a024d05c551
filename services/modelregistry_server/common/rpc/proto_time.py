"""Timestamps between Python and protobuf, shared by both services' converters."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """Return ``value`` (timezone-aware) as a protobuf Timestamp."""
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(value)
    return result

"""``WriteRequest`` messages encoded straight from the file's bytes.

Building ``WriteRequest(data=chunk)`` copies the chunk into the message and
``SerializeToString`` copies it again; for a message that is nearly all payload the SDK writes
the few header fields itself and joins them with the chunk: one copy instead of two, on every
byte a push uploads (issue 16, bench/README.md). The bytes are the ones protobuf would produce
(tests/unit/test_sdk_write_wire.py compares them).
"""

from __future__ import annotations

from typing import Any

import grpc

from modelregistry.artifact.v1 import artifact_service_pb2

WRITE_METHOD = "/modelregistry.artifact.v1.ArtifactService/Write"
_LEN, _VARINT = 2, 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def encode_write_request(session: str, offset: int, finish: bool, data: bytes) -> bytes:
    """The wire bytes of ``WriteRequest(upload_session=session, write_offset=offset,
    finish_write=finish, data=data)`` (fields at their defaults left out, as protobuf does)."""
    head = bytearray()
    if session:
        name = session.encode("utf-8")
        head += _key(1, _LEN) + _varint(len(name)) + name
    if offset:
        head += _key(2, _VARINT) + _varint(offset)
    if finish:
        head += _key(3, _VARINT) + b"\x01"
    if data:
        head += _key(4, _LEN) + _varint(len(data))
    return b"".join((head, data))


def write_call(channel: grpc.Channel) -> Any:
    """``ArtifactService/Write`` on ``channel``, taking already encoded requests."""
    return channel.stream_unary(
        WRITE_METHOD,
        request_serializer=lambda encoded: encoded,
        response_deserializer=artifact_service_pb2.WriteResponse.FromString,
    )

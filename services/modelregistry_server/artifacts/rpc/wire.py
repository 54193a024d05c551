"""The bytes of ``Write`` and ``Read`` messages without copying them through protobuf objects.

Measured on the upload path (bench/README.md, issue 16), the protobuf runtime costs the server
about as much CPU per byte as SHA-256 does: decoding a ``WriteRequest`` copies its ``data`` into
the message, reading ``request.data`` copies it again, and on the way out ``ReadResponse(data=
chunk)`` copies the chunk in and ``SerializeToString`` copies it out. For these two messages,
which are nearly all payload, the service registers its own codec:

* ``decode_write_request`` finds the ``data`` field in the received bytes and keeps it as a
  view into them (no copy); every other field is decoded by protobuf itself, from the message
  with ``data`` cut out, so the rules (UTF-8, wire types, unknown fields) stay protobuf's.
* ``encode_read_response`` writes the field's tag and length in front of the chunk: one copy,
  instead of two.

Everything else in the service goes through the generated code. ``register_artifact_service``
installs the two codecs on the generated handlers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc

_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5
_WRITE_DATA_FIELD = pb.WriteRequest.DESCRIPTOR.fields_by_name["data"].number
_READ_DATA_TAG = bytes([pb.ReadResponse.DESCRIPTOR.fields_by_name["data"].number << 3 | _WIRE_LEN])


class WriteRequestView:
    """A decoded ``WriteRequest`` whose ``data`` is a view into the received bytes.

    It answers what the servicer and the interceptors ask of a request: the four fields, and
    ``ListFields`` (the text check walks the string fields; ``data`` is bytes, never checked).
    """

    __slots__ = ("_fields", "data")

    def __init__(self, fields: pb.WriteRequest, data: memoryview) -> None:
        self._fields = fields
        self.data = data

    @property
    def upload_session(self) -> str:
        """See ``WriteRequest.upload_session``."""
        return self._fields.upload_session

    @property
    def write_offset(self) -> int:
        """See ``WriteRequest.write_offset``."""
        return self._fields.write_offset

    @property
    def finish_write(self) -> bool:
        """See ``WriteRequest.finish_write``."""
        return self._fields.finish_write

    def ListFields(self) -> Sequence[tuple[FieldDescriptor, Any]]:  # noqa: N802 - Message API
        """The set fields other than ``data``, as ``Message.ListFields``."""
        return self._fields.ListFields()


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(raw) or shift > 63:
            raise DecodeError("truncated or overlong varint")
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _skip(raw: bytes, pos: int, wire_type: int) -> tuple[int, int]:
    """Where the field's value starts and where it ends, from just after its key."""
    if wire_type == _WIRE_VARINT:
        _, end = _varint(raw, pos)
        return pos, end
    if wire_type == _WIRE_I64:
        return pos, pos + 8
    if wire_type == _WIRE_I32:
        return pos, pos + 4
    if wire_type == _WIRE_LEN:
        length, start = _varint(raw, pos)
        return start, start + length
    raise DecodeError(f"wire type {wire_type} is not used by this message")


def decode_write_request(raw: bytes) -> WriteRequestView:
    """Decode a ``WriteRequest``, keeping ``data`` as a view into ``raw``.

    Raises:
        DecodeError: ``raw`` is not a valid ``WriteRequest`` (the decoding interceptor answers
            it with ``INVALID_ARGUMENT``).
    """
    rest: list[bytes] = []
    data = memoryview(b"")
    pos = kept_from = 0
    while pos < len(raw):
        key_at = pos
        key, pos = _varint(raw, pos)
        start, end = _skip(raw, pos, key & 7)
        if end > len(raw):
            raise DecodeError("a field runs past the end of the message")
        if key >> 3 == _WRITE_DATA_FIELD and key & 7 == _WIRE_LEN:
            # Last one wins, as protobuf merges a repeated singular field.
            rest.append(raw[kept_from:key_at])
            kept_from = end
            data = memoryview(raw)[start:end]
        pos = end
    rest.append(raw[kept_from:])
    return WriteRequestView(pb.WriteRequest.FromString(b"".join(rest)), data)


def encode_read_response(response: bytes | memoryview | Message) -> bytes:
    """Serialize a ``ReadResponse`` given as its chunk of data (or as a message)."""
    if isinstance(response, Message):
        return response.SerializeToString()
    length = len(response)
    if not length:
        return b""  # proto3 leaves a field at its default out
    header = bytearray(_READ_DATA_TAG)
    while length >= 0x80:
        header.append(length & 0x7F | 0x80)
        length >>= 7
    header.append(length)
    return b"".join((header, response))


class _Registrar:
    """Stands in for the server while the generated code registers the service, so that the
    Write and Read handlers get the codecs above before the server sees them."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Ignored: the same handlers come again through ``add_registered_method_handlers``."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        """Swap the codecs in, then register the handlers both ways, as the generated code
        does."""
        handlers = dict(handlers)
        write, read = handlers["Write"], handlers["Read"]
        handlers["Write"] = grpc.stream_unary_rpc_method_handler(
            write.stream_unary,
            request_deserializer=decode_write_request,
            response_serializer=write.response_serializer,
        )
        handlers["Read"] = grpc.unary_stream_rpc_method_handler(
            read.unary_stream,
            request_deserializer=read.request_deserializer,
            response_serializer=encode_read_response,
        )
        generic = grpc.method_handlers_generic_handler(service, handlers)
        self._server.add_generic_rpc_handlers((generic,))
        self._server.add_registered_method_handlers(service, handlers)


def register_artifact_service(servicer: Any, server: Any) -> None:
    """``add_ArtifactServiceServicer_to_server`` with the zero-copy codecs for Write and Read."""
    registrar = cast(grpc.aio.Server, _Registrar(server))
    artifact_service_pb2_grpc.add_ArtifactServiceServicer_to_server(servicer, registrar)

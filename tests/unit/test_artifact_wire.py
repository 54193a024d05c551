"""The zero-copy codec of Write and Read (artifacts/rpc/wire.py) agrees with protobuf.

``decode_write_request`` must give every field exactly as ``WriteRequest.FromString`` does for
any valid message (field order, repeated ``data``, unknown fields, defaults), keep ``data`` as a
view into the received bytes, and refuse what protobuf refuses; ``encode_read_response`` must
produce the bytes ``ReadResponse.SerializeToString`` does.
"""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry_server.artifacts.rpc.wire import decode_write_request, encode_read_response
from tests.support.protowire import key, len_field, varint


def _same(raw: bytes) -> None:
    expected = pb.WriteRequest.FromString(raw)
    got = decode_write_request(raw)
    assert got.upload_session == expected.upload_session
    assert got.write_offset == expected.write_offset
    assert got.finish_write == expected.finish_write
    assert bytes(got.data) == expected.data
    names = sorted(f.name for f, _ in got.ListFields())
    assert names == sorted(f.name for f, _ in expected.ListFields() if f.name != "data")


_fields = st.lists(
    st.one_of(
        st.builds(lambda s: len_field(1, s.encode()), st.text(max_size=30)),
        st.builds(lambda n: key(2, 0) + varint(n), st.integers(0, 2**63 - 1)),
        st.builds(lambda b: key(3, 0) + varint(int(b)), st.booleans()),
        st.builds(lambda d: len_field(4, d), st.binary(max_size=300)),
        # Unknown fields of every wire type protobuf skips.
        st.builds(lambda n: key(9, 0) + varint(n), st.integers(0, 2**40)),
        st.builds(lambda b: key(10, 1) + b, st.binary(min_size=8, max_size=8)),
        st.builds(lambda b: len_field(11, b), st.binary(max_size=40)),
        st.builds(lambda b: key(12, 5) + b, st.binary(min_size=4, max_size=4)),
    ),
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(_fields)
def test_any_valid_message_decodes_as_protobuf_decodes_it(fields: list[bytes]) -> None:
    _same(b"".join(fields))


def test_data_is_a_view_into_the_received_bytes_and_the_last_data_field_wins() -> None:
    first, last = b"a" * 1000, b"b" * 2000
    raw = len_field(4, first) + len_field(1, b"uploadSessions/x") + len_field(4, last)
    decoded = decode_write_request(raw)
    assert isinstance(decoded.data, memoryview)
    assert decoded.data.obj is raw  # no copy
    assert bytes(decoded.data) == last
    _same(raw)


def test_a_message_the_sdk_sends_decodes() -> None:
    message = pb.WriteRequest(
        upload_session="uploadSessions/abc", write_offset=1 << 33, finish_write=True, data=b"xyz"
    )
    _same(message.SerializeToString())
    _same(b"")  # every field at its default


@pytest.mark.parametrize(
    "raw",
    [
        key(2, 0) + b"\xff",  # varint cut short
        key(2, 0) + b"\xff" * 11,  # varint longer than 64 bits
        key(4, 2) + varint(10) + b"short",  # data runs past the end
        key(10, 1) + b"1234",  # fixed64 cut short
        key(7, 3),  # groups: not in proto3
        len_field(1, b"\xff\xfe"),  # upload_session is not UTF-8
        key(0, 0) + b"\x01",  # field number 0
    ],
)
def test_malformed_messages_raise_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_write_request(raw)


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 1024 * 1024])
def test_read_responses_are_framed_as_protobuf_serializes_them(size: int) -> None:
    chunk = bytes(range(256)) * (size // 256) + b"\x07" * (size % 256)
    assert encode_read_response(chunk) == pb.ReadResponse(data=chunk).SerializeToString()
    assert pb.ReadResponse.FromString(encode_read_response(chunk)).data == chunk


def test_a_read_response_given_as_a_message_is_serialized_as_one() -> None:
    message = pb.ReadResponse(data=b"abc")
    assert encode_read_response(message) == message.SerializeToString()

"""The SDK's hand-encoded Write messages are the bytes protobuf would produce."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from modelregistry._write_wire import encode_write_request
from modelregistry.artifact.v1 import artifact_service_pb2 as pb


@settings(max_examples=300, deadline=None)
@given(
    session=st.text(max_size=60),
    offset=st.integers(min_value=0, max_value=2**63 - 1),
    finish=st.booleans(),
    data=st.binary(max_size=3000),
)
def test_encoding_matches_protobuf(session: str, offset: int, finish: bool, data: bytes) -> None:
    expected = pb.WriteRequest(
        upload_session=session, write_offset=offset, finish_write=finish, data=data
    ).SerializeToString()
    assert encode_write_request(session, offset, finish, data) == expected


def test_a_1_mib_chunk_round_trips() -> None:
    data = bytes(range(256)) * 4096
    encoded = encode_write_request("uploadSessions/abc", 5 << 30, False, data)
    decoded = pb.WriteRequest.FromString(encoded)
    assert decoded.data == data
    assert decoded.write_offset == 5 << 30
    assert decoded.upload_session == "uploadSessions/abc"
    assert not decoded.finish_write

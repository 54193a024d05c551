"""Write's own decoder (artifacts/rpc/wire.py) over a real server: what a client may send.

A hand-encoded message that protobuf accepts (fields in any order, ``data`` twice, an unknown
field) stores the bytes protobuf would have decoded; one that protobuf refuses is answered
with ``INVALID_ARGUMENT`` (reason ``REQUEST_MALFORMED``), never ``INTERNAL`` or ``UNKNOWN``,
and leaves the session as it was.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import blob_pb2
from tests.conftest import RunningRegistry
from tests.support.artifacts import download, sha256_hex
from tests.support.protowire import len_field, varint
from tests.support.rpc import error_info

T = 30.0
WRITE = "/modelregistry.artifact.v1.ArtifactService/Write"


async def _session(registry: RunningRegistry, data: bytes) -> str:
    session = await registry.artifacts.CreateUploadSession(
        pb.CreateUploadSessionRequest(
            blob=blob_pb2.BlobRef(sha256=sha256_hex(data), size_bytes=len(data))
        ),
        timeout=T,
    )
    return session.name


async def _write_raw(registry: RunningRegistry, messages: list[bytes]) -> pb.WriteResponse:
    call = registry.channel.stream_unary(
        WRITE,
        request_serializer=lambda raw: raw,
        response_deserializer=pb.WriteResponse.FromString,
    )

    async def requests() -> AsyncIterator[bytes]:
        for message in messages:
            yield message

    response: pb.WriteResponse = await call(requests(), timeout=T)
    return response


async def test_a_hand_encoded_write_stores_what_protobuf_would_decode(
    s3_registry: RunningRegistry,
) -> None:
    data = b"the bytes that count" * 1000
    name = await _session(s3_registry, data)
    decoy = b"x" * len(data)
    # data first (then replaced: the last occurrence wins), an unknown field, the session
    # name after the data, finish_write=true, write_offset 0 left at its default.
    message = (
        len_field(4, decoy)
        + varint(15 << 3 | 0)
        + varint(12345)
        + len_field(1, name.encode())
        + len_field(4, data)
        + varint(3 << 3 | 0)
        + b"\x01"
    )
    response = await _write_raw(s3_registry, [message])
    assert response.committed_size == len(data)
    assert response.blob.sha256 == sha256_hex(data)
    assert await download(s3_registry.artifacts, sha256_hex(data)) == data


@pytest.mark.parametrize(
    "tail",
    [
        varint(4 << 3 | 2) + varint(100) + b"short",  # data runs past the end
        varint(2 << 3 | 0) + b"\xff",  # write_offset cut short
        len_field(1, b"uploadSessions/\xff"),  # session name not UTF-8
    ],
    ids=["data-past-end", "truncated-varint", "bad-utf8"],
)
async def test_a_malformed_write_is_invalid_argument_and_leaves_the_session_as_it_was(
    s3_registry: RunningRegistry, tail: bytes
) -> None:
    data = b"kept intact" * 100
    name = await _session(s3_registry, data)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _write_raw(s3_registry, [len_field(1, name.encode()) + tail])
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "REQUEST_MALFORMED"
    status = await s3_registry.artifacts.QueryWriteStatus(
        pb.QueryWriteStatusRequest(upload_session=name), timeout=T
    )
    assert status.committed_size == 0
    assert not status.complete

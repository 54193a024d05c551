"""The floor of a gRPC relay in Python: what receiving a Write stream and sending a Read stream
cost a server that does nothing else (issue 16's "if a target proves out of reach, show the
floor it hits").

``python bench/_grpc_floor.py PORT`` serves ``ArtifactService/Write`` and ``ArtifactService/
Read`` on the registry's asyncio gRPC stack, with the registry's message size limits:

* ``Write`` takes each message as raw bytes (no protobuf decoding, no hashing, no storage) and
  answers with the number of bytes received;
* ``Read`` sends ``read_limit`` bytes of one preallocated 1 MiB buffer, framed as the registry
  frames its chunks (``wire.encode_read_response``), so only the transport's cost remains.

Everything the artifact service adds on top (decoding, SHA-256, CRC32C, S3 client, database)
is what the benchmark's figures minus this floor leave.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry_server.artifacts.rpc.wire import encode_read_response
from modelregistry_server.common.adapters.allocator import tune_for_streaming

_SERVICE = "modelregistry.artifact.v1.ArtifactService"
_MIB = 1024 * 1024


async def _write(requests: AsyncIterator[bytes], context: Any) -> pb.WriteResponse:
    received = 0
    async for raw in requests:
        received += len(raw)
    return pb.WriteResponse(committed_size=received)


async def _read(request: pb.ReadRequest, context: Any) -> AsyncIterator[bytes]:
    chunk = os.urandom(_MIB)
    left = request.read_limit
    while left > 0:
        piece = chunk if left >= _MIB else chunk[:left]
        left -= len(piece)
        yield piece


async def serve(port: int, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]) -> None:
    """Serve ``handlers`` as ArtifactService methods on ``port`` with the registry's message
    size limit; print ``ready`` once listening (``bench/artifacts.py``'s ``FloorServer`` waits
    for it), then serve until killed."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4 * _MIB)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


async def _serve(port: int) -> None:
    handlers = {
        "Write": grpc.stream_unary_rpc_method_handler(
            _write,
            request_deserializer=lambda raw: raw,
            response_serializer=pb.WriteResponse.SerializeToString,
        ),
        "Read": grpc.unary_stream_rpc_method_handler(
            _read,
            request_deserializer=pb.ReadRequest.FromString,
            response_serializer=encode_read_response,
        ),
    }
    await serve(port, handlers)


if __name__ == "__main__":
    tune_for_streaming()  # as `serve` does
    asyncio.run(_serve(int(sys.argv[1])))

"""The floor of the registry's ``Read`` from MinIO: its store's read path and its gRPC stack,
with nothing of the service around them.

``python bench/_s3_relay_floor.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET KEY PORT`` serves
``ArtifactService/Read``: each call streams the first ``read_limit`` bytes of one object as
the S3 store does (``blob_io.stream_chunks``: 4 MiB ``get_object`` reads on a worker thread,
one read ahead, sent as 1 MiB views framed by ``wire.encode_read_response``), on the same
asyncio gRPC server with the same malloc settings. No authentication, no blob index, no
metrics, no audit: ``bench/floors.py`` sets its CPU per GiB beside the registry's ``Read``
(``bench-artifacts``), so the difference is what the service adds, and this figure is what
a Python relay of this design costs before that.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry_server.artifacts.adapters.blob_io import stream_chunks
from modelregistry_server.artifacts.adapters.s3 import DEFAULT_WORKERS
from modelregistry_server.artifacts.adapters.s3_errors import close_response, read_response
from modelregistry_server.artifacts.adapters.s3_parts import make_client
from modelregistry_server.artifacts.rpc.wire import encode_read_response
from modelregistry_server.common.adapters.allocator import tune_for_streaming

# Run as a script, sys.path[0] is bench/: make the repository root importable for bench._*.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from bench._grpc_floor import serve  # noqa: E402


async def _serve(port: int, endpoint: str, access: str, secret: str, bucket: str, key: str) -> None:
    client = make_client(endpoint, access, secret, False, None, DEFAULT_WORKERS)
    executor = concurrent.futures.ThreadPoolExecutor(DEFAULT_WORKERS)

    async def read(request: pb.ReadRequest, context: Any) -> AsyncIterator[Any]:
        length = request.read_limit

        def open_response() -> tuple[Any, int]:
            return client.get_object(bucket, key, offset=0, length=length), length

        async for chunk in stream_chunks(executor, open_response, read_response, close_response):
            yield chunk

    handler = grpc.unary_stream_rpc_method_handler(
        read,
        request_deserializer=pb.ReadRequest.FromString,
        response_serializer=encode_read_response,
    )
    await serve(port, {"Read": handler})


if __name__ == "__main__":
    tune_for_streaming()  # as `serve` does
    endpoint, access, secret, bucket, key, port = sys.argv[1:7]
    asyncio.run(_serve(int(port), endpoint, access, secret, bucket, key))

"""Direct uploads (issue 16): a presigned PUT of a whole blob to MinIO, verified by MinIO.

The URL's signature covers the digest's key, the SHA-256 and a no-overwrite condition, so the
only thing anyone can do with it is store exactly that blob. These tests PUT to a real MinIO
with a plain HTTP client, the way a hostile caller would, and check what becomes visible.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from modelregistry import Client, _direct_upload
from modelregistry.artifact.v1 import artifact_service_pb2 as apb
from modelregistry.artifact.v1 import blob_pb2
from tests.conftest import RunningRegistry
from tests.support.artifacts import aiter_of, sha256_hex, write_requests
from tests.support.files import MiB, tree_digests, write_random
from tests.support.progress import CountingProgress
from tests.support.rpc import error_info

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
T = 30.0


def _ref(data: bytes) -> blob_pb2.BlobRef:
    return blob_pb2.BlobRef(sha256=sha256_hex(data), size_bytes=len(data))


def _put(target: blob_pb2.DirectUpload, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(target.url, data=body, method="PUT", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=T) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def _session(registry: RunningRegistry, data: bytes) -> blob_pb2.UploadSession:
    return await registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=_ref(data), direct_upload=True), timeout=T
    )


async def _missing(registry: RunningRegistry, data: bytes) -> bool:
    answer = await registry.artifacts.FindMissingBlobs(
        apb.FindMissingBlobsRequest(blobs=[_ref(data)]), timeout=T
    )
    return len(answer.missing_blobs) == 1


async def _finish(registry: RunningRegistry, session: str) -> blob_pb2.UploadSession:
    return await registry.artifacts.FinishDirectUpload(
        apb.FinishDirectUploadRequest(upload_session=session), timeout=T
    )


async def test_a_direct_upload_stores_the_blob_after_finish_and_reads_back(
    s3_registry: RunningRegistry,
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 11)
    session = await _session(s3_registry, data)
    assert session.HasField("direct_upload")
    assert not session.complete
    target = session.direct_upload
    assert set(target.headers) == {"x-amz-checksum-sha256", "if-none-match", "content-type"}
    assert await asyncio.to_thread(_put, target, data, dict(target.headers)) == 200
    assert await _missing(s3_registry, data)  # stored, but not a blob until finished

    finished = await _finish(s3_registry, session.name)
    assert finished.complete
    assert finished.committed_size == len(data)
    assert not await _missing(s3_registry, data)
    chunks = s3_registry.artifacts.Read(apb.ReadRequest(sha256=sha256_hex(data)), timeout=T)
    assert b"".join([c.data async for c in chunks]) == data
    # Finishing again is harmless, and a second PUT cannot replace the object (412).
    assert (await _finish(s3_registry, session.name)).complete
    # MinIO answers the precondition before it reads the body and then closes the connection,
    # so a multi-MiB body can meet a broken pipe instead of the answer: one byte is enough.
    assert await asyncio.to_thread(_put, target, b"x", dict(target.headers)) == 412


async def test_bytes_that_do_not_match_the_digest_are_refused_by_the_store(
    s3_registry: RunningRegistry,
) -> None:
    data = os.urandom(1024 * 1024)
    session = await _session(s3_registry, data)
    target = session.direct_upload
    forged = bytes([data[0] ^ 1]) + data[1:]
    assert await asyncio.to_thread(_put, target, forged, dict(target.headers)) == 400

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _finish(s3_registry, session.name)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(caught.value).reason == "DIRECT_UPLOAD_MISSING"
    assert "PUT the blob" in (caught.value.details() or "")
    assert await _missing(s3_registry, data)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"drop": "x-amz-checksum-sha256"}, id="checksum-left-out"),
        pytest.param({"drop": "if-none-match"}, id="no-overwrite-condition-left-out"),
        pytest.param({"x-amz-checksum-sha256": "AAAA"}, id="other-checksum"),
    ],
)
async def test_a_put_that_changes_the_signed_headers_is_refused(
    s3_registry: RunningRegistry, change: dict[str, str]
) -> None:
    data = os.urandom(4096)
    session = await _session(s3_registry, data)
    target = session.direct_upload
    headers = dict(target.headers)
    if "drop" in change:
        del headers[change["drop"]]
    else:
        headers.update(change)
    status = await asyncio.to_thread(_put, target, data, headers)
    assert status in (400, 403)
    assert await _missing(s3_registry, data)


async def test_an_object_with_headers_the_registry_never_sets_is_not_a_blob_and_write_replaces_it(
    s3_registry: RunningRegistry,
) -> None:
    """S3 keeps some unsigned headers of a presigned PUT (tags, Content-Encoding...): such an
    object is not taken as the blob, and a Write of the same content replaces it."""
    data = os.urandom(64 * 1024)
    session = await _session(s3_registry, data)
    target = session.direct_upload
    headers = {**target.headers, "x-amz-tagging": "delete=yes", "Content-Encoding": "gzip"}
    assert await asyncio.to_thread(_put, target, data, headers) == 200

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _finish(s3_registry, session.name)
    assert error_info(caught.value).reason == "DIRECT_UPLOAD_MISSING"
    again = await _session(s3_registry, data)  # the store's object is not taken as the blob
    assert not again.complete

    written = await s3_registry.artifacts.Write(
        aiter_of(write_requests(again.name, data)), timeout=T
    )
    assert written.committed_size == len(data)
    assert not await _missing(s3_registry, data)
    chunks = s3_registry.artifacts.Read(apb.ReadRequest(sha256=sha256_hex(data)), timeout=T)
    assert hashlib.sha256(b"".join([c.data async for c in chunks])).hexdigest() == sha256_hex(data)


async def test_no_url_is_offered_by_the_local_store_or_for_a_blob_over_5_gib(
    registry: RunningRegistry, s3_registry: RunningRegistry
) -> None:
    data = b"local blobs go through Write"
    local = await _session(registry, data)
    assert not local.HasField("direct_upload")

    huge = await s3_registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(
            blob=blob_pb2.BlobRef(sha256="ab" * 32, size_bytes=5 * 1024**3 + 1),
            direct_upload=True,
        ),
        timeout=T,
    )
    assert not huge.HasField("direct_upload")
    not_asked = await s3_registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=_ref(data)), timeout=T
    )
    assert not not_asked.HasField("direct_upload")


def _unreachable(*args: object) -> int:
    raise ConnectionRefusedError("the registry handed out an endpoint this machine cannot reach")


def _refused(*args: object) -> int:
    return 403  # e.g. a proxy, or clocks too far apart for the signature


@pytest.mark.parametrize("put", [_unreachable, _refused], ids=["unreachable", "refused"])
async def test_the_sdk_falls_back_to_write_when_the_store_does_not_take_the_put(
    s3_registry: RunningRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    put: Callable[..., int],
) -> None:
    """Only the SDK's HTTP PUT is replaced; the registry and MinIO are real."""
    monkeypatch.setattr(_direct_upload, "put", put)
    source = tmp_path / "model"
    write_random(source / "a.bin", 6 * MiB + 5)
    write_random(source / "b.bin", 1 * MiB)
    counters = s3_registry.server.artifact_counters
    assert counters is not None
    progress = CountingProgress()
    with Client(s3_registry.target, cache_dir=tmp_path / "cache") as client:
        version = await asyncio.to_thread(
            client.push, source, model="fallback", progress=progress, parallelism=1
        )
    assert counters.write_bytes == 7 * MiB + 5  # everything went through Write
    assert progress.bytes_for("pushing") == 7 * MiB + 5  # and was counted once
    with Client(s3_registry.target, cache_dir=tmp_path / "pull") as puller:
        pulled = await asyncio.to_thread(puller.pull, version.name.removeprefix("models/"))
    assert tree_digests(pulled) == tree_digests(source)


async def test_an_sdk_push_by_direct_upload_reports_progress_once_per_byte(
    s3_registry: RunningRegistry, tmp_path: Path
) -> None:
    source = tmp_path / "model"
    write_random(source / "weights.bin", 9 * MiB + 3)
    progress = CountingProgress()
    with Client(s3_registry.target, cache_dir=tmp_path / "cache") as client:
        await asyncio.to_thread(client.push, source, model="progress", progress=progress)
    counters = s3_registry.server.artifact_counters
    assert counters is not None
    assert (counters.write_bytes, counters.direct_upload_urls) == (0, 1)
    assert progress.bytes_for("pushing") == 9 * MiB + 3


async def test_a_put_whose_answer_is_lost_still_finishes_when_the_store_took_the_blob(
    s3_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 may close the connection as it answers (a 412 before reading the body), which the
    sender sees as a broken pipe: the SDK asks the registry before falling back to Write."""
    real_put = _direct_upload.put

    def put_then_lose_the_answer(*args: Any) -> int:
        real_put(*args)
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(_direct_upload, "put", put_then_lose_the_answer)
    source = tmp_path / "model"
    write_random(source / "weights.bin", 4 * MiB + 1)
    progress = CountingProgress()
    with Client(s3_registry.target, cache_dir=tmp_path / "cache") as client:
        await asyncio.to_thread(client.push, source, model="lost-answer", progress=progress)
    counters = s3_registry.server.artifact_counters
    assert counters is not None
    assert counters.write_bytes == 0  # finished from the store, nothing re-sent through Write
    assert progress.bytes_for("pushing") == 4 * MiB + 1

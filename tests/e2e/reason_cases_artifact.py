"""The artifact service's cases of the error-reason catalogue (see test_reason_catalogue.py)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import grpc

from modelregistry.artifact.v1 import artifact_service_pb2 as apb
from modelregistry.artifact.v1 import blob_pb2
from tests.support.artifacts import aiter_of, sha256_hex, upload, write_requests
from tests.support.reason_cases import (
    EXHAUSTED,
    INVALID,
    MIB,
    NOT_FOUND,
    PRECONDITION,
    UNAVAILABLE,
    CaseSpec,
    Env,
    HeldStreams,
    T,
    blob_ref,
    ready_version,
    registrar,
    send_raw,
    stop_database,
)

CASES: dict[tuple[str, str], CaseSpec] = {}
_case = registrar(CASES, "artifact")


@_case("FIELD_INVALID", INVALID)
async def _artifact_field_invalid(env: Env) -> None:
    await env.registry.artifacts.GetBlob(apb.GetBlobRequest(name="blobs/not-a-digest"), timeout=T)


@_case("CHUNK_TOO_LARGE", INVALID)
async def _chunk_too_large(env: Env) -> None:
    data = os.urandom(MIB + 1)
    session = await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(data)), timeout=T
    )
    request = apb.WriteRequest(upload_session=session.name, data=data, finish_write=True)
    await env.registry.artifacts.Write(aiter_of(iter([request])), timeout=T)


@_case("WRITE_OFFSET_INVALID", INVALID)
async def _write_offset_invalid(env: Env) -> None:
    data = b"0123456789"
    session = await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(data)), timeout=T
    )
    request = apb.WriteRequest(upload_session=session.name, write_offset=5, data=data[5:])
    await env.registry.artifacts.Write(aiter_of(iter([request])), timeout=T)


@_case("SIZE_EXCEEDED", INVALID)
async def _size_exceeded(env: Env) -> None:
    session = await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(b"abc")), timeout=T
    )
    await env.registry.artifacts.Write(aiter_of(write_requests(session.name, b"abcd")), timeout=T)


@_case("SIZE_MISMATCH", INVALID)
async def _size_mismatch(env: Env) -> None:
    data = b"abcd"
    session = await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(data)), timeout=T
    )
    await env.registry.artifacts.Write(aiter_of(write_requests(session.name, b"abc")), timeout=T)


@_case("DIGEST_MISMATCH", INVALID)
async def _digest_mismatch(env: Env) -> None:
    session = await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(b"abcd")), timeout=T
    )
    await env.registry.artifacts.Write(aiter_of(write_requests(session.name, b"wxyz")), timeout=T)


@_case("TOO_MANY_BLOBS", INVALID)
async def _too_many_blobs(env: Env) -> None:
    refs = [blob_pb2.BlobRef(sha256=f"{i:064x}", size_bytes=1) for i in range(10_001)]
    await env.registry.artifacts.FindMissingBlobs(
        apb.FindMissingBlobsRequest(blobs=refs), timeout=T
    )


@_case("PAGE_TOKEN_INVALID", INVALID)
async def _artifact_page_token_invalid(env: Env) -> None:
    await env.registry.artifacts.ListBlobs(apb.ListBlobsRequest(page_token="junk"), timeout=T)


@_case("BLOB_NOT_FOUND", NOT_FOUND)
async def _blob_not_found(env: Env) -> None:
    await env.registry.artifacts.GetBlob(apb.GetBlobRequest(name="blobs/" + "0" * 64), timeout=T)


@_case("UPLOAD_SESSION_NOT_FOUND", NOT_FOUND)
async def _upload_session_not_found(env: Env) -> None:
    await env.registry.artifacts.QueryWriteStatus(
        apb.QueryWriteStatusRequest(upload_session=f"uploadSessions/{uuid.uuid4().hex}"), timeout=T
    )


@_case("UPLOAD_SESSION_COMPLETE", PRECONDITION)
async def _upload_session_complete(env: Env) -> None:
    data = b"stored already"
    await upload(env.registry.artifacts, data)
    session = await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(data)), timeout=T
    )
    assert session.complete
    await env.registry.artifacts.Write(aiter_of(write_requests(session.name, data)), timeout=T)


@_case("DIRECT_UPLOAD_MISSING", PRECONDITION)
async def _direct_upload_missing(env: Env) -> None:
    data = b"never PUT anywhere"
    session = await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(data), direct_upload=True), timeout=T
    )
    await env.registry.artifacts.FinishDirectUpload(
        apb.FinishDirectUploadRequest(upload_session=session.name), timeout=T
    )


@_case("DOWNLOAD_URL_UNSUPPORTED", PRECONDITION)
async def _download_url_unsupported(env: Env) -> None:
    data = b"local only"
    await upload(env.registry.artifacts, data)
    await env.registry.artifacts.GenerateDownloadUrl(
        apb.GenerateDownloadUrlRequest(name=f"blobs/{sha256_hex(data)}"), timeout=T
    )


async def _first_part_stored(env: Env, data: bytes) -> str:
    """Open a session for ``data`` (two 5 MiB-part blob) and store its first part only."""
    session = await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(data)), timeout=T
    )
    first = write_requests(session.name, data[: 5 * MIB], finish=False)
    response = await env.registry.artifacts.Write(aiter_of(first), timeout=T)
    assert response.committed_size == 5 * MIB
    return session.name


def _open_upload(env: Env) -> tuple[str, str]:
    """The (object key, upload id) of the one multipart upload open in the bucket."""
    assert env.minio is not None
    uploads = env.minio._list_multipart_uploads(env.bucket).uploads
    assert len(uploads) == 1, uploads
    key, upload_id = uploads[0].object_name, uploads[0].upload_id
    assert key is not None
    assert upload_id is not None
    return key, upload_id


@_case("UPLOAD_SESSION_TAKEN_OVER", PRECONDITION, setup="s3")
async def _upload_session_taken_over(env: Env) -> None:
    data = os.urandom(6 * MIB)
    name = await _first_part_stored(env, data)
    taken_over = asyncio.Event()

    async def older_stream() -> AsyncIterator[apb.WriteRequest]:
        yield apb.WriteRequest(upload_session=name, write_offset=5 * MIB)
        await taken_over.wait()
        yield apb.WriteRequest(write_offset=5 * MIB, data=data[5 * MIB :], finish_write=True)

    older = asyncio.ensure_future(env.registry.artifacts.Write(older_stream(), timeout=T))
    # The newer stream claims the session while the older one is still open.
    await asyncio.sleep(0.5)
    newer = apb.WriteRequest(upload_session=name, write_offset=5 * MIB)
    await env.registry.artifacts.Write(aiter_of(iter([newer])), timeout=T)
    taken_over.set()
    await older


@_case("STORE_UPLOAD_NOT_FOUND", PRECONDITION, setup="s3")
async def _store_upload_not_found(env: Env) -> None:
    data = os.urandom(6 * MIB)
    name = await _first_part_stored(env, data)
    key, upload_id = _open_upload(env)
    assert env.minio is not None
    # As a bucket lifecycle rule or an operator would: the store forgets the upload.
    env.minio._abort_multipart_upload(env.bucket, key, upload_id)
    rest = write_requests(name, data, start=5 * MIB)
    await env.registry.artifacts.Write(aiter_of(rest), timeout=T)


@_case("UPLOAD_PARTS_INVALID", PRECONDITION, setup="s3")
async def _upload_parts_invalid(env: Env) -> None:
    data = os.urandom(6 * MIB)
    name = await _first_part_stored(env, data)
    key, upload_id = _open_upload(env)
    assert env.minio is not None
    # Someone else writes part 1 of the same upload: its ETag no longer matches the session's.
    env.minio._upload_part(env.bucket, key, os.urandom(5 * MIB), None, upload_id, 1)
    rest = write_requests(name, data, start=5 * MIB)
    await env.registry.artifacts.Write(aiter_of(rest), timeout=T)


@_case("READ_OFFSET_OUT_OF_RANGE", grpc.StatusCode.OUT_OF_RANGE)
async def _read_offset_out_of_range(env: Env) -> None:
    data = b"short"
    await upload(env.registry.artifacts, data)
    async for _ in env.registry.artifacts.Read(
        apb.ReadRequest(sha256=sha256_hex(data), read_offset=100), timeout=T
    ):
        pass


@_case("STORAGE_UNAVAILABLE", UNAVAILABLE, setup="own_minio")
async def _storage_unavailable(env: Env) -> None:
    data = b"in the bucket"
    await upload(env.registry.artifacts, data)
    assert env.minio_server is not None
    # This registry's own MinIO stops under the running service.
    await asyncio.to_thread(env.minio_server.stop)
    async for _ in env.registry.artifacts.Read(apb.ReadRequest(sha256=sha256_hex(data)), timeout=T):
        pass


@_case("DATABASE_UNAVAILABLE", UNAVAILABLE)
async def _artifact_database_unavailable(env: Env) -> None:
    await stop_database(env)
    await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(b"new")), timeout=T
    )


@_case("METADATA_SERVICE_UNAVAILABLE", UNAVAILABLE, setup="artifacts_only")
async def _metadata_service_unavailable(env: Env) -> None:
    request = apb.ReadRequest(sha256=sha256_hex(b"any"), model_version="models/m/versions/1")
    async for _ in env.registry.artifacts.Read(request, timeout=T):
        pass


@_case("BLOB_IN_USE", PRECONDITION)
async def _blob_in_use(env: Env) -> None:
    version = await ready_version(env, "holds-it", b"weights in use")
    digest = version.files[0].sha256
    await env.registry.artifacts.DeleteBlob(
        apb.DeleteBlobRequest(name=f"blobs/{digest}"), timeout=T
    )


@_case("VERSION_NOT_PENDING", PRECONDITION)
async def _version_not_pending(env: Env) -> None:
    version = await ready_version(env, "committed", b"final weights")
    await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(b"late"), model_version=version.name),
        timeout=T,
    )


@_case("MODEL_VERSION_NOT_FOUND", NOT_FOUND)
async def _model_version_not_found(env: Env) -> None:
    await ready_version(env, "has-one", b"one version")
    await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(
            blob=blob_ref(b"orphan"), model_version="models/has-one/versions/7"
        ),
        timeout=T,
    )


@_case("REQUEST_MALFORMED", INVALID)
async def _artifact_request_malformed(env: Env) -> None:
    await send_raw(env, "/modelregistry.artifact.v1.ArtifactService/GetBlob")


@_case("TOO_MANY_STREAMS", EXHAUSTED, setup="tight")
async def _too_many_streams(env: Env) -> None:
    held = HeldStreams()
    await held.open(env, 2)  # the limit per principal in this setup
    try:
        data = b"one too many"
        session = await env.registry.artifacts.CreateUploadSession(
            apb.CreateUploadSessionRequest(blob=blob_ref(data)), timeout=T
        )
        await env.registry.artifacts.Write(aiter_of(write_requests(session.name, data)), timeout=T)
    finally:
        await held.release()


@_case("STREAM_IDLE", EXHAUSTED, setup="tight")
async def _stream_idle(env: Env) -> None:
    data = os.urandom(1000)
    session = await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(data)), timeout=T
    )

    async def then_stall() -> AsyncIterator[apb.WriteRequest]:
        yield apb.WriteRequest(upload_session=session.name, write_offset=0, data=data[:500])
        await asyncio.sleep(5)  # the setup's idle timeout is 1 s

    await env.registry.artifacts.Write(then_stall(), timeout=T)


@_case("UPLOAD_SESSIONS_EXHAUSTED", EXHAUSTED, setup="tight")
async def _upload_sessions_exhausted(env: Env) -> None:
    for i in range(3):  # the setup allows 2 unfinished sessions per principal
        data = f"blob {i}".encode()
        await env.registry.artifacts.CreateUploadSession(
            apb.CreateUploadSessionRequest(blob=blob_ref(data)), timeout=T
        )


@_case("UPLOAD_BYTES_EXHAUSTED", EXHAUSTED, setup="tight")
async def _upload_bytes_exhausted(env: Env) -> None:
    # 2 GiB declared, more than the setup's 1 GiB of unwritten bytes per principal.
    ref = blob_pb2.BlobRef(sha256="ab" * 32, size_bytes=2 * 1024 * MIB)
    await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=ref), timeout=T
    )


@_case("STORAGE_FULL", EXHAUSTED, setup="disk_full")
async def _storage_full(env: Env) -> None:
    data = b"no room"
    await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(data)), timeout=T
    )


@_case("SHUTTING_DOWN", UNAVAILABLE)
async def _artifact_shutting_down(env: Env) -> None:
    data = os.urandom(1000)
    session = await env.registry.artifacts.CreateUploadSession(
        apb.CreateUploadSessionRequest(blob=blob_ref(data)), timeout=T
    )
    stopping: asyncio.Task[None] | None = None

    async def then_shutdown() -> AsyncIterator[apb.WriteRequest]:
        nonlocal stopping
        yield apb.WriteRequest(upload_session=session.name, write_offset=0, data=data[:500])
        stopping = asyncio.create_task(env.registry.server.stop(grace=1))
        await asyncio.sleep(10)

    try:
        await env.registry.artifacts.Write(then_shutdown(), timeout=T)
    finally:
        if stopping is not None:
            await stopping

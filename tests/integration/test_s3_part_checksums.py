"""Parts go to a real MinIO unsigned, with a CRC32C that MinIO checks (adapters/s3_parts.py).

The point of the unsigned payload is CPU (no second SHA-256 of every byte); the point of the
checksum is that dropping the payload hash loses no integrity: a part whose bytes are not the
bytes the server hashed is refused by MinIO, and the store reports it as an outage to retry.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from minio.error import S3Error

from modelregistry_server.artifacts.adapters.checksums import part_checksum
from modelregistry_server.artifacts.adapters.s3 import S3BlobStore
from modelregistry_server.artifacts.adapters.s3_parts import CHECKSUM_HEADER, UnsignedPartsMinio
from modelregistry_server.artifacts.domain.blob import MIN_PART_SIZE, UploadedPart, blob_key
from modelregistry_server.artifacts.domain.errors import StoreUnavailable
from tests.support.minio import MinioServer


def test_part_checksum_is_s3s_base64_crc32c() -> None:
    # CRC-32C check value of "123456789" (RFC 3720, appendix B.4) is 0xE3069283.
    assert part_checksum(b"123456789") == "4waSgw=="
    assert part_checksum(b"") == "AAAAAA=="


def _client(server: MinioServer) -> UnsignedPartsMinio:
    return UnsignedPartsMinio(server.endpoint, server.access_key, server.secret_key, secure=False)


def _store(server: MinioServer, bucket: str) -> S3BlobStore:
    return S3BlobStore.from_config(
        server.endpoint, server.access_key, server.secret_key, bucket, secure=False
    )


async def test_a_part_is_sent_unsigned_with_its_crc32c(
    minio_server: MinioServer, minio_bucket: str
) -> None:
    client = _client(minio_server)
    trace = io.StringIO()
    client.trace_on(trace)
    store = S3BlobStore(client, minio_bucket, max_workers=2)
    data = os.urandom(MIN_PART_SIZE + 1000)
    sha = hashlib.sha256(data).hexdigest()
    try:
        upload_id = await store.create_upload(sha)
        first = await store.upload_part(sha, upload_id, 1, 0, data[:MIN_PART_SIZE])
        second = await store.upload_part(sha, upload_id, 2, MIN_PART_SIZE, data[MIN_PART_SIZE:])
        await store.complete_upload(sha, upload_id, [first, second], len(data))
    finally:
        await store.close()
    log = trace.getvalue()
    puts = [block for block in log.split("---------START-HTTP---------") if "partNumber=" in block]
    assert len(puts) == 2
    for block, part in zip(puts, (data[:MIN_PART_SIZE], data[MIN_PART_SIZE:]), strict=True):
        assert "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD" in block
        assert f"X-Amz-Checksum-Crc32C: {part_checksum(part)}" in block
    stored = client.get_object(minio_bucket, blob_key(sha))
    try:
        assert hashlib.sha256(stored.read()).hexdigest() == sha
    finally:
        stored.close()
        stored.release_conn()


def test_minio_refuses_a_part_whose_bytes_do_not_match_its_checksum(
    minio_server: MinioServer, minio_bucket: str
) -> None:
    client = _client(minio_server)
    key = blob_key("ab" * 32)
    upload_id = client._create_multipart_upload(minio_bucket, key, {})
    try:
        sent = os.urandom(4096)
        corrupted = sent[:-1] + bytes([sent[-1] ^ 1])
        with pytest.raises(S3Error) as refused:
            client._upload_part(
                minio_bucket, key, corrupted, {CHECKSUM_HEADER: part_checksum(sent)}, upload_id, 1
            )
        assert refused.value.code == "XAmzContentChecksumMismatch"
        parts = client._list_parts(minio_bucket, key, upload_id)
        assert parts.parts == []  # nothing of the corrupted part was kept
    finally:
        client._abort_multipart_upload(minio_bucket, key, upload_id)


async def test_a_refused_part_is_an_outage_to_retry_and_the_retry_stores_the_blob(
    minio_server: MinioServer, minio_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(minio_server, minio_bucket)
    data = os.urandom(64 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    real = part_checksum
    corrupt = [True]

    def checksum_once_wrong(payload: bytes) -> str:
        # The bytes changed after they were hashed (a bad NIC, a bug): the header no longer
        # matches what arrives.
        if corrupt.pop() if corrupt else False:
            return real(payload + b"!")
        return real(payload)

    monkeypatch.setattr(
        "modelregistry_server.artifacts.adapters.s3.part_checksum", checksum_once_wrong
    )
    try:
        upload_id = await store.create_upload(sha)
        with pytest.raises(StoreUnavailable, match="do not match their CRC32C"):
            await store.upload_part(sha, upload_id, 1, 0, data)
        assert await store.stat(sha) is None
        part: UploadedPart = await store.upload_part(sha, upload_id, 1, 0, data)
        await store.complete_upload(sha, upload_id, [part], len(data))
        info = await store.stat(sha)
        assert info is not None
        assert info.size == len(data)
    finally:
        await store.close()

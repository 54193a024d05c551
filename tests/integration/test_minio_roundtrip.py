"""minio-py against a real MinIO: bytes go in and come back unchanged.

Uses the ``minio_server`` / ``minio_bucket`` fixtures from ``tests/support/fixtures_minio.py``
(wired in by ``tests/conftest.py``). minio-py is synchronous, so these tests are too.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from minio.error import S3Error

from tests.support.minio import MinioServer

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def _get_bytes(server: MinioServer, bucket: str, key: str) -> bytes:
    resp = server.client().get_object(bucket, key)
    try:
        return resp.read()
    finally:
        resp.close()
        resp.release_conn()


def test_put_and_get_round_trip_preserves_bytes(
    minio_server: MinioServer, minio_bucket: str
) -> None:
    data = os.urandom(8 * MiB)
    client = minio_server.client()

    # BytesIO returns the full requested size on every read (DESIGN.md pitfall: short reads make
    # minio-py's part assembly crawl).
    client.put_object(minio_bucket, "blob", io.BytesIO(data), length=len(data))

    assert client.stat_object(minio_bucket, "blob").size == len(data)
    got = _get_bytes(minio_server, minio_bucket, "blob")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_multipart_upload_of_unknown_length_round_trips(
    minio_server: MinioServer, minio_bucket: str
) -> None:
    # 12 MiB + a ragged tail in 5 MiB parts: two full parts and a short last one.
    data = os.urandom(12 * MiB + 12345)
    client = minio_server.client()

    # length=-1 makes minio-py use a multipart upload even though the data would fit one PUT.
    client.put_object(minio_bucket, "multi", io.BytesIO(data), length=-1, part_size=5 * MiB)

    stat = client.stat_object(minio_bucket, "multi")
    assert stat.size == len(data)
    # A multipart object's ETag is "<md5 of part md5s>-<part count>".
    assert stat.etag is not None
    assert stat.etag.endswith("-3")
    got = _get_bytes(minio_server, minio_bucket, "multi")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_get_of_missing_key_raises_no_such_key(
    minio_server: MinioServer, minio_bucket: str
) -> None:
    with pytest.raises(S3Error) as excinfo:
        minio_server.client().get_object(minio_bucket, "does/not/exist")
    assert excinfo.value.code == "NoSuchKey"

"""Objects an operator tags stay blobs; only an object about to be indexed is judged by its
headers (S3 keeps some unsigned headers of a direct upload's PUT: adapters/s3_presign.py)."""

from __future__ import annotations

import hashlib
import os

from minio.commonconfig import Tags

from modelregistry_server.artifacts.adapters.s3 import S3BlobStore
from modelregistry_server.artifacts.domain.blob import blob_key
from tests.support.minio import MinioServer


async def test_a_blob_an_operator_tagged_is_still_read_but_not_indexed_anew(
    minio_server: MinioServer, minio_bucket: str
) -> None:
    store = S3BlobStore.from_config(
        minio_server.endpoint,
        minio_server.access_key,
        minio_server.secret_key,
        minio_bucket,
        secure=False,
    )
    data = os.urandom(64 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    try:
        upload_id = await store.create_upload(sha)
        part = await store.upload_part(sha, upload_id, 1, 0, data)
        await store.complete_upload(sha, upload_id, [part], len(data))
        tags = Tags.new_object_tags()
        tags["cost-center"] = "ml"
        minio_server.client().set_object_tags(minio_bucket, blob_key(sha), tags)

        stat = await store.stat(sha)
        assert stat is not None
        assert stat.size == len(data)
        chunks = [bytes(c) async for c in store.read(sha, 0, 0)]
        assert hashlib.sha256(b"".join(chunks)).hexdigest() == sha
        # Not indexed yet (a crash between storing and indexing): not taken as a blob, so
        # the next upload of this content replaces it instead of keeping a tagged object.
        assert await store.stat(sha, unindexed=True) is None
        assert await store.verified_size(sha) is None  # not a direct upload either
    finally:
        await store.close()

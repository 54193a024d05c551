"""The SDK's checks of a direct upload the registry offers (``_direct_upload.usable``): a
forged answer must not make the client PUT its file somewhere else or under other terms."""

from __future__ import annotations

import base64
import hashlib

import pytest

from modelregistry._direct_upload import usable
from modelregistry.artifact.v1 import blob_pb2

SHA = hashlib.sha256(b"weights").hexdigest()
GOOD_HEADERS = {
    "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(SHA)).decode(),
    "if-none-match": "*",
    "content-type": "application/octet-stream",
}


def offer(
    url: str = "http://minio:9000/b/blobs/x?X-Amz-Signature=s", **headers: str
) -> blob_pb2.DirectUpload:
    return blob_pb2.DirectUpload(url=url, headers={**GOOD_HEADERS, **headers})


def test_the_offer_the_registry_makes_is_usable() -> None:
    assert usable(offer(), SHA)
    assert usable(offer("https://s3.example/b/k?sig=1"), SHA)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(offer("file:///etc/passwd"), id="not-http"),
        pytest.param(offer("http:///no-host"), id="no-host"),
        pytest.param(offer(**{"x-amz-checksum-sha256": "AAAA"}), id="other-digest"),
        pytest.param(offer(**{"if-none-match": "etag"}), id="may-overwrite"),
        pytest.param(offer(**{"authorization": "Bearer stolen"}), id="extra-header"),
        pytest.param(
            blob_pb2.DirectUpload(url="http://minio:9000/k", headers={"content-type": "x"}),
            id="checksum-missing",
        ),
    ],
)
def test_a_forged_offer_is_not_used(target: blob_pb2.DirectUpload) -> None:
    assert not usable(target, SHA)

"""Object-store failures are ``STORAGE_UNAVAILABLE``, never ``INTERNAL``.

The S3 cases build minio-py's and urllib3's own exception classes the way they raise them;
two tests go through a real ``S3BlobStore`` against a port nothing listens on, and a real
``LocalDirBlobStore`` whose directory is broken, so the path from the adapter method to the
classifier is covered, not only the classifier.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, cast

import pytest
import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

from modelregistry_server.artifacts.adapters.localfs import LocalDirBlobStore
from modelregistry_server.artifacts.adapters.s3 import S3BlobStore
from modelregistry_server.artifacts.adapters.s3_errors import S3_FAILURES, store_error
from modelregistry_server.artifacts.domain.blob import blob_key
from modelregistry_server.artifacts.domain.errors import BlobNotFound, StoreUnavailable
from modelregistry_server.common.kernel.errors import STORAGE_UNAVAILABLE

DIGEST = "ab" * 32


def _s3_error(code: str, status: int) -> S3Error:
    return S3Error(
        urllib3.HTTPResponse(status=status), code, f"{code} message", "/bucket/key", "req", "host"
    )


def _max_retries(reason: Exception) -> urllib3.exceptions.MaxRetryError:
    return urllib3.exceptions.MaxRetryError(cast("Any", None), "/bucket/key", reason)


FAILURES = [
    pytest.param(_s3_error("SlowDown", 503), "busy or failing", id="s3-slow-down"),
    pytest.param(_s3_error("ServiceUnavailable", 503), "busy or failing", id="s3-unavailable"),
    pytest.param(_s3_error("InternalError", 500), "busy or failing", id="s3-internal"),
    pytest.param(
        _s3_error("XMinioServerNotInitialized", 503), "busy or failing", id="minio-starting"
    ),
    pytest.param(_s3_error("AccessDenied", 403), "check the S3 credentials", id="s3-credentials"),
    pytest.param(_s3_error("NoSuchBucket", 404), "bucket does not exist", id="s3-no-bucket"),
    pytest.param(_s3_error("SomethingNew", 400), "failed the request", id="s3-unknown-code"),
    pytest.param(ServerError("bad gateway", 502), "HTTP 502", id="http-5xx"),
    pytest.param(InvalidResponseError(200, "text/html", "<html>"), "unexpected", id="not-s3"),
    pytest.param(
        _max_retries(urllib3.exceptions.NewConnectionError(cast("Any", None), "refused")),
        "cannot reach",
        id="retries-exhausted-refused",
    ),
    pytest.param(
        _max_retries(urllib3.exceptions.ResponseError("too many 503 error responses")),
        "kept failing",
        id="retries-exhausted-5xx",
    ),
    pytest.param(
        _max_retries(urllib3.exceptions.ConnectTimeoutError()), "in time", id="connect-timeout"
    ),
    pytest.param(
        urllib3.exceptions.ReadTimeoutError(cast("Any", None), "/k", "read timed out"),
        "in time",
        id="read-timeout",
    ),
    pytest.param(
        urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead"),
        "connection to the object store failed",
        id="connection-broken-mid-read",
    ),
    pytest.param(ConnectionResetError(104, "reset"), "connection", id="socket-reset"),
    pytest.param(TimeoutError(), "in time", id="socket-timeout"),
]


@pytest.mark.parametrize(("exc", "says"), FAILURES)
def test_s3_failures_are_storage_unavailable(exc: BaseException, says: str) -> None:
    # Every failure the store catches is one of S3_FAILURES, so store_error sees it.
    assert isinstance(exc, S3_FAILURES)
    translated = store_error(exc)
    assert isinstance(translated, StoreUnavailable)
    assert translated.code == "UNAVAILABLE"
    assert translated.reason == STORAGE_UNAVAILABLE
    assert says in translated.message


def test_registry_errors_pass_through_unchanged() -> None:
    original = BlobNotFound(DIGEST)
    assert store_error(original) is original


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_s3_store_on_a_dead_endpoint_is_storage_unavailable() -> None:
    store = S3BlobStore.from_config(
        f"127.0.0.1:{_refused_port()}", "key", "secret", "bucket", secure=False, region="us-east-1"
    )
    try:
        with pytest.raises(StoreUnavailable) as stat_failure:
            await store.stat(DIGEST)
        assert stat_failure.value.reason == STORAGE_UNAVAILABLE
        assert "cannot reach the object store" in stat_failure.value.message
        with pytest.raises(StoreUnavailable):
            await store.create_upload(DIGEST)
        with pytest.raises(StoreUnavailable):
            [chunk async for chunk in store.read(DIGEST, 0, 0)]
    finally:
        await store.close()
    # A closed store answers UNAVAILABLE as well, not a RuntimeError from its executor.
    with pytest.raises(StoreUnavailable):
        await store.stat(DIGEST)


async def test_local_store_io_failures_are_storage_unavailable(tmp_path: Path) -> None:
    store = LocalDirBlobStore(tmp_path)
    try:
        # A file where the blob's directory should be: every access fails with ENOTDIR,
        # an OSError that is not "not found".
        shard = (tmp_path / blob_key(DIGEST)).parent
        shard.parent.mkdir(parents=True, exist_ok=True)
        shard.write_bytes(b"not a directory")
        with pytest.raises(StoreUnavailable) as stat_failure:
            await store.stat(DIGEST)
        assert stat_failure.value.reason == STORAGE_UNAVAILABLE
        with pytest.raises(StoreUnavailable):
            [chunk async for chunk in store.read(DIGEST, 0, 0)]
        with pytest.raises(StoreUnavailable):
            await store.delete(DIGEST)
    finally:
        await store.close()
    with pytest.raises(StoreUnavailable):
        await store.stat(DIGEST)

"""The one place where an S3 / MinIO failure becomes a registry error.

Everything the ``S3BlobStore`` calls goes through :func:`store_error`: an unreachable,
failing, slow or misconfigured object store is ``UNAVAILABLE`` with reason
``STORAGE_UNAVAILABLE`` (the call may be retried once the store is back), never ``INTERNAL``.
The few S3 error codes that mean "not there" (``NoSuchKey``, ``NoSuchUpload``) are handled by
the store method that expects them before they get here. Details (hosts, request ids) go to
the log, not into the message a client sees.
"""

from __future__ import annotations

import logging

import urllib3
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from urllib3 import BaseHTTPResponse

from modelregistry_server.artifacts.domain.errors import RegistryError, StoreUnavailable

_log = logging.getLogger(__name__)

# What minio-py and the urllib3 below it raise for a failed request: S3 error replies
# (S3Error), unexpected HTTP answers (ServerError, InvalidResponseError), connection and
# protocol failures and timeouts (urllib3.exceptions.HTTPError), and socket errors that
# escape urllib3 (OSError, which includes TimeoutError and ConnectionError).
S3_FAILURES: tuple[type[BaseException], ...] = (
    MinioException,
    urllib3.exceptions.HTTPError,
    OSError,
)

_CREDENTIAL_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
)
# Codes by which S3 / MinIO say "not now": overload, an internal failure, still starting.
_BUSY_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "XMinioServerNotInitialized",
        "XMinioStorageFull",
    }
)


def store_error(exc: BaseException) -> RegistryError:
    """Translate a minio-py / urllib3 failure into ``StoreUnavailable``.

    Args:
        exc: One of :data:`S3_FAILURES` (a registry error is returned unchanged).

    Returns:
        The error to raise instead; its message says what kind of failure it was.
    """
    if isinstance(exc, RegistryError):
        return exc
    message = _describe(exc)
    _log.warning("S3 call failed: %s: %s", type(exc).__name__, exc)
    return StoreUnavailable(message)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, S3Error):
        if exc.code == "NoSuchBucket":
            return "the blob store's bucket does not exist"
        if exc.code in _CREDENTIAL_CODES:
            return f"the object store refused the request ({exc.code}); check the S3 credentials"
        if exc.code == "XAmzContentChecksumMismatch":
            return (
                "the object store received a part whose bytes do not match their CRC32C "
                "(damaged on the way); nothing of it was kept, retry the upload"
            )
        if exc.code in _BUSY_CODES:
            return f"the object store is busy or failing ({exc.code}); retry shortly"
        return f"the object store failed the request ({exc.code})"
    if isinstance(exc, ServerError):
        return f"the object store failed (HTTP {exc.status_code})"
    if isinstance(exc, InvalidResponseError):
        return "the object store sent an unexpected response"
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        # The retries gave up: on a refused connection, or on 5xx answers (status_forcelist).
        if isinstance(exc.reason, urllib3.exceptions.ResponseError):
            return "the object store kept failing the request"
        exc = exc.reason or exc
    # urllib3's NewConnectionError (refused, unresolvable) derives from ConnectTimeoutError:
    # test it before the timeouts.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "cannot reach the object store"
    if isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError):
        return "the object store did not answer in time"
    return "the connection to the object store failed"


def read_response(response: BaseHTTPResponse, size: int) -> bytes:
    """Read up to ``size`` bytes of a GET's body, failures as ``StoreUnavailable``."""
    # May return fewer bytes (chunked encoding, a slow socket); stream_chunks reads on.
    try:
        return response.read(size)
    except S3_FAILURES as exc:
        raise store_error(exc) from exc


def close_response(response: BaseHTTPResponse) -> None:
    """Close a GET's response without raising."""
    # close() drops a half-read connection (it cannot be reused); release_conn() returns the
    # slot to the pool.
    try:
        response.close()
        response.release_conn()
    except Exception:  # A failure to tidy up must not hide the reader's own outcome.
        _log.debug("closing an S3 response failed", exc_info=True)

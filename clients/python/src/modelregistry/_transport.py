"""Channels, stubs, deadlines, retries and error translation shared by both clients.

Every unary call goes through :meth:`Transport.unary` (or the async twin): it sets the deadline,
adds the caller's identity header, retries ``UNAVAILABLE`` and the registry's own
``RESOURCE_EXHAUSTED`` with exponential backoff and jitter (see :class:`RetryPolicy`), and turns
a failure into a typed :class:`~modelregistry.errors.RegistryError`. Retrying is safe because
every mutating call the SDK makes carries a ``request_id``, which the server uses to return the
first call's result instead of doing the work twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from modelregistry._credentials import find_token
from modelregistry._endpoints import ARTIFACT_SERVICE, METADATA_SERVICE, Endpoint
from modelregistry.access.v1 import access_service_pb2_grpc
from modelregistry.artifact.v1 import artifact_service_pb2_grpc
from modelregistry.errors import (
    DOMAIN,
    RegistryError,
    ResourceExhaustedError,
    UnavailableError,
    from_rpc_error,
)
from modelregistry.metadata.v1 import metadata_service_pb2_grpc

DEFAULT_TARGET = "127.0.0.1:50051"
ENV_TARGET = "MODELREGISTRY_URL"
# The ArtifactService's address when it is served apart from the MetadataService.
ENV_ARTIFACT_TARGET = "MODELREGISTRY_ARTIFACT_URL"
DEFAULT_TIMEOUT_S = 30.0
ENV_TLS_CA = "MODELREGISTRY_TLS_CA"
ENV_TLS_CERT = "MODELREGISTRY_TLS_CERT"
ENV_TLS_KEY = "MODELREGISTRY_TLS_KEY"
TLS_SCHEME = "https://"
_PLAINTEXT_SCHEMES = ("grpc://", "http://")
# A stream's deadline: generous, but finite, so a hung connection cannot block forever.
_MIN_STREAM_DEADLINE_S = 120.0
_SLOWEST_EXPECTED_BYTES_PER_S = 1024 * 1024

# Read chunks are at most 1 MiB, plus framing; 8 MiB leaves room for large manifests too.
_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.max_send_message_length", 8 * 1024 * 1024),
    # Long streams (Watch, big Reads) notice a dead server instead of hanging forever.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # gRPC's reconnect backoff grows to 120 s by default, longer than our whole retry budget:
    # after an outage, calls would keep failing fast although the server is back.
    ("grpc.max_reconnect_backoff_ms", 5_000),
    # Retries are done here, with our own policy and typed errors, not by the channel.
    ("grpc.enable_retries", 0),
]

R = TypeVar("R")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a call that failed for a reason a retry can fix.

    Retried:

    - ``UNAVAILABLE``: the server cannot be reached, is restarting or shedding load.
    - ``RESOURCE_EXHAUSTED`` that the registry itself sent (its ``google.rpc.ErrorInfo`` has
      the domain ``modelregistry``, or it carries a ``google.rpc.RetryInfo``): a per-caller
      limit such as concurrent streams, upload sessions or watch streams, which frees up as
      the caller's other calls end.

    Never retried: every other code (``INVALID_ARGUMENT``, ``NOT_FOUND``, ...), and the
    ``RESOURCE_EXHAUSTED`` gRPC raises itself for a message over the size limit ("Received
    message larger than max"), which carries no ErrorInfo and would fail the same way again.

    The pause before the n-th retry is a random time between 0 and ``initial_backoff_s *
    multiplier**(n-1)``, at most ``max_backoff_s`` (full jitter, so clients that failed
    together do not retry together), or the ``RetryInfo`` delay the server asked for if that
    is longer. No single pause exceeds ``max_retry_delay_s``, and the pauses of one call add
    up to at most ``max_total_delay_s``: when that budget is spent (or after ``max_attempts``
    attempts) the typed error is raised, e.g. :class:`~modelregistry.ResourceExhaustedError`.

    Attributes:
        max_attempts: Attempts in all, the first included; 1 means no retry (``NO_RETRY``).
        initial_backoff_s: The jitter ceiling of the first pause.
        max_backoff_s: The largest jitter ceiling the doubling reaches.
        multiplier: The growth of the ceiling from one pause to the next.
        max_retry_delay_s: The longest single pause, even if the server asks for longer.
        max_total_delay_s: The most time one call spends pausing between its attempts.
    """

    max_attempts: int = 5
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    max_retry_delay_s: float = 30.0
    max_total_delay_s: float = 60.0

    def backoffs(self) -> Iterator[float]:
        """Sleep before each retry: exponential, capped, with full jitter (thundering herds)."""
        ceiling = self.initial_backoff_s
        for _ in range(self.max_attempts - 1):
            yield random.uniform(0, ceiling)  # noqa: S311 - jitter, not security
            ceiling = min(ceiling * self.multiplier, self.max_backoff_s)


NO_RETRY = RetryPolicy(max_attempts=1)
# The longest pause a stream resume or a watch reconnect takes, whatever the server asks.
MAX_RETRY_DELAY_S = RetryPolicy.max_retry_delay_s


def is_retryable(error: RegistryError) -> bool:
    """Whether a retry (after a pause) can fix ``error``: see :class:`RetryPolicy`."""
    if isinstance(error, UnavailableError):
        return True
    # Only a limit the registry reports: gRPC's own "message larger than max" has no ErrorInfo.
    return isinstance(error, ResourceExhaustedError) and (
        error.domain == DOMAIN or error.retry_delay_s is not None
    )


def retry_pause(error: RegistryError, backoff: float, cap: float = MAX_RETRY_DELAY_S) -> float:
    """The pause before retrying after ``error``: the longer of ``backoff`` and the server's
    ``RetryInfo`` delay, at most ``cap``."""
    return min(max(backoff, error.retry_delay_s or 0.0), cap)


class _CallRetries:
    """One call's retries under a policy: the backoffs left and the pausing budget left."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._backoffs = policy.backoffs()
        self._paused_s = 0.0

    def pause(self, error: RegistryError) -> float | None:
        """The pause before the next attempt, or None if ``error`` is final."""
        if not is_retryable(error):
            return None
        backoff = next(self._backoffs, None)
        if backoff is None:
            return None
        wanted = retry_pause(error, backoff, self._policy.max_retry_delay_s)
        left = self._policy.max_total_delay_s - self._paused_s
        if wanted > 0 and left <= 0:
            return None
        pause = min(wanted, left)
        self._paused_s += pause
        return pause


def stream_deadline(nbytes: int) -> float:
    """The deadline of a ``Read`` or ``Write`` of ``nbytes``: 2 minutes plus 1 s per MiB."""
    return _MIN_STREAM_DEADLINE_S + nbytes / _SLOWEST_EXPECTED_BYTES_PER_S


def stream_retry_pause(attempt: int) -> float:
    """The pause before the ``attempt``-th resume of a dropped stream: 1 s, doubling to 8 s."""
    return min(0.5 * 2.0**attempt, 8.0)


def _given_target(target: str | None) -> str:
    return target or os.environ.get(ENV_TARGET) or DEFAULT_TARGET


def normalize_target(target: str | None) -> str:
    """``host:port`` (or several, comma-separated) from an argument, ``$MODELREGISTRY_URL`` or
    the default, minus a ``grpc://``, ``http://`` or ``https://`` scheme; ``dns:///`` stays, as
    it asks for every address of the name (see ``_endpoints``)."""
    value = _given_target(target)
    for scheme in (*_PLAINTEXT_SCHEMES, TLS_SCHEME):
        if value.startswith(scheme):
            value = value[len(scheme) :]
    return value.rstrip("/")


def normalize_artifact_target(artifact_target: str | None, target: str) -> str:
    """The ArtifactService's address: the argument, else ``$MODELREGISTRY_ARTIFACT_URL``, else
    ``target`` (both services on one address, as ``serve`` runs them by default)."""
    given = artifact_target or os.environ.get(ENV_ARTIFACT_TARGET)
    return normalize_target(given) if given else target


def _open_channel(
    endpoint: Endpoint,
    service: str,
    credentials: grpc.ChannelCredentials | None,
    open_insecure: Callable[..., R],
    open_secure: Callable[..., R],
) -> R:
    """A channel (sync or ``grpc.aio``, by the two openers given) to ``endpoint``."""
    options = endpoint.channel_options(_CHANNEL_OPTIONS, service)
    if credentials is None:
        return open_insecure(endpoint.address, options=options)
    return open_secure(endpoint.address, credentials, options=options)


@dataclass(frozen=True)
class TlsOptions:
    """How the channel is secured: plaintext, or TLS with an optional CA and client certificate.

    TLS is on when the target starts with ``https://`` or any of the CA, certificate or key is
    given (argument or ``$MODELREGISTRY_TLS_CA``/``_CERT``/``_KEY``); otherwise the channel is
    plaintext. Without a CA the system's trusted CAs check the server's certificate.
    """

    enabled: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @classmethod
    def resolve(
        cls,
        target: str | None = None,
        ca: str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> TlsOptions:
        """The options from arguments, else the environment; each argument wins over its variable.

        Raises:
            ValueError: A certificate without its key (or the reverse), or TLS options with a
                ``http://`` or ``grpc://`` target, which asks for plaintext.
        """
        env = os.environ if environ is None else environ

        def pick(value: str | os.PathLike[str] | None, variable: str) -> Path | None:
            chosen = value or env.get(variable) or None
            return Path(chosen) if chosen is not None else None

        ca, cert, key = pick(ca, ENV_TLS_CA), pick(cert, ENV_TLS_CERT), pick(key, ENV_TLS_KEY)
        if (cert is None) != (key is None):
            raise ValueError(
                "a TLS client certificate needs its key: give tls_cert and tls_key together "
                f"(--tls-cert and --tls-key, ${ENV_TLS_CERT} and ${ENV_TLS_KEY})"
            )
        given = _given_target(target)
        configured = any(p is not None for p in (ca, cert, key))
        if configured and given.startswith(_PLAINTEXT_SCHEMES):
            raise ValueError(f"TLS options were given, but the target {given!r} asks for plaintext")
        return cls(configured or given.startswith(TLS_SCHEME), ca, cert, key)

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """gRPC credentials for the channel, or None for plaintext; reads the PEM files now.

        Raises:
            OSError: A file cannot be read (the error names it).
        """
        if not self.enabled:
            return None
        ca, cert, key = (
            p.read_bytes() if p is not None else None for p in (self.ca, self.cert, self.key)
        )
        return grpc.ssl_channel_credentials(ca, key, cert)

    def unreachable_hint(self) -> str:
        """What to check when the server cannot be reached, given how the channel is secured."""
        if not self.enabled:
            return (
                "the connection is plaintext: if the server uses TLS, give its CA (tls_ca, "
                f"--tls-ca or ${ENV_TLS_CA}) or an {TLS_SCHEME} address"
            )
        return (
            "the connection is TLS: check that the CA (tls_ca, --tls-ca) signed the server's "
            "certificate for this address and, if the server requires client certificates, give "
            "one (tls_cert and tls_key, --tls-cert and --tls-key)"
        )


class _BaseTransport:
    """What the sync and async transports share: the settings and the decision to retry."""

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        tls: TlsOptions | None = None,
        artifact_target: str | None = None,
    ) -> None:
        self.target = normalize_target(target)
        self.artifact_target = normalize_artifact_target(artifact_target, self.target)
        # Parsed now, so that a malformed list of addresses fails at construction.
        self.endpoint = Endpoint.parse(self.target)
        self.artifact_endpoint = Endpoint.parse(self.artifact_target)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        # Found once: an explicit token, $MODELREGISTRY_TOKEN, or what `login` saved.
        self.token = find_token(self.target, token)
        self.tls = TlsOptions.resolve(target) if tls is None else tls
        # Explicit channel credentials win; else the TLS options decide (None: plaintext).
        self.credentials = credentials or self.tls.channel_credentials()
        self.metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {self.token}"),) if self.token else ()
        )

    def _retry_delay(self, exc: grpc.RpcError, retries: _CallRetries) -> float:
        """The pause before retrying a failed call; raises the typed error if it is final."""
        error = from_rpc_error(exc, self.target)
        delay = retries.pause(error)
        if delay is None:
            if isinstance(error, UnavailableError) and not error.reason:
                # Not reached at all: a TLS mismatch looks like any refused connection.
                error = UnavailableError(
                    f"{error.message}; {self.tls.unreachable_hint()}", code=error.code
                )
            raise error from None
        return delay


class Transport(_BaseTransport):
    """A synchronous channel to the registry's services: one for both, or a second one for
    an ArtifactService served at another address (``artifact_target``).

    The sync stubs are used for bulk transfers because they stream ~1.5x faster than
    ``grpc.aio`` ones (measured, see DESIGN.md).
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        tls: TlsOptions | None = None,
        artifact_target: str | None = None,
    ) -> None:
        super().__init__(
            target, timeout=timeout, retry=retry, token=token, credentials=credentials, tls=tls,
            artifact_target=artifact_target,
        )  # fmt: skip
        open_sync = (grpc.insecure_channel, grpc.secure_channel)
        self.channel = _open_channel(self.endpoint, METADATA_SERVICE, self.credentials, *open_sync)
        # The ArtifactService on its own channel only when it is served at another address.
        self.artifact_channel = (
            self.channel
            if self.artifact_target == self.target
            else _open_channel(
                self.artifact_endpoint, ARTIFACT_SERVICE, self.credentials, *open_sync
            )
        )
        self.metadata_stub = metadata_service_pb2_grpc.MetadataServiceStub(self.channel)
        self.artifact_stub = artifact_service_pb2_grpc.ArtifactServiceStub(self.artifact_channel)
        self.access_stub = access_service_pb2_grpc.AccessServiceStub(self.channel)
        self._sleep: Callable[[float], None] = time.sleep  # the pause between attempts

    def unary(
        self,
        method: Callable[..., R],
        request: Any,
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> R:
        """Call a unary ``method`` with deadline, identity header and retries."""
        retries = _CallRetries(retry or self.retry)
        while True:
            try:
                return method(request, timeout=timeout or self.timeout, metadata=self.metadata)
            except grpc.RpcError as exc:
                self._sleep(self._retry_delay(exc, retries))

    def close(self) -> None:
        """Close the channels; calls in flight fail with ``CANCELLED``."""
        self.channel.close()
        if self.artifact_channel is not self.channel:
            self.artifact_channel.close()


class AsyncTransport(_BaseTransport):
    """The ``grpc.aio`` twin of :class:`Transport`, for the :class:`AsyncClient`."""

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        tls: TlsOptions | None = None,
        artifact_target: str | None = None,
    ) -> None:
        super().__init__(
            target, timeout=timeout, retry=retry, token=token, credentials=credentials, tls=tls,
            artifact_target=artifact_target,
        )  # fmt: skip
        open_aio = (grpc.aio.insecure_channel, grpc.aio.secure_channel)
        self.channel = _open_channel(self.endpoint, METADATA_SERVICE, self.credentials, *open_aio)
        self.artifact_channel = (
            self.channel
            if self.artifact_target == self.target
            else _open_channel(
                self.artifact_endpoint, ARTIFACT_SERVICE, self.credentials, *open_aio
            )
        )
        self.metadata_stub = metadata_service_pb2_grpc.MetadataServiceStub(self.channel)
        self.artifact_stub = artifact_service_pb2_grpc.ArtifactServiceStub(self.artifact_channel)
        self.access_stub = access_service_pb2_grpc.AccessServiceStub(self.channel)
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def unary(
        self,
        method: Callable[..., Awaitable[R]],
        request: Any,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline, sent to the server
        retry: RetryPolicy | None = None,
    ) -> R:
        """Call a unary ``method`` with deadline, identity header and retries."""
        retries = _CallRetries(retry or self.retry)
        while True:
            try:
                return await method(
                    request, timeout=timeout or self.timeout, metadata=self.metadata
                )
            except grpc.RpcError as exc:
                await self._sleep(self._retry_delay(exc, retries))

    async def close(self) -> None:
        """Close the channels; calls in flight fail with ``CANCELLED``."""
        await self.channel.close(None)
        if self.artifact_channel is not self.channel:
            await self.artifact_channel.close(None)

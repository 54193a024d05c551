"""Shared pieces of the error-reason catalogue test (tests/e2e/test_reason_catalogue.py).

A case is one real call that must fail with one ``ErrorReason``; the case modules register
theirs with ``registrar`` and the test runs each against the registry its ``setup`` names.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
from minio import Minio

from modelregistry.artifact.v1 import blob_pb2
from modelregistry.metadata.v1 import model_version_pb2
from tests.conftest import RunningRegistry
from tests.support.artifacts import sha256_hex
from tests.support.metadata import new_model, push
from tests.support.minio import MinioServer

MIB = 1024 * 1024
# Deadline of every call a case makes, so a server that hangs instead of failing fails the case.
CALL_TIMEOUT_S = 20.0
T = CALL_TIMEOUT_S
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
ABORTED = grpc.StatusCode.ABORTED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@dataclass
class Env:
    """What a case may use: the registry under test and the real dependencies behind it."""

    registry: RunningRegistry
    admin_url: str
    database_url: str
    minio: Minio | None = None
    bucket: str = ""
    minio_server: MinioServer | None = None


Case = Callable[[Env], Awaitable[Any]]


@dataclass(frozen=True)
class CaseSpec:
    """One catalogue entry's call: which registry it needs and the code it must get."""

    api: str
    reason: str
    code: grpc.StatusCode
    setup: str
    call: Case


def registrar(
    cases: dict[tuple[str, str], CaseSpec], api: str
) -> Callable[..., Callable[[Case], Case]]:
    """Return a decorator that registers calls into ``cases`` as ``api``'s cases."""

    def case(reason: str, code: grpc.StatusCode, setup: str = "local") -> Callable[[Case], Case]:
        return _register(cases, api, reason, code, setup)

    return case


def _register(
    cases: dict[tuple[str, str], CaseSpec],
    api: str,
    reason: str,
    code: grpc.StatusCode,
    setup: str,
) -> Callable[[Case], Case]:
    """Register ``call`` as the case of ``reason``.

    ``setup`` is the registry it runs against: ``local`` (local blob directory), ``s3`` (the
    session's MinIO), ``own_minio`` (a MinIO of its own, which the case may stop),
    ``metadata_only`` (a metadata service whose artifact service is down),
    ``artifacts_only`` (an artifact service whose metadata service is down) or
    ``oidc_keys_down`` (OIDC configured with a JWKS URL that does not answer).
    """

    def register(call: Case) -> Case:
        assert (api, reason) not in cases, f"two cases for {api} {reason}"
        cases[(api, reason)] = CaseSpec(api, reason, code, setup, call)
        return call

    return register


def blob_ref(data: bytes) -> blob_pb2.BlobRef:
    """The BlobRef of ``data``."""
    return blob_pb2.BlobRef(sha256=sha256_hex(data), size_bytes=len(data))


def manifest_file(path: str, data: bytes) -> model_version_pb2.ManifestFile:
    """The manifest entry of ``data`` at ``path``."""
    return model_version_pb2.ManifestFile(path=path, sha256=sha256_hex(data), size_bytes=len(data))


async def ready_version(
    env: Env, model_id: str, data: bytes = b"weights"
) -> model_version_pb2.ModelVersion:
    """A new model ``model_id`` with one READY version holding ``data``."""
    await new_model(env.registry, model_id)
    return await push(env.registry, model_id, {"w.bin": data})


async def stop_database(env: Env) -> None:
    """Make the registry's database refuse connections and end every session it has."""
    name = env.database_url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(env.admin_url)
    try:
        await conn.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
    finally:
        await conn.close()


# A length-delimited field 1 that claims 5 bytes and has 2: no message type decodes it.
TRUNCATED_MESSAGE = b"\x0a\x05ab"


async def send_raw(env: Env, method: str, payload: bytes = TRUNCATED_MESSAGE) -> Any:
    """Call ``method`` (``/package.Service/Method``) with ``payload`` as the request's bytes."""
    call = env.registry.channel.unary_unary(
        method, request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw
    )
    return await call(payload, timeout=CALL_TIMEOUT_S)


EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
# ``serve`` flags of the "tight" setup: small bounds that a case can reach with a few calls.
TIGHT_LIMITS = [
    "--max-streams-per-principal=2",
    "--max-watch-streams-per-principal=1",
    "--stream-idle-timeout=1",
    "--max-upload-sessions-per-principal=2",
    "--max-unwritten-gib-per-principal=1",
]


class HeldStreams:
    """``Write`` streams opened and kept open (sending nothing) until :meth:`release`."""

    def __init__(self) -> None:
        self._done = asyncio.Event()
        self._calls: list[Any] = []

    async def open(self, env: Env, count: int) -> None:
        """Open ``count`` streams and give the server a moment to take their slots."""

        async def nothing_yet() -> AsyncIterator[Any]:
            await self._done.wait()
            return
            yield  # an async generator that sends nothing

        for _ in range(count):
            self._calls.append(env.registry.artifacts.Write(nothing_yet(), timeout=CALL_TIMEOUT_S))
        await asyncio.sleep(0.5)

    async def release(self) -> None:
        """End the streams."""
        self._done.set()
        for call in self._calls:
            call.cancel()

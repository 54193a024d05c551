"""Fault tests against real processes: the registry rides out its database and object store.

- PostgreSQL stopped for 10 s under a steady load of resolves and pushes: every failed call
  is ``UNAVAILABLE`` well within its deadline, health turns ``NOT_SERVING`` within 3 s, calls
  succeed within 5 s of the restart, and every push the registry acknowledged is still there
  (a ledger kept here).
- The embedded PostgreSQL killed with SIGKILL: the server restarts it and serves again.
- MinIO stopped in the middle of an upload and started again: the upload resumes from the
  committed offset and the blob's sha256 is right.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelregistry.artifact.v1 import artifact_service_pb2 as pb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import metadata_service_pb2_grpc, model_pb2, model_version_pb2
from modelregistry_server.common.adapters.db import ensure_database
from modelregistry_server.common.adapters.embedded_postgres import EmbeddedPostgres
from tests.support.artifacts import aiter_of, download, sha256_hex, write_requests
from tests.support.auth import authenticated_channel
from tests.support.minio import MinioServer, ensure_minio_binary
from tests.support.registry_process import RegistryProcess, s3_flags
from tests.support.rpc import error_info

if TYPE_CHECKING:
    from modelregistry.artifact.v1.artifact_service_pb2_grpc import ArtifactServiceAsyncStub
    from modelregistry.metadata.v1.metadata_service_pb2_grpc import MetadataServiceAsyncStub

T = TypeVar("T")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

DEADLINE_S = 10.0
OUTAGE_S = 10.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class _Stubs:
    metadata: MetadataServiceAsyncStub
    artifacts: ArtifactServiceAsyncStub
    health: Any  # grpc_health ships no async stub types

    @classmethod
    def on(cls, channel: grpc.aio.Channel) -> _Stubs:
        metadata: MetadataServiceAsyncStub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        artifacts: ArtifactServiceAsyncStub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        return cls(metadata, artifacts, health_pb2_grpc.HealthStub(channel))


@dataclass
class _Outcome:
    """One operation (a resolve, or a whole push) and how it ended."""

    kind: str
    started: float
    ended: float
    code: grpc.StatusCode | None = None  # None: it succeeded
    reason: str = ""
    slowest_call_s: float = 0.0
    message: str = ""


@dataclass
class _Load:
    outcomes: list[_Outcome] = field(default_factory=list)
    health: list[tuple[float, int]] = field(default_factory=list)  # (time, status or -1)
    # The ledger: every push the registry acknowledged, version name -> its file's digest.
    ledger: dict[str, str] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def _timed(call: Awaitable[T], slowest: list[float]) -> T:
    started = time.monotonic()
    try:
        return await call
    finally:
        slowest.append(time.monotonic() - started)


async def _push_once(stubs: _Stubs, i: int) -> tuple[str, str, float]:
    """Create, upload and commit a version of model ``m``; return its name and digest."""
    data = f"weights {i} {time.monotonic_ns()}".encode()
    digest = sha256_hex(data)
    slowest: list[float] = []
    version = await _timed(
        stubs.metadata.CreateModelVersion(
            ms.CreateModelVersionRequest(parent="models/m"), timeout=DEADLINE_S
        ),
        slowest,
    )
    session = await _timed(
        stubs.artifacts.CreateUploadSession(
            pb.CreateUploadSessionRequest(
                blob=blob_pb2.BlobRef(sha256=digest, size_bytes=len(data)),
                model_version=version.name,
            ),
            timeout=DEADLINE_S,
        ),
        slowest,
    )
    if not session.complete:
        await _timed(
            stubs.artifacts.Write(aiter_of(write_requests(session.name, data)), timeout=DEADLINE_S),
            slowest,
        )
    files = [model_version_pb2.ManifestFile(path="w.bin", sha256=digest, size_bytes=len(data))]
    committed = await _timed(
        stubs.metadata.CommitModelVersion(
            ms.CommitModelVersionRequest(name=version.name, files=files), timeout=DEADLINE_S
        ),
        slowest,
    )
    return committed.name, digest, max(slowest)


async def _run_op(load: _Load, kind: str, op: Callable[[], Awaitable[float]]) -> None:
    started = time.monotonic()
    try:
        slowest = await op()
        load.outcomes.append(_Outcome(kind, started, time.monotonic(), slowest_call_s=slowest))
    except grpc.aio.AioRpcError as error:
        ended = time.monotonic()
        info = error_info(error)
        load.outcomes.append(
            _Outcome(
                kind,
                started,
                ended,
                error.code(),
                info.reason,
                ended - started,
                error.details() or "",
            )
        )
        await asyncio.sleep(0.05)  # a failing registry is not hammered in a tight loop


async def _resolver(stubs: _Stubs, load: _Load) -> None:
    async def resolve() -> float:
        started = time.monotonic()
        await stubs.metadata.ResolveModelVersion(
            ms.ResolveModelVersionRequest(ref="m@production"), timeout=DEADLINE_S
        )
        return time.monotonic() - started

    while not load.stop.is_set():
        await _run_op(load, "resolve", resolve)
        await asyncio.sleep(0.02)


async def _pusher(stubs: _Stubs, load: _Load) -> None:
    i = 0

    async def push() -> float:
        name, digest, slowest = await _push_once(stubs, i)
        load.ledger[name] = digest  # acknowledged: the registry said READY
        return slowest

    while not load.stop.is_set():
        i += 1
        await _run_op(load, "push", push)


async def _health_poller(stubs: _Stubs, load: _Load) -> None:
    while not load.stop.is_set():
        try:
            reply = await stubs.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            load.health.append((time.monotonic(), int(reply.status)))
        except grpc.aio.AioRpcError:
            load.health.append((time.monotonic(), -1))
        await asyncio.sleep(0.1)


@pytest.fixture
def private_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, to be stopped and started again under the server."""
    # Under /tmp: when run as root the database runs as another user, which must reach it.
    with tempfile.TemporaryDirectory(prefix="mr-test-outage-") as tmp:
        server = EmbeddedPostgres(Path(tmp), durable=False)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
async def server_on_private_postgres(
    private_postgres: EmbeddedPostgres, tmp_path: Path
) -> AsyncIterator[RegistryProcess]:
    await ensure_database(private_postgres.dsn(), "registry")
    server = RegistryProcess(tmp_path, database_url=private_postgres.dsn("registry"))
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def _seed(stubs: _Stubs) -> None:
    """Model ``m`` with a READY version 1 that ``production`` points at."""
    await stubs.metadata.CreateModel(
        ms.CreateModelRequest(model_id="m", model=model_pb2.Model()), timeout=DEADLINE_S
    )
    name, _, _ = await _push_once(stubs, 0)
    await stubs.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="production", version=name), timeout=DEADLINE_S
    )


async def test_postgres_stopped_for_10s_under_load(
    server_on_private_postgres: RegistryProcess, private_postgres: EmbeddedPostgres
) -> None:
    async with authenticated_channel(server_on_private_postgres.target) as channel:
        stubs = _Stubs.on(channel)
        await _seed(stubs)
        load = _Load()
        workers = [
            asyncio.create_task(_resolver(stubs, load)),
            asyncio.create_task(_resolver(stubs, load)),
            asyncio.create_task(_pusher(stubs, load)),
            asyncio.create_task(_health_poller(stubs, load)),
        ]
        await asyncio.sleep(2)
        stopped = time.monotonic()
        await asyncio.to_thread(private_postgres.stop)
        await asyncio.sleep(OUTAGE_S - (time.monotonic() - stopped))
        await asyncio.to_thread(private_postgres.start)
        restarted = time.monotonic()
        await asyncio.sleep(8)
        load.stop.set()
        await asyncio.gather(*workers)

        failed = [o for o in load.outcomes if o.code is not None]
        during = [o for o in load.outcomes if stopped < o.started < restarted]
        print(
            f"\n{len(load.outcomes)} operations, {len(failed)} failed "
            f"({len(during)} started during the outage); {len(load.ledger)} pushes acknowledged"
        )
        assert failed, "the outage failed no call: the database was not stopped?"
        log = server_on_private_postgres.log.read_text()
        assert "internal error" not in log, log[log.index("internal error") - 200 :][:6000]
        for outcome in failed:
            assert outcome.code == grpc.StatusCode.UNAVAILABLE, outcome
            assert outcome.reason == "DATABASE_UNAVAILABLE", outcome
            # Reported by the server, not by the client's deadline running out.
            assert outcome.slowest_call_s < DEADLINE_S - 2, outcome

        not_serving = [t for t, status in load.health if t > stopped and status == NOT_SERVING]
        assert not_serving, "health never said NOT_SERVING during the outage"
        print(f"health NOT_SERVING {not_serving[0] - stopped:.2f} s after the stop")
        assert not_serving[0] - stopped < 3.0
        serving_again = [t for t, status in load.health if t > restarted and status == SERVING]
        assert serving_again
        assert serving_again[0] - restarted < 5.0

        for kind in ("resolve", "push"):
            after = [o for o in load.outcomes if o.kind == kind and o.ended > restarted]
            first_ok = next(o for o in after if o.code is None)
            print(f"first {kind} success {first_ok.ended - restarted:.2f} s after the restart")
            assert first_ok.ended - restarted < 5.0, kind
            # Once one succeeded, the rest did too: nothing is left broken by the outage.
            assert all(o.code is None for o in after if o.started > first_ok.ended), kind

        for name, digest in load.ledger.items():
            version = await stubs.metadata.GetModelVersion(
                ms.GetModelVersionRequest(name=name), timeout=DEADLINE_S
            )
            assert version.state == model_version_pb2.MODEL_VERSION_STATE_READY, name
            assert [f.sha256 for f in version.files] == [digest], name


def _postmaster_pid(server: RegistryProcess) -> int:
    pid_file = server.data_dir / "postgres" / "pgdata" / "postmaster.pid"
    return int(pid_file.read_text().splitlines()[0])


async def test_embedded_postgres_killed_is_restarted() -> None:
    # Under /tmp: when run as root the database runs as another user, which must reach it.
    workdir = tempfile.TemporaryDirectory(prefix="mr-test-pg-kill-")
    os.chmod(workdir.name, 0o755)  # noqa: S103 - the database user must reach its folder
    server = RegistryProcess(Path(workdir.name))
    await asyncio.to_thread(server.start)
    try:
        async with authenticated_channel(server.target) as channel:
            stubs = _Stubs.on(channel)
            await _seed(stubs)
            old_pid = _postmaster_pid(server)
            os.kill(old_pid, signal.SIGKILL)
            killed = time.monotonic()
            deadline = killed + 60
            codes: set[grpc.StatusCode] = set()
            while True:
                try:
                    resolved = await stubs.metadata.ResolveModelVersion(
                        ms.ResolveModelVersionRequest(ref="m@production"), timeout=DEADLINE_S
                    )
                    if _postmaster_pid(server) != old_pid:
                        break
                except grpc.aio.AioRpcError as error:
                    codes.add(error.code())
                assert time.monotonic() < deadline, server.log.read_text()[-3000:]
                await asyncio.sleep(0.2)
            assert codes <= {grpc.StatusCode.UNAVAILABLE}
            print(f"\nserving again {time.monotonic() - killed:.2f} s after SIGKILL")
            assert resolved.name == "models/m/versions/1"
            # Writes work too, and the server process is the same one.
            await stubs.metadata.CreateModel(
                ms.CreateModelRequest(model_id="after", model=model_pb2.Model()),
                timeout=DEADLINE_S,
            )
            assert server.process is not None
            assert server.process.poll() is None
        # The supervisor logs "running again" once its readiness wait returns, which can be a
        # moment after the first call got through: give the line a few seconds to appear.
        for _ in range(50):
            log = server.log.read_text()
            if "running again" in log:
                break
            await asyncio.sleep(0.1)
        assert "the embedded PostgreSQL exited" in log
        assert "running again" in log
    finally:
        await asyncio.to_thread(server.stop)
        workdir.cleanup()


async def test_minio_stopped_mid_upload_then_the_upload_resumes(
    tmp_path: Path, database_url: str
) -> None:
    minio = MinioServer(data_dir=tmp_path / "minio", binary=ensure_minio_binary()).start()
    server = RegistryProcess(tmp_path, *s3_flags(minio, "blobs"), database_url=database_url)
    await asyncio.to_thread(server.start)
    try:
        async with authenticated_channel(server.target) as channel:
            stubs = _Stubs.on(channel)
            data = os.urandom(40 * 1024 * 1024 + 123)
            digest = sha256_hex(data)
            session = await stubs.artifacts.CreateUploadSession(
                pb.CreateUploadSessionRequest(
                    blob=blob_pb2.BlobRef(sha256=digest, size_bytes=len(data))
                ),
                timeout=DEADLINE_S,
            )
            half = 20 * 1024 * 1024
            first = await stubs.artifacts.Write(
                aiter_of(write_requests(session.name, data[:half], finish=False)),
                timeout=60,
            )
            assert first.committed_size > 0

            minio.stop()
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stubs.artifacts.Write(
                    aiter_of(write_requests(session.name, data, start=first.committed_size)),
                    timeout=60,
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_info(refused.value).reason == "STORAGE_UNAVAILABLE"

            minio.start()  # same address, same data
            status = await stubs.artifacts.QueryWriteStatus(
                pb.QueryWriteStatusRequest(upload_session=session.name), timeout=DEADLINE_S
            )
            assert 0 < status.committed_size <= len(data)
            done = await stubs.artifacts.Write(
                aiter_of(write_requests(session.name, data, start=status.committed_size)),
                timeout=60,
            )
            assert done.committed_size == len(data)
            assert done.blob.sha256 == digest
            got = await download(stubs.artifacts, digest)
            assert sha256_hex(got) == digest
            print(f"\nresumed at {status.committed_size} of {len(data)} bytes after MinIO restart")
    finally:
        await asyncio.to_thread(server.stop)
        minio.stop()

"""The SDK given several replicas' addresses rides out the death of each in turn, and sends
nothing to a replica that reports NOT_SERVING (client-side health checking).

Two ``serve`` processes on one database and one MinIO bucket; the client gets both addresses
(``a,b``: round-robin with client-side health checks). Replica A is killed, then restarted,
then B is killed: whichever replica held the watch died at some point, so the watch must have
reconnected to the other and still delivered every alias move; every push and pull goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelregistry import NO_RETRY, Client
from modelregistry._endpoints import METADATA_SERVICE
from modelregistry.metadata.v1 import model_event_pb2
from modelregistry_server.common.adapters.db import ensure_database
from modelregistry_server.common.adapters.embedded_postgres import EmbeddedPostgres
from tests.support.auth import ADMIN_TOKEN
from tests.support.minio import MinioServer
from tests.support.registry_process import RegistryProcess, s3_flags

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ALIAS_MOVED = model_event_pb2.MODEL_EVENT_TYPE_ALIAS_MOVED


@pytest.fixture
def replicas(
    database_url: str, minio_server: MinioServer, minio_bucket: str, tmp_path: Path
) -> Iterator[tuple[RegistryProcess, RegistryProcess]]:
    flags = [
        "--sweep-interval=0",
        "--health-check-interval=0.5",
        *s3_flags(minio_server, minio_bucket),
    ]
    pair = tuple(
        RegistryProcess(tmp_path / name, *flags, database_url=database_url) for name in "ab"
    )
    try:
        for replica in pair:
            replica.start()
        yield pair[0], pair[1]
    finally:
        for replica in pair:
            replica.stop()


def wait_not_serving(target: str, service: str, timeout: float = 10.0) -> None:
    """Wait until ``target`` reports ``service`` NOT_SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            with contextlib.suppress(grpc.RpcError):
                answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if answer.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    return
            time.sleep(0.1)
    raise AssertionError(f"{service} at {target} still SERVING after {timeout:.0f}s")


def _push(client: Client, folder: Path, content: bytes) -> str:
    (folder / "w.bin").write_bytes(content)
    return client.push(folder, model="m", alias="live", lineage=False).name


def test_pushes_pulls_and_a_watch_survive_each_replica_dying(
    replicas: tuple[RegistryProcess, RegistryProcess],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = replicas
    folder = tmp_path / "model"
    folder.mkdir()
    client = Client(
        f"{a.target},{b.target}", token=ADMIN_TOKEN, cache_dir=tmp_path / "cache", offline=False
    )
    seen: list[str] = []
    try:
        pushed = [_push(client, folder, b"v1")]
        stream = client.watch("m", event_types=[ALIAS_MOVED])
        stream.wait_subscribed()
        reader = threading.Thread(target=lambda: seen.extend(e.model_version for e in stream))
        reader.start()
        with caplog.at_level(logging.WARNING, logger="modelregistry"):
            a.kill()
            pushed.append(_push(client, folder, b"v2"))
            a.start()
            b.kill()
            pushed.append(_push(client, folder, b"v3"))
            assert client.resolve("m@live").name == pushed[-1]
            pulled = client.pull("m@live", tmp_path / "pulled")
            assert (pulled / "w.bin").read_bytes() == b"v3"
            deadline = threading.Event()
            for _ in range(100):  # the reconnected watch catches up within seconds
                if seen[-2:] == pushed[1:]:
                    break
                deadline.wait(0.2)
        stream.close()
        reader.join(10)
    finally:
        client.close()
    assert seen == pushed[1:], "the watch missed or repeated an alias move"
    assert any(
        r.getMessage().startswith("watch:") and "reconnecting" in r.getMessage()
        for r in caplog.records
    ), "the watch never lost its replica"


@pytest.fixture
def replica_on_its_own_database(
    tmp_path: Path,
) -> Iterator[tuple[RegistryProcess, EmbeddedPostgres]]:
    """A replica whose PostgreSQL the test can stop (a database of its own: it gets no calls)."""
    with tempfile.TemporaryDirectory(prefix="mr-test-replica-") as tmp:
        Path(tmp).chmod(0o755)  # PostgreSQL runs as its own user when we are root
        postgres = EmbeddedPostgres(Path(tmp), durable=False)
        postgres.start()
        asyncio.run(ensure_database(postgres.dsn(), "registry"))
        replica = RegistryProcess(
            tmp_path / "c", "--health-check-interval=0.5", database_url=postgres.dsn("registry")
        )
        try:
            replica.start()
            yield replica, postgres
        finally:
            replica.stop()
            postgres.stop()


def test_a_replica_that_reports_not_serving_gets_no_calls(
    replicas: tuple[RegistryProcess, RegistryProcess],
    replica_on_its_own_database: tuple[RegistryProcess, EmbeddedPostgres],
    tmp_path: Path,
) -> None:
    healthy, _ = replicas
    sick, its_database = replica_on_its_own_database
    its_database.stop()  # the sick replica's health turns NOT_SERVING within a second
    wait_not_serving(sick.target, METADATA_SERVICE)
    # No retries: a call sent to the sick replica would fail (DATABASE_UNAVAILABLE).
    with Client(
        f"{healthy.target},{sick.target}", token=ADMIN_TOKEN, retry=NO_RETRY, offline=False
    ) as client:
        client.create_model("m")
        for _ in range(20):
            assert client.get_model("m").name == "models/m"

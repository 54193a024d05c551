"""The SDK given several replicas' addresses rides out the death of each in turn.

Two ``serve`` processes on one database and one MinIO bucket; the client gets both addresses
(``a,b``: round-robin with client-side health checks). Replica A is killed, then restarted,
then B is killed: whichever replica held the watch died at some point, so the watch must have
reconnected to the other and still delivered every alias move; every push and pull goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelregistry import Client
from modelregistry.metadata.v1 import model_event_pb2
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

"""The SDK's push and pull over real gRPC, real PostgreSQL and real MinIO.

Round trips of an awkward tree (nested folders, an empty file, spaces and unicode in names, a
file over 200 MiB), the cache, resume after a killed server or client, and dedupe on re-push.
The in-process server runs on this test's event loop, so every blocking SDK call goes through
``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelregistry import AsyncClient, Client
from modelregistry.artifact.v1 import artifact_service_pb2, artifact_service_pb2_grpc
from modelregistry.cache import Cache
from tests.conftest import RunningRegistry
from tests.support.files import MiB, tree_digests, write_random
from tests.support.progress import CountingProgress
from tests.support.registry_process import RegistryProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def awkward_tree() -> Iterator[Path]:
    """Nested folders, an empty file, spaces and unicode in names, and a 201 MiB file."""
    with tempfile.TemporaryDirectory(prefix="mr-tree-") as tmp:
        root = Path(tmp) / "model"
        write_random(root / "weights" / "model-00001-of-00001.safetensors", 201 * MiB)
        write_random(root / "weights" / "shards" / "deep" / "extra.bin", 3 * MiB + 17)
        (root / "config.json").write_text('{"hidden_size": 64}\n')
        (root / "empty.txt").touch()
        (root / "tokenizer files" / "vocab — größe ü.txt").parent.mkdir(parents=True)
        (root / "tokenizer files" / "vocab — größe ü.txt").write_text("ä ö ü\n" * 1000)
        (root / "weights" / "same content.bin").write_bytes(b"dup" * 1000)
        (root / "weights" / "same content copy.bin").write_bytes(b"dup" * 1000)
        yield root


async def test_push_then_pull_reproduces_the_tree_and_the_second_pull_is_served_from_cache(
    s3_registry: RunningRegistry, awkward_tree: Path, tmp_path: Path
) -> None:
    counters = s3_registry.server.artifact_counters
    assert counters is not None
    assert (counters.write_bytes, counters.direct_upload_urls) == (0, 0)  # a fresh registry
    client = Client(s3_registry.target, cache_dir=tmp_path / "push-cache")
    version = await asyncio.to_thread(
        client.push,
        awkward_tree,
        model="awkward",
        params={"lr": 0.001, "epochs": 3, "warmup": True, "optimizer": "adamw"},
        metrics={"accuracy": 0.91},
        alias="production",
    )
    assert version.version == 1
    assert len(version.files) == 7
    # MinIO is reachable from here: every file went by a direct upload, none through Write.
    assert counters.write_bytes == 0
    assert counters.direct_upload_urls == len({f.sha256 for f in version.files})
    # The background scan of the commit reads the blobs too: let it finish before counting.
    scanner = s3_registry.server.scanner
    assert scanner is not None
    for _ in range(400):
        if scanner.scanned:
            break
        await asyncio.sleep(0.05)

    # A different cache: this is another machine pulling what was pushed.
    puller = Client(s3_registry.target, cache_dir=tmp_path / "pull-cache")
    reads, urls = counters.reads, counters.download_urls
    dest = await asyncio.to_thread(puller.pull, "awkward@production", tmp_path / "first")
    assert dest == tmp_path / "first"
    assert tree_digests(dest) == tree_digests(awkward_tree)
    # MinIO is reachable from here, so the bytes came by presigned URL: one per distinct
    # non-empty blob (the empty file needs no bytes).
    assert counters.download_urls - urls == 5
    assert counters.reads == reads

    reads, urls = counters.reads, counters.download_urls
    snapshot = await asyncio.to_thread(puller.pull, "awkward@production")
    again = await asyncio.to_thread(puller.pull, "awkward:1", tmp_path / "second")
    assert tree_digests(snapshot) == tree_digests(awkward_tree)
    assert tree_digests(again) == tree_digests(awkward_tree)
    assert (counters.reads, counters.download_urls) == (reads, urls), "second pull hit the server"
    client.close()
    puller.close()


async def test_repush_of_an_unchanged_model_uploads_no_blob_bytes(
    s3_registry: RunningRegistry, awkward_tree: Path, tmp_path: Path
) -> None:
    counters = s3_registry.server.artifact_counters
    assert counters is not None
    client = Client(s3_registry.target, cache_dir=tmp_path / "cache")
    first = CountingProgress()
    await asyncio.to_thread(client.push, awkward_tree, model="again", progress=first)
    total = sum(f.stat().st_size for f in awkward_tree.rglob("*") if f.is_file())  # noqa: ASYNC240
    assert first.bytes_for("pushing") == total - 3000  # the duplicate file is sent once

    written = counters.write_bytes
    second = CountingProgress()
    repushed = await asyncio.to_thread(client.push, awkward_tree, model="again", progress=second)
    assert repushed.version == 2
    assert second.bytes_for("pushing") == 0
    assert counters.write_bytes == written
    client.close()


@pytest.fixture
def local_server(database_url: str, tmp_path: Path) -> Iterator[RegistryProcess]:
    """The registry as a subprocess with a local blob directory, so that pulls use ``Read``."""
    server = RegistryProcess(
        tmp_path, "--sweep-interval=0", "--shutdown-grace=0", database_url=database_url
    )
    server.start()
    yield server
    server.stop()


class KillOnce(CountingProgress):
    """Kills (and restarts) the server once the pull has moved ``after`` bytes."""

    def __init__(self, server: RegistryProcess, after: int) -> None:
        super().__init__()
        self.server = server
        self.after = after
        self.killed_at: int | None = None
        self.restarter: threading.Thread | None = None

    def advance(self, nbytes: int) -> None:
        super().advance(nbytes)
        if self.killed_at is None and self.bytes_for("pulling") >= self.after:
            self.killed_at = self.bytes_for("pulling")
            self.server.kill()
            # Restart from another thread: this one belongs to the download being interrupted.
            self.restarter = threading.Thread(target=self._restart)
            self.restarter.start()

    def _restart(self) -> None:
        time.sleep(0.5)
        self.server.start()


def test_pull_resumes_after_the_artifact_server_is_killed_mid_file(
    local_server: RegistryProcess, tmp_path: Path
) -> None:
    source = tmp_path / "model"
    for index in range(3):
        write_random(source / f"small-{index}.bin", MiB + index)
    write_random(source / "big.safetensors", 96 * MiB)
    client = Client(local_server.target, cache_dir=tmp_path / "push-cache")
    client.push(source, model="resumable", alias="production")
    client.close()

    total = sum(p.stat().st_size for p in source.iterdir())
    progress = KillOnce(local_server, after=40 * MiB)
    puller = Client(local_server.target, cache_dir=tmp_path / "pull-cache")
    dest = puller.pull("resumable@production", tmp_path / "out", progress=progress)
    assert progress.restarter is not None
    progress.restarter.join()
    assert progress.killed_at is not None
    assert progress.killed_at < total
    assert tree_digests(dest) == tree_digests(source)
    # Every byte crossed the wire exactly once: no finished file and no finished part of the
    # interrupted file was fetched again.
    assert progress.bytes_for("pulling") == total
    assert not list((tmp_path / "pull-cache").rglob("*.incomplete"))
    puller.close()


_INTERRUPTED_PUSH = textwrap.dedent(
    """
    import os, sys
    from modelregistry import Client

    class DieAfter:
        def __init__(self):
            self.sent = 0
        def start(self, total_bytes, total_files, description):
            self.phase = description
        def advance(self, nbytes):
            if self.phase.startswith("pushing"):
                self.sent += nbytes
                if self.sent >= int(sys.argv[4]):
                    os._exit(9)  # like a SIGKILL or a pulled plug: no clean-up runs
        def file_done(self, path):
            pass
        def finish(self):
            pass

    client = Client(sys.argv[1], cache_dir=sys.argv[2])
    client.push(sys.argv[3], model="interrupted", progress=DieAfter())
    """
)


async def test_interrupted_push_resumes_without_resending_committed_parts(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    source = tmp_path / "model"
    write_random(source / "weights.bin", 100 * MiB)
    cache_dir = tmp_path / "cache"
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            _INTERRUPTED_PUSH,
            registry.target,
            str(cache_dir),
            str(source),
            str(80 * MiB),
        ],
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 9, result.stderr.decode()

    # The killed push left its session in the cache; the server has some of it durably (whole
    # parts of 16 MiB, two in flight: parts still in flight when the client died do not count).
    digest = hashlib.sha256((source / "weights.bin").read_bytes()).hexdigest()
    session = Cache(cache_dir).uploads.session(digest, 100 * MiB)
    assert session is not None
    stub = artifact_service_pb2_grpc.ArtifactServiceStub(registry.channel)
    status = await stub.QueryWriteStatus(
        artifact_service_pb2.QueryWriteStatusRequest(upload_session=session)
    )
    assert 0 < status.committed_size < 100 * MiB

    progress = CountingProgress()
    client = Client(registry.target, cache_dir=cache_dir)
    version = await asyncio.to_thread(client.push, source, model="interrupted", progress=progress)
    client.close()
    assert progress.bytes_for("pushing") == 100 * MiB - status.committed_size
    assert Cache(cache_dir).uploads.count() == 0  # the finished upload left no record

    puller = Client(registry.target, cache_dir=tmp_path / "pull-cache")
    pulled = await asyncio.to_thread(puller.pull, version.name.removeprefix("models/"))
    puller.close()
    assert tree_digests(pulled) == tree_digests(source)


async def test_async_client_pushes_and_pulls_without_blocking_the_event_loop(
    s3_registry: RunningRegistry, tmp_path: Path
) -> None:
    source = tmp_path / "model"
    write_random(source / "w" / "weights.bin", 24 * MiB)
    (source / "config.json").write_text("{}")
    # The server runs on this very event loop: if push/pull blocked it, they would deadlock.
    async with AsyncClient(s3_registry.target, cache_dir=tmp_path / "cache") as client:
        version = await client.push(source, model="async-model", alias="production")
        assert version.version == 1
        pulled = await client.pull("async-model@production", tmp_path / "out")
    assert tree_digests(pulled) == tree_digests(source)

"""Backup and restore (deploy/backup/registry_backup.py) end to end: a registry on a real
PostgreSQL and a real MinIO is backed up, the backup is restored into a fresh PostgreSQL server
and a fresh MinIO server, and a registry started on that pair serves what the first one held.

The tool runs as a subprocess with the server's Python, as an operator runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from modelregistry import Client
from modelregistry.metadata.v1 import model_version_pb2
from modelregistry_server.artifacts.domain.blob import blob_key
from modelregistry_server.common.adapters.embedded_postgres import (
    EmbeddedPostgres,
    postgres_bin_dir,
)
from modelregistry_server.metadata.adapters.postgres.rows import QUERIES
from modelregistry_server.metadata.app.housekeeping import GC_JOB
from tests.conftest import RunningRegistry
from tests.support.minio import MinioServer
from tests.support.postgres import with_database
from tests.support.registry_process import RegistryProcess, clean_env, s3_flags
from tests.support.sdk import off_loop

pytestmark = pytest.mark.e2e

TOOL = Path(__file__).resolve().parents[2] / "deploy" / "backup" / "registry_backup.py"
READY = model_version_pb2.MODEL_VERSION_STATE_READY
# Above one 1 MiB chunk, so uploads and the backup's copy go through more than one.
FILES = {
    "model.safetensors": os.urandom(3 << 20),
    "config.json": b'{"layers": 4}',
    "tokenizer/vocab.txt": b"a\nb\nc\n",
}


@dataclass
class FreshPair:
    """A PostgreSQL server with an empty ``registry`` database, and an empty MinIO server."""

    database_url: str
    minio: MinioServer


@pytest.fixture
def fresh_pair() -> Iterator[FreshPair]:
    """Servers of their own, nothing shared with the session's: what a rebuilt site has.

    Sync, so both start on the main thread: their parent-death signal follows the thread
    that started them (tests/support/minio.py).
    """
    with tempfile.TemporaryDirectory(prefix="mr-restore-pg-") as tmp:
        postgres = EmbeddedPostgres(Path(tmp), durable=False)
        postgres.start()
        try:
            with MinioServer() as minio:
                psql = [str(postgres_bin_dir() / "psql"), "--no-psqlrc", postgres.dsn()]
                subprocess.run([*psql, "-c", "CREATE DATABASE registry"], check=True,
                               capture_output=True, env=clean_env())  # fmt: skip
                yield FreshPair(with_database(postgres.dsn(), "registry"), minio)
        finally:
            postgres.stop()


def run_tool(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``registry_backup.py`` with the server's Python; the caller checks the outcome."""
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        capture_output=True, text=True, timeout=60, env={**clean_env(), **(env or {})},
    )  # fmt: skip


def server_env(database_url: str, minio: MinioServer, bucket: str) -> dict[str, str]:
    """The server's own variables, which the tool reads its connections from."""
    return {
        "MODELREGISTRY_DATABASE_URL": database_url,
        "MODELREGISTRY_S3_ENDPOINT": minio.endpoint,
        "MODELREGISTRY_S3_ACCESS_KEY": minio.access_key,
        "MODELREGISTRY_S3_SECRET_KEY": minio.secret_key,
        "MODELREGISTRY_S3_BUCKET": bucket,
    }


def model_folder(root: Path) -> Path:
    """FILES written under ``root/model``."""
    for name, data in FILES.items():
        path = root / "model" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root / "model"


def restore_flags(pair: FreshPair, bucket: str) -> list[str]:
    """Restore's connections as flags, the server's own (backup takes the variables)."""
    return [f"--database-url={pair.database_url}", *s3_flags(pair.minio, bucket)]


def push_and_promote(
    target: str, tmp_path: Path
) -> tuple[model_version_pb2.ModelVersion, tuple[int, str]]:
    """Push FILES as ``llm`` v1 with alias ``production``; return it and the audit chain head."""
    with Client(target) as client:
        version = client.push(model_folder(tmp_path), model="llm", params={"lr": 0.1})
        client.set_alias("llm", "production", version.version)
        head = client.verify_audit_log()
    assert head.intact
    return version, (head.head_chain_position, head.head_hash)


async def test_a_backup_restored_into_a_fresh_pair_serves_the_model_and_takes_new_pushes(
    s3_registry: RunningRegistry,
    database_url: str,
    minio_server: MinioServer,
    minio_bucket: str,
    fresh_pair: FreshPair,
    tmp_path: Path,
) -> None:
    version, anchor = await off_loop(lambda: push_and_promote(s3_registry.target, tmp_path))
    backup_dir = tmp_path / "backup"

    # The URL, with its password, from a file, as the server takes it from a mounted secret.
    env = server_env(database_url, minio_server, minio_bucket)
    (tmp_path / "database-url").write_text(env.pop("MODELREGISTRY_DATABASE_URL") + "\n")
    env["MODELREGISTRY_DATABASE_URL_FILE"] = str(tmp_path / "database-url")
    started = time.monotonic()
    backed_up = await off_loop(lambda: run_tool("backup", f"--output={backup_dir}", env=env))
    backup_s = time.monotonic() - started
    assert backed_up.returncode == 0, backed_up.stderr
    manifest = json.loads((backup_dir / "backup.json").read_text())
    digests = {f.sha256 for f in version.files}
    assert {b["sha256"] for b in manifest["blobs"]} == digests
    assert manifest["dropped_blobs"] == []
    for sha in digests:  # the copy is the bucket's layout, named by content
        assert (backup_dir / blob_key(sha)).is_file()

    started = time.monotonic()
    restored = await off_loop(lambda: run_tool(
        "restore", f"--input={backup_dir}", *restore_flags(fresh_pair, "restored")
    ))  # fmt: skip
    restore_s = time.monotonic() - started
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["blobs_uploaded"] == len(digests)
    # Shown with -s; deploy/docs/operations.md has the figures at 1 GiB.
    print(f"backup {backup_s:.2f} s, restore {restore_s:.2f} s, {manifest['blob_bytes']} bytes")

    server = RegistryProcess(
        tmp_path / "restored", "--sweep-interval=0", *s3_flags(fresh_pair.minio, "restored"),
        database_url=fresh_pair.database_url,
    )  # fmt: skip
    await off_loop(server.start)
    try:
        await off_loop(lambda: check_restored(server.target, tmp_path, version, anchor))
    finally:
        await off_loop(server.stop)


def check_restored(
    target: str, tmp_path: Path, version: model_version_pb2.ModelVersion, anchor: tuple[int, str]
) -> None:
    """The restored registry: the alias, the bytes, the audit chain, and room for new versions."""
    with Client(target, cache_dir=tmp_path / "fresh-cache") as client:
        resolved = client.resolve("llm@production")
        assert (resolved.uid, resolved.version, resolved.state) == (version.uid, 1, READY)
        pulled = client.pull("llm@production", tmp_path / "pulled")  # verifies every sha256
        assert {name: (pulled / name).read_bytes() for name in FILES} == FILES
        # The chain still holds the head taken before the backup: nothing lost or rewritten.
        report = client.verify_audit_log(anchor=anchor)
        assert report.intact, report.problem
        # Sequences and counters came along: the next version is 2, its events chain on.
        (tmp_path / "v2").mkdir()
        (tmp_path / "v2" / "model.safetensors").write_bytes(b"retrained")
        second = client.push(tmp_path / "v2", model="llm", alias="production")
        assert (second.version, second.state) == (2, READY)
        after = client.verify_audit_log(anchor=anchor)
        assert after.intact, after.problem
        assert after.head_chain_position > anchor[0]


async def test_a_restore_into_a_database_that_has_a_registry_is_refused(
    s3_registry: RunningRegistry,
    database_url: str,
    minio_server: MinioServer,
    minio_bucket: str,
    tmp_path: Path,
) -> None:
    await off_loop(lambda: push_and_promote(s3_registry.target, tmp_path))
    env = server_env(database_url, minio_server, minio_bucket)
    assert (
        await off_loop(lambda: run_tool("backup", f"--output={tmp_path / 'b'}", env=env))
    ).returncode == 0

    refused = await off_loop(lambda: run_tool("restore", f"--input={tmp_path / 'b'}", env=env))

    assert refused.returncode == 1
    assert "already has the schema(s) access, artifacts, audit, metadata" in refused.stderr


async def test_a_referenced_blob_missing_from_the_store_fails_the_backup(
    s3_registry: RunningRegistry,
    database_url: str,
    minio_server: MinioServer,
    minio_bucket: str,
    tmp_path: Path,
) -> None:
    # What a garbage collection started by hand could do between the dump and the copy
    # (the scheduled one is locked out): the backup must not pass as complete.
    version, _ = await off_loop(lambda: push_and_promote(s3_registry.target, tmp_path))
    sha = version.files[0].sha256
    minio_server.client().remove_object(minio_bucket, blob_key(sha))
    env = server_env(database_url, minio_server, minio_bucket)

    failed = await off_loop(lambda: run_tool("backup", f"--output={tmp_path / 'b'}", env=env))

    assert failed.returncode == 1
    assert "live versions reference were deleted" in failed.stderr
    assert not (tmp_path / "b" / "backup.json").exists()


async def test_the_backup_waits_for_a_running_garbage_collection(
    s3_registry: RunningRegistry,
    database_url: str,
    minio_server: MinioServer,
    minio_bucket: str,
    tmp_path: Path,
) -> None:
    # Hold the lock a scheduled GC run holds (the server's own query): the backup must not
    # start its snapshot under a running collection.
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            assert await conn.fetchval(QUERIES["try_lock_scheduled_job"], GC_JOB)
            env = server_env(database_url, minio_server, minio_bucket)
            waited = await off_loop(lambda: run_tool(
                "backup", f"--output={tmp_path / 'b'}", "--gc-lock-wait=1", env=env
            ))  # fmt: skip
    finally:
        await conn.close()
    assert waited.returncode == 1
    assert "garbage collection held its lock" in waited.stderr


async def test_an_unreferenced_blob_deleted_during_the_backup_leaves_the_restored_index(
    s3_registry: RunningRegistry,
    database_url: str,
    minio_server: MinioServer,
    minio_bucket: str,
    fresh_pair: FreshPair,
    tmp_path: Path,
) -> None:
    # A deleted version's blob that a GC run removes after the dump: the dump's index still
    # lists it. The restored index must not, or FindMissingBlobs would report it present and a
    # later push of the same bytes would commit a version whose blob is in no store.
    version, _ = await off_loop(lambda: push_and_promote(s3_registry.target, tmp_path))

    def scratch_version() -> str:
        (tmp_path / "scratch").mkdir()
        (tmp_path / "scratch" / "notes.txt").write_bytes(b"abandoned experiment")
        with Client(s3_registry.target) as client:
            scratch = client.push(tmp_path / "scratch", model="scratch")
            client.delete_version("scratch", scratch.version)
        return scratch.files[0].sha256

    gone = await off_loop(scratch_version)
    minio_server.client().remove_object(minio_bucket, blob_key(gone))
    env = server_env(database_url, minio_server, minio_bucket)
    backed_up = await off_loop(lambda: run_tool("backup", f"--output={tmp_path / 'b'}", env=env))
    assert backed_up.returncode == 0, backed_up.stderr
    assert json.loads((tmp_path / "b" / "backup.json").read_text())["dropped_blobs"] == [gone]

    restore = ["restore", f"--input={tmp_path / 'b'}", *restore_flags(fresh_pair, "restored")]
    restored = await off_loop(lambda: run_tool(*restore))

    assert restored.returncode == 0, restored.stderr
    conn = await asyncpg.connect(fresh_pair.database_url)
    try:
        indexed = {r["sha256"] for r in await conn.fetch("SELECT sha256 FROM artifacts.blobs")}
    finally:
        await conn.close()
    assert indexed == {f.sha256 for f in version.files}


async def test_a_restore_onto_the_surviving_bucket_uploads_nothing(
    s3_registry: RunningRegistry,
    database_url: str,
    postgres_admin_url: str,
    minio_server: MinioServer,
    minio_bucket: str,
    tmp_path: Path,
) -> None:
    # Only the database was lost: the bucket already holds every blob, so restore sends none
    # and only loads the dump (deploy/docs/operations.md, "Only the database lost").
    version, _ = await off_loop(lambda: push_and_promote(s3_registry.target, tmp_path))
    env = server_env(database_url, minio_server, minio_bucket)
    backed_up = await off_loop(lambda: run_tool("backup", f"--output={tmp_path / 'b'}", env=env))
    assert backed_up.returncode == 0, backed_up.stderr
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute("CREATE DATABASE mr_rebuilt")
        rebuilt = with_database(postgres_admin_url, "mr_rebuilt")
        restore = ["restore", f"--input={tmp_path / 'b'}", f"--database-url={rebuilt}"]
        restored = await off_loop(
            lambda: run_tool(*restore, env={**env, "MODELREGISTRY_DATABASE_URL": ""})
        )
        assert restored.returncode == 0, restored.stderr
        counts = json.loads(restored.stdout)
        assert (counts["blobs_uploaded"], counts["blobs_present"]) == (0, len(version.files))
        conn = await asyncpg.connect(rebuilt)
        try:
            uid = await conn.fetchval("SELECT uid FROM metadata.model_versions WHERE version = 1")
        finally:
            await conn.close()
        assert str(uid) == version.uid
    finally:
        await admin.execute("DROP DATABASE IF EXISTS mr_rebuilt WITH (FORCE)")
        await admin.close()


def test_the_tool_explains_itself() -> None:
    shown = run_tool("--help")
    assert shown.returncode == 0
    assert "backup" in shown.stdout
    assert "restore" in shown.stdout
    # Without a database URL from flag or variable it says what is missing, and does nothing.
    refused = run_tool("backup", "--output=/nonexistent/never-created")
    assert refused.returncode == 2
    assert "missing --database-url, --s3-endpoint" in refused.stderr
    assert not Path("/nonexistent/never-created").exists()

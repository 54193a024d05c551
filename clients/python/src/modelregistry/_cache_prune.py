"""The deletion passes of :meth:`Cache.prune <modelregistry.cache.Cache.prune>`.

Each pass takes the locks that keep it from deleting what a running pull is about to use; see
``Cache.prune`` for what is deleted when.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError

from modelregistry._cache_layout import DIGEST, model_of, sorted_dirs, try_lock
from modelregistry.metadata.v1 import model_version_pb2

if TYPE_CHECKING:
    from modelregistry.cache import Cache


@contextlib.contextmanager
def exclusive(root: Path, dry_run: bool) -> Iterator[bool]:
    """The cache lock, exclusively and without waiting: yields False if a pull holds it.

    A dry run deletes nothing, so it needs no lock (and creates no lock file).
    """
    if dry_run:
        yield True
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "cache.lock", "a+b") as handle:
        if not try_lock(handle.fileno()):
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def prune_downloads(cache: Cache, cutoff: float, dry_run: bool) -> tuple[int, int, int]:
    """Old ``.incomplete`` files and free ``.lock`` files: ``(files, bytes, locks)``."""
    digests = sorted(
        {
            entry.name.split(".", 1)[0]
            for entry in cache.blob_entries()
            if entry.name.endswith((".incomplete", ".lock"))
        }
    )
    count = size = locks = 0
    for digest in digests:
        if not DIGEST.fullmatch(digest):
            continue
        partial, lock = cache.incomplete_path(digest), cache.lock_path(digest)
        try:
            stat: os.stat_result | None = partial.stat()
        except FileNotFoundError:
            stat = None
        expired = stat is not None and stat.st_mtime < cutoff
        had_lock = lock.exists()
        if not expired and not had_lock:
            continue
        # Take the blob's own lock before deleting its files, so a pull cannot start on
        # them meanwhile; a lock we cannot get belongs to a download in progress.
        flags = os.O_RDONLY if dry_run else os.O_RDWR | os.O_CREAT
        try:
            fd = os.open(lock, flags, 0o644)
        except FileNotFoundError:  # dry run, no lock file: nobody can hold it
            fd = -1
        try:
            if fd >= 0 and not try_lock(fd):
                continue
            if expired and stat is not None:
                if not dry_run:
                    with contextlib.suppress(FileNotFoundError):
                        partial.unlink()
                count += 1
                size += stat.st_size
            if not dry_run:
                # Unlinked while we hold it: blob_lock() notices and locks a new file.
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
            if had_lock:
                locks += 1
        finally:
            if fd >= 0:
                os.close(fd)  # also releases the lock
    return count, size, locks


def prune_blobs(cache: Cache, dry_run: bool) -> tuple[tuple[str, ...], int]:
    """Delete blobs no snapshot links to; call with the cache lock held exclusively."""
    referenced = cache.referenced_digests()
    deleted: list[str] = []
    size = 0
    for entry in cache.blob_entries():
        if not DIGEST.fullmatch(entry.name) or entry.name in referenced:
            continue
        try:
            blob_size = entry.stat().st_size
            if not dry_run:
                entry.unlink()
        except FileNotFoundError:
            continue
        deleted.append(entry.name)
        size += blob_size
    if not dry_run:
        # Fan-out folders left empty; safe now, as no pull is between mkdir and open.
        for folder in sorted_dirs(cache.root / "blobs" / "sha256"):
            with contextlib.suppress(OSError):
                folder.rmdir()
    return tuple(sorted(deleted)), size


def prune_refs(cache: Cache, dry_run: bool) -> int:
    """Delete ref records whose version has no snapshot; call with the cache lock held."""
    dropped = 0
    for folder in sorted_dirs(cache.root / "refs"):
        for record in sorted(folder.glob("*.pb")):
            try:
                version = model_version_pb2.ModelVersion.FromString(record.read_bytes())
            except FileNotFoundError:
                continue
            except DecodeError:  # unreadable: it can answer nothing offline, drop it
                version = model_version_pb2.ModelVersion()
            model = model_of(version)
            if model and cache.snapshot_dir(model, version.version).is_dir():
                continue
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    record.unlink()
            dropped += 1
        if not dry_run:
            with contextlib.suppress(OSError):
                folder.rmdir()
    return dropped

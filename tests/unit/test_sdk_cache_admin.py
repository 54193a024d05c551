"""Cache housekeeping: listing snapshots, removing them, and pruning what nothing needs."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelregistry import _pull
from modelregistry._options import PullOptions
from modelregistry.cache import Cache
from modelregistry.errors import NotCachedError
from tests.unit.cache_fakes import ONLY_1, ONLY_2, SHARED, FakeTransport, filled_cache, sha

DAY = 86400.0


def _age(path: Path, seconds: float) -> None:
    """Set ``path``'s mtime ``seconds`` into the past (works on read-only files too)."""
    moment = time.time() - seconds
    os.utime(path, (moment, moment), follow_symlinks=False)


def _partial(cache: Cache, data: bytes, age: float) -> Path:
    """An unfinished download of ``data`` (its first half), last written ``age`` seconds ago."""
    path = cache.incomplete_path(sha(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    _age(path, age)
    return path


def test_snapshots_count_links_and_each_shared_blob_once(tmp_path: Path) -> None:
    cache = filled_cache(tmp_path)
    before = datetime.now(UTC) - timedelta(minutes=1)
    snapshots = cache.snapshots()
    assert [(s.ref, s.files, s.bytes) for s in snapshots] == [
        ("m:1", 3, len(SHARED) + len(ONLY_1)),  # w.bin and copy/w.bin are one blob
        ("m:2", 2, len(SHARED) + len(ONLY_2)),
    ]
    assert snapshots[0].path == cache.snapshot_dir("m", 1)
    assert all(s.last_used > before for s in snapshots)
    assert all(s.last_used.tzinfo is not None for s in snapshots)


def test_a_warm_pull_refreshes_last_used(tmp_path: Path) -> None:
    cache = filled_cache(tmp_path)
    _age(cache.snapshot_dir("m", 2), 10 * DAY)
    for link in cache.snapshot_dir("m", 2).iterdir():
        _age(link, 10 * DAY)
    old = cache.snapshots()[1].last_used
    assert old < datetime.now(UTC) - timedelta(days=9)
    _pull.pull_model(None, cache, "m@production", offline=True)
    assert cache.snapshots()[1].last_used > old + timedelta(days=9)


def test_usage_counts_blobs_downloads_snapshots_and_uploads(tmp_path: Path) -> None:
    cache = filled_cache(tmp_path)
    partial = _partial(cache, b"x" * 10, 0)
    cache.uploads.save("a" * 64, "session", 3)
    usage = cache.usage()
    assert (usage.blobs, usage.blob_bytes) == (3, len(SHARED) + len(ONLY_1) + len(ONLY_2))
    assert (usage.incomplete, usage.incomplete_bytes) == (1, partial.stat().st_size)
    assert (usage.snapshots, usage.upload_records) == (2, 1)
    assert Cache(tmp_path / "empty").usage().blobs == 0


def test_remove_snapshot_drops_links_only(tmp_path: Path) -> None:
    cache = filled_cache(tmp_path)
    removed = cache.remove_snapshot("m", 1)
    assert [s.ref for s in removed] == ["m:1"]
    assert not cache.snapshot_dir("m", 1).exists()
    assert [s.ref for s in cache.snapshots()] == ["m:2"]
    assert (cache.snapshot_dir("m", 2) / "w.bin").read_bytes() == SHARED
    assert cache.blob_path(sha(ONLY_1)).exists()  # blobs go only when pruned
    assert cache.remove_snapshot("m", 1) == []
    assert cache.remove_snapshot("other") == []
    assert [s.ref for s in cache.remove_snapshot("m")] == ["m:2"]
    assert not (tmp_path / "snapshots" / "m").exists()


@pytest.mark.parametrize("bad", ["", ".", "..", "../m", "a/b"])
def test_remove_snapshot_never_leaves_the_snapshots_folder(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="not a model name"):
        Cache(tmp_path).remove_snapshot(bad)


def test_prune_keeps_shared_blobs_and_drops_orphans_and_their_refs(tmp_path: Path) -> None:
    cache = filled_cache(tmp_path)
    cache.remove_snapshot("m", 1)
    result = cache.prune()
    assert result.deleted_blobs == (sha(ONLY_1),)
    assert (result.blobs, result.blob_bytes, result.bytes_freed) == (1, len(ONLY_1), len(ONLY_1))
    assert not result.busy
    assert not cache.blob_path(sha(ONLY_1)).exists()
    assert cache.blob_path(sha(SHARED)).exists()
    assert (cache.snapshot_dir("m", 2) / "w.bin").read_bytes() == SHARED
    # The records that name version 1 (m@staging, m:1, its uid) would promise missing files.
    assert result.refs == 3
    for ref in ("m@staging", "m:1", "0b5a4cde-1111-4222-8333-444455556661"):
        assert cache.load_ref(ref) is None
    with pytest.raises(NotCachedError):
        _pull.pull_model(None, cache, "m@staging", offline=True)
    recorded = cache.load_ref("m@production")
    assert recorded is not None
    assert recorded.version == 2
    assert _pull.pull_model(None, cache, "m@production", offline=True).is_dir()
    # Nothing is left to delete.
    again = cache.prune()
    assert (again.blobs, again.refs, again.incomplete, again.locks) == (0, 0, 0, 0)


def test_prune_deletes_old_unlocked_downloads_and_stale_locks(tmp_path: Path) -> None:
    cache = filled_cache(tmp_path)
    old = _partial(cache, b"old" * 100, 2 * DAY)
    fresh = _partial(cache, b"fresh" * 100, 60)
    busy_data = b"busy" * 100
    busy = _partial(cache, busy_data, 2 * DAY)
    # The pulls left one lock file per downloaded blob; nobody holds them now.
    stale = sorted(p.name for p in (tmp_path / "blobs").rglob("*.lock"))
    assert len(stale) == 3
    with cache.blob_lock(sha(busy_data)):  # a pull writing `busy` right now
        result = cache.prune(incomplete_older_than=timedelta(hours=1))
    assert not old.exists()
    assert fresh.exists()
    assert busy.exists()
    assert (result.incomplete, result.incomplete_bytes) == (1, 150)
    assert result.locks == 3  # the pulls' locks; the busy one was held, `old` had none
    assert not any(p.name in stale for p in (tmp_path / "blobs").rglob("*.lock"))
    assert cache.lock_path(sha(busy_data)).exists()
    # With a larger limit the fresh download is not old enough either, the busy one now is.
    result = cache.prune(incomplete_older_than=timedelta(days=1))
    assert (result.incomplete, fresh.exists(), busy.exists()) == (1, True, False)


def test_a_dry_run_deletes_nothing(tmp_path: Path) -> None:
    cache = filled_cache(tmp_path)
    cache.remove_snapshot("m", 2)
    _partial(cache, b"old" * 100, 2 * DAY)

    def listing() -> list[Path]:
        return sorted(tmp_path.rglob("*"))

    before = listing()
    dry = cache.prune(dry_run=True)
    assert listing() == before
    assert dry.dry_run
    assert (dry.blobs, dry.blob_bytes, dry.incomplete, dry.locks, dry.refs) == (
        1,
        len(ONLY_2),
        1,
        3,
        3,
    )
    real = cache.prune()
    assert (real.blobs, real.blob_bytes, real.incomplete, real.locks, real.refs) == (
        dry.blobs,
        dry.blob_bytes,
        dry.incomplete,
        dry.locks,
        dry.refs,
    )


def test_prune_keeps_blobs_and_refs_while_a_pull_runs(tmp_path: Path) -> None:
    cache = filled_cache(tmp_path)
    cache.remove_snapshot("m", 1)
    old = _partial(cache, b"old" * 100, 2 * DAY)
    with cache.in_use():  # a pull between downloading a blob and linking it
        result = cache.prune()
    assert result.busy
    assert (result.blobs, result.refs) == (0, 0)
    assert cache.blob_path(sha(ONLY_1)).exists()
    assert cache.load_ref("m@staging") is not None
    assert not old.exists()  # downloads have their own locks: pruned all the same
    assert cache.prune().blobs == 1


def test_a_pull_waiting_on_a_pruned_lock_file_locks_the_new_one(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    digest = sha(b"x")
    lock = cache.lock_path(digest)
    lock.parent.mkdir(parents=True)
    entered, release = threading.Event(), threading.Event()

    def download() -> None:
        with cache.blob_lock(digest):
            entered.set()
            release.wait(10)

    with open(lock, "a+b") as pruner:  # prune holds the lock while it deletes the file
        fcntl.flock(pruner.fileno(), fcntl.LOCK_EX)
        worker = threading.Thread(target=download)
        worker.start()
        time.sleep(0.1)
        assert not entered.is_set()
        lock.unlink()
    assert entered.wait(10)
    # The waiter holds the file that is there now, so a second downloader would wait for it.
    fd = os.open(lock, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
        release.set()
        worker.join(10)


def test_pulling_after_prune_downloads_what_was_deleted(tmp_path: Path) -> None:
    cache = filled_cache(tmp_path)
    cache.remove_snapshot("m")
    cache.prune()
    assert cache.usage().blobs == 0
    transport: Any = FakeTransport()
    snapshot = _pull.pull_model(transport, cache, "m@staging", PullOptions(parallelism=1))
    assert (snapshot / "copy" / "w.bin").read_bytes() == SHARED
    assert (snapshot / "config.json").read_bytes() == ONLY_1

"""The local cache: blobs keyed by digest, version snapshots made of links, and ref records.

Layout under the root (``$MODELREGISTRY_CACHE``, else ``$XDG_CACHE_HOME/modelregistry``, else
``~/.cache/modelregistry``)::

    blobs/sha256/<aa>/<64 hex>              complete, verified file contents (read-only)
    blobs/sha256/<aa>/<64 hex>.incomplete   a download in progress; a later pull resumes it
    blobs/sha256/<aa>/<64 hex>.lock         held while one process downloads that blob
    snapshots/<model>/<version>/<path>      symlinks into blobs/, one folder per version
    refs/<model>/<ref>.pb                   the last answer for a reference (offline mode)
    uploads/<64 hex>.json                   the upload session of an interrupted push
    hashes.sqlite                           file digests by (path, size, mtime, inode)
    cache.lock                              shared by every pull, exclusive while pruning

Contents are addressed by digest, so two versions sharing a file store it once, and a repeat
pull of the same version reads and writes no file bytes at all.

Nothing is ever deleted by a pull. :meth:`Cache.remove_snapshot` drops the links of a version
and :meth:`Cache.prune` then deletes what no snapshot needs any more: blobs no link points to,
abandoned downloads, stale locks and ref records of versions that are gone.

Beside it, in their own modules: the passes that prune runs (``_cache_prune``), the upload
journal of resumable pushes (``_upload_journal``, ``Cache.uploads``), the hash memo that spares
re-pushes their hashing (``_hash_memo``, ``Cache.digests``) and the on-disk naming they share
(``_cache_layout``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from modelregistry import _cache_prune
from modelregistry._cache_layout import (
    DIGEST,
    TEMPORARY,
    is_same_file,
    links,
    model_of,
    replace_atomically,
    sorted_dirs,
)
from modelregistry._hash_memo import HashMemo
from modelregistry._refs import parse_ref, parse_version_number
from modelregistry._upload_journal import UploadJournal
from modelregistry.errors import NotCachedError
from modelregistry.metadata.v1 import model_version_pb2

ENV_CACHE = "MODELREGISTRY_CACHE"
# replace_atomically is where pulls get it from too.
__all__ = ["Cache", "CacheUsage", "PruneResult", "SnapshotInfo", "replace_atomically"]


@dataclass(frozen=True)
class SnapshotInfo:
    """One cached version: its folder of links and what they take on disk.

    ``bytes`` counts each distinct blob once (two paths with the same contents share a blob),
    so it is what deleting this snapshot alone could free at most; blobs shared with other
    snapshots stay. ``last_used`` is the newest mtime of the folder and its links, which every
    pull of the version refreshes.
    """

    model: str
    version: int
    path: Path
    files: int
    bytes: int
    last_used: datetime

    @property
    def ref(self) -> str:
        """``model:version``, the reference users type."""
        return f"{self.model}:{self.version}"


@dataclass(frozen=True)
class CacheUsage:
    """What the cache holds on disk."""

    blobs: int
    blob_bytes: int
    incomplete: int
    incomplete_bytes: int
    snapshots: int
    upload_records: int


@dataclass(frozen=True)
class PruneResult:
    """What :meth:`Cache.prune` deleted (or, with ``dry_run``, would delete).

    ``busy`` means a pull was running, so unreferenced blobs and ref records were kept: that
    pull may be about to link the one or record the other. Run prune again once it is done.
    """

    dry_run: bool
    blobs: int
    blob_bytes: int
    incomplete: int
    incomplete_bytes: int
    locks: int
    refs: int
    busy: bool = False
    deleted_blobs: tuple[str, ...] = ()

    @property
    def bytes_freed(self) -> int:
        """Blob and incomplete-download bytes together (locks and refs are negligible)."""
        return self.blob_bytes + self.incomplete_bytes


def default_cache_dir() -> Path:
    """``$MODELREGISTRY_CACHE``, else the XDG cache folder, else ``~/.cache/modelregistry``."""
    explicit = os.environ.get(ENV_CACHE)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "modelregistry"


def ref_key(ref: str) -> tuple[str, str]:
    """``(model, file stem)`` under which a reference's answer is recorded.

    Every spelling of one reference (``models/`` prefix, ``/versions/N`` or ``:N``) gets the same
    key; the server stays the authority on what a reference means. A malformed reference
    raises :class:`~modelregistry.errors.InvalidArgumentError`, as the server would.
    """
    parsed = parse_ref(ref)
    if parsed.kind == "uid":
        # A uid or a model name; the server decides. Record it under a shared folder so a
        # model called like a uuid cannot collide with a real uid's record.
        return "_uid", parsed.value
    if parsed.kind == "latest":
        return parsed.model, "latest"
    return parsed.model, quote(parsed.canonical.removeprefix(parsed.model), safe="")


class Cache:
    """A content-addressed file cache shared by every pull and push of this user."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.uploads = UploadJournal(self.root / "uploads")
        """The upload sessions of unfinished pushes (see :mod:`modelregistry._upload_journal`)."""
        self.digests = HashMemo(self.root / "hashes.sqlite")
        """Digests of local files already hashed (see :mod:`modelregistry._hash_memo`)."""

    # --- blobs -----------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        """Where the verified bytes of ``sha256`` live."""
        return self.root / "blobs" / "sha256" / sha256[:2] / sha256

    def incomplete_path(self, sha256: str) -> Path:
        """Where a download of ``sha256`` writes until it is verified."""
        return self.blob_path(sha256).with_name(sha256 + ".incomplete")

    def has_blob(self, sha256: str, size: int) -> bool:
        """True if the cache holds ``sha256`` with the expected size.

        The digest was verified when the blob entered the cache; re-hashing here would make every
        warm pull read every byte, so only the size is checked.
        """
        try:
            return self.blob_path(sha256).stat().st_size == size
        except FileNotFoundError:
            return False

    def lock_path(self, sha256: str) -> Path:
        """The lock file a download of ``sha256`` holds."""
        return self.blob_path(sha256).with_name(sha256 + ".lock")

    @contextlib.contextmanager
    def blob_lock(self, sha256: str) -> Iterator[None]:
        """Hold an exclusive lock on downloading ``sha256`` (across processes)."""
        path = self.lock_path(sha256)
        while True:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                # prune() deletes lock files nobody holds. If it deleted this one while we
                # waited, we hold a lock on an unlinked file that a newcomer would not see:
                # lock the file that is there now instead.
                if not is_same_file(handle.fileno(), path):
                    continue
                try:
                    yield
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                return

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Hold a shared lock on the cache while a pull resolves, downloads and links.

        Between downloading a blob (or finding it cached) and linking it into a snapshot, the
        blob is referenced by nothing, and the ref record a pull saves comes before its
        snapshot. :meth:`prune` takes this lock exclusively before deleting either, so it never
        takes files from under a running pull; pulls share it and do not wait for each other.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = open(self.root / "cache.lock", "a+b")  # noqa: SIM115 - closed below
        except OSError:
            # A read-only cache (a mounted, pre-filled one used offline) still serves warm
            # pulls, which write nothing; and nobody can prune it either.
            yield
            return
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def admit(self, sha256: str, verified_file: Path) -> Path:
        """Move a verified download into place, read-only so a snapshot cannot be edited."""
        target = self.blob_path(sha256)
        verified_file.chmod(0o444)
        os.replace(verified_file, target)
        return target

    # --- snapshots -------------------------------------------------------------------------

    def snapshot_dir(self, model: str, version: int) -> Path:
        """The folder of links that presents one version's files under their manifest paths."""
        return self.root / "snapshots" / model / str(version)

    def snapshots(self) -> list[SnapshotInfo]:
        """Every cached version, sorted by model and version number."""
        found = []
        for model, version, path in self._snapshot_dirs():
            try:
                newest = path.lstat().st_mtime
            except FileNotFoundError:  # removed while we listed
                continue
            files = 0
            digests: set[str] = set()
            for link, target in links(path):
                # A temporary link is a pull replacing a file: not one of the version's files.
                if not TEMPORARY.fullmatch(link.name):
                    files += 1
                digests.add(os.path.basename(target))
                newest = max(newest, link.lstat().st_mtime)
            size = 0
            for digest in digests:
                # A dangling link (its blob pruned or never finished) takes no space.
                with contextlib.suppress(OSError):
                    size += self.blob_path(digest).stat().st_size
            found.append(
                SnapshotInfo(
                    model=model,
                    version=version,
                    path=path,
                    files=files,
                    bytes=size,
                    last_used=datetime.fromtimestamp(newest, UTC),
                )
            )
        return found

    def remove_snapshot(self, model: str, version: int | None = None) -> list[SnapshotInfo]:
        """Delete the snapshot of ``model:version``, or of every version when ``version`` is None.

        Only the folders of links go; blobs stay, because other versions may share them and a
        re-pull of this one then costs nothing. :meth:`prune` deletes the blobs no snapshot
        needs any more. Returns what was removed (empty if nothing was cached).
        """
        if model in ("", ".", "..") or "/" in model or "\\" in model or "\0" in model:
            # The name becomes a path under snapshots/: never let it point anywhere else.
            raise ValueError(f"not a model name: {model!r}")
        removed = [
            info
            for info in self.snapshots()
            if info.model == model and (version is None or info.version == version)
        ]
        for info in removed:
            # rmtree unlinks the links themselves; it never follows them into blobs/.
            shutil.rmtree(info.path)
        with contextlib.suppress(OSError):  # not empty: other versions (or a pull) remain
            (self.root / "snapshots" / model).rmdir()
        return removed

    def _snapshot_dirs(self) -> Iterator[tuple[str, int, Path]]:
        """``(model, version, folder)`` of every snapshot, sorted."""
        root = self.root / "snapshots"
        for model_dir in sorted_dirs(root):
            versions = [
                d for d in sorted_dirs(model_dir) if parse_version_number(d.name) is not None
            ]
            for version_dir in sorted(versions, key=lambda d: int(d.name)):
                yield model_dir.name, int(version_dir.name), version_dir

    def referenced_digests(self) -> set[str]:
        """The digests any snapshot links to, temporary links of a running pull included."""
        return {
            os.path.basename(target)
            for _, _, path in self._snapshot_dirs()
            for _, target in links(path)
        }

    # --- housekeeping ----------------------------------------------------------------------

    def usage(self) -> CacheUsage:
        """Count what the cache holds: blobs, unfinished downloads, snapshots, upload records."""
        blobs = blob_bytes = incomplete = incomplete_bytes = 0
        for entry in self.blob_entries():
            name = entry.name
            with contextlib.suppress(OSError):  # deleted while we looked
                if DIGEST.fullmatch(name):
                    blob_bytes += entry.stat().st_size
                    blobs += 1
                elif name.endswith(".incomplete"):
                    incomplete_bytes += entry.stat().st_size
                    incomplete += 1
        return CacheUsage(
            blobs=blobs,
            blob_bytes=blob_bytes,
            incomplete=incomplete,
            incomplete_bytes=incomplete_bytes,
            snapshots=sum(1 for _ in self._snapshot_dirs()),
            upload_records=self.uploads.count(),
        )

    def prune(
        self, *, incomplete_older_than: timedelta = timedelta(days=1), dry_run: bool = False
    ) -> PruneResult:
        """Delete what no snapshot needs; with ``dry_run``, only count it.

        - blobs no snapshot links to (after :meth:`remove_snapshot`, a snapshot folder deleted
          by hand, or a pull that failed after downloading some files);
        - ``.incomplete`` downloads last written more than ``incomplete_older_than`` ago and
          not being written now (their ``.lock`` is free): a later pull would resume a fresh
          one, an old one is most likely abandoned;
        - ``.lock`` files nobody holds (empty files, but one per blob ever downloaded);
        - ``refs/`` records whose version has no snapshot: offline mode would otherwise answer
          the ref and then fail on files that are not there.

        Blobs and refs are only deleted while no pull is running (see :meth:`in_use`);
        otherwise they are kept and ``busy`` is set. Blob files are read-only, but deleting a
        file needs only write permission on its folder.
        """
        cutoff = time.time() - incomplete_older_than.total_seconds()
        incomplete, incomplete_bytes, locks = _cache_prune.prune_downloads(self, cutoff, dry_run)
        blobs = blob_bytes = refs = 0
        busy = False
        deleted: tuple[str, ...] = ()
        with _cache_prune.exclusive(self.root, dry_run) as acquired:
            if acquired:
                deleted, blob_bytes = _cache_prune.prune_blobs(self, dry_run)
                blobs = len(deleted)
                refs = _cache_prune.prune_refs(self, dry_run)
            else:
                busy = True
        return PruneResult(
            dry_run=dry_run,
            blobs=blobs,
            blob_bytes=blob_bytes,
            incomplete=incomplete,
            incomplete_bytes=incomplete_bytes,
            locks=locks,
            refs=refs,
            busy=busy,
            deleted_blobs=deleted,
        )

    def blob_entries(self) -> Iterator[Path]:
        """Every file under ``blobs/sha256/<aa>/``."""
        for folder in sorted_dirs(self.root / "blobs" / "sha256"):
            with contextlib.suppress(FileNotFoundError):
                yield from sorted(folder.iterdir())

    # --- refs (offline mode) ---------------------------------------------------------------

    def save_ref(self, ref: str, version: model_version_pb2.ModelVersion) -> None:
        """Record the answer to ``ref`` and to the version's number and uid."""
        model = model_of(version)
        payload = version.SerializeToString()
        keys = {ref_key(ref), (model, quote(f":{version.version}", safe=""))}
        if version.uid:
            keys.add(ref_key(version.uid))
        for folder, stem in keys:
            replace_atomically(
                self.root / "refs" / folder / f"{stem}.pb", lambda t: t.write_bytes(payload)
            )

    def load_ref(self, ref: str) -> model_version_pb2.ModelVersion | None:
        """The version last recorded for ``ref``, or None."""
        folder, stem = ref_key(ref)
        path = self.root / "refs" / folder / f"{stem}.pb"
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            return None
        version = model_version_pb2.ModelVersion()
        version.ParseFromString(payload)
        return version

    def resolve_offline(
        self, ref: str, as_of: datetime | None = None
    ) -> model_version_pb2.ModelVersion:
        """Answer a resolve from the references recorded by earlier pulls (offline mode).

        A malformed ``ref`` is ``InvalidArgumentError`` here too (from :func:`ref_key`), not
        "not cached".
        """
        if as_of is not None:
            raise NotCachedError(
                f"cannot resolve {ref!r} as of a past time offline: the cache only records the "
                "latest answer",
                reason="NOT_CACHED",
                metadata={"ref": ref},
            )
        version = self.load_ref(ref)
        if version is None:
            raise NotCachedError(
                f"{ref!r} was never pulled on this machine and offline mode is on",
                reason="NOT_CACHED",
                metadata={"ref": ref},
            )
        return version

    def close(self) -> None:
        """Close the digest database."""
        self.digests.close()

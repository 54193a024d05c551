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

Contents are addressed by digest, so two versions sharing a file store it once, and a repeat
pull of the same version reads and writes no file bytes at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from modelregistry.metadata.v1 import model_version_pb2

ENV_CACHE = "MODELREGISTRY_CACHE"


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

    Only normalises spellings of the same reference (``models/`` prefix, ``/versions/N`` vs
    ``:N``); the server stays the authority on what a reference means.
    """
    text = ref.strip()
    text = text.removeprefix("models/")
    if "/versions/" in text:
        model, _, number = text.partition("/versions/")
        text = f"{model}:{number}"
    for separator in ("@", ":"):
        if separator in text:
            model, _, rest = text.partition(separator)
            return model, quote(separator + rest, safe="")
    if len(text) == 36 and text.count("-") == 4:
        # A uid or a model name; the server decides. Record it under a shared folder so a
        # model called like a uuid cannot collide with a real uid's record.
        return "_uid", quote(text.lower(), safe="")
    return text, "latest"


class Cache:
    """A content-addressed file cache shared by every pull and push of this user."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self._hash_db_lock = threading.Lock()
        self._hash_db: sqlite3.Connection | None = None

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

    @contextlib.contextmanager
    def blob_lock(self, sha256: str) -> Iterator[None]:
        """Hold an exclusive lock on downloading ``sha256`` (across processes)."""
        path = self.blob_path(sha256).with_name(sha256 + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
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

    # --- refs (offline mode) ---------------------------------------------------------------

    def save_ref(self, ref: str, version: model_version_pb2.ModelVersion) -> None:
        """Record the answer to ``ref`` and to the version's number and uid."""
        model = version.name.split("/")[1] if version.name.startswith("models/") else ""
        payload = version.SerializeToString()
        keys = {ref_key(ref), (model, quote(f":{version.version}", safe=""))}
        if version.uid:
            keys.add(ref_key(version.uid))
        for folder, stem in keys:
            path = self.root / "refs" / folder / f"{stem}.pb"
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            temporary.write_bytes(payload)
            os.replace(temporary, path)  # readers never see half a record

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

    # --- uploads (resumable push) ----------------------------------------------------------

    def upload_record(self, sha256: str) -> dict[str, str | int] | None:
        """The upload session an earlier push of ``sha256`` left behind, if any."""
        path = self.root / "uploads" / f"{sha256}.json"
        try:
            record = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def save_upload_record(self, sha256: str, session: str, size: int) -> None:
        """Remember the session of an upload in progress, for a push that is interrupted."""
        path = self.root / "uploads" / f"{sha256}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps({"session": session, "size": size}))
        os.replace(temporary, path)

    def drop_upload_record(self, sha256: str) -> None:
        """Forget an upload session that finished or no longer exists."""
        with contextlib.suppress(FileNotFoundError):
            (self.root / "uploads" / f"{sha256}.json").unlink()

    # --- file digests (fast re-push) -------------------------------------------------------

    def _hashes(self) -> sqlite3.Connection:
        if self._hash_db is None:
            self.root.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.root / "hashes.sqlite", check_same_thread=False, timeout=30)
            # A memo, not a record: losing the last entries in a crash only costs a re-hash, so
            # skip the fsync per file that would make pushing 10 000 small files crawl.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(
                "CREATE TABLE IF NOT EXISTS file_digest (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, inode INTEGER, sha256 TEXT)"
            )
            db.commit()
            self._hash_db = db
        return self._hash_db

    def known_digest(self, path: Path, stat: os.stat_result) -> str | None:
        """A digest computed earlier for this file, if size, mtime and inode are unchanged."""
        with self._hash_db_lock:
            row = (
                self._hashes()
                .execute(
                    "SELECT sha256 FROM file_digest WHERE path = ? AND size = ? AND mtime_ns = ? "
                    "AND inode = ?",
                    (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino),
                )
                .fetchone()
            )
        return str(row[0]) if row else None

    def remember_digest(self, path: Path, stat: os.stat_result, sha256: str) -> None:
        """Record a file's digest so that re-pushing it unchanged skips hashing."""
        with self._hash_db_lock:
            db = self._hashes()
            db.execute(
                "INSERT OR REPLACE INTO file_digest VALUES (?, ?, ?, ?, ?)",
                (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino, sha256),
            )
            db.commit()

    def close(self) -> None:
        """Close the digest database."""
        with self._hash_db_lock:
            if self._hash_db is not None:
                self._hash_db.close()
                self._hash_db = None

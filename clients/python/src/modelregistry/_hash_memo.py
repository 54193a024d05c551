"""The hash memo: file digests by (path, size, mtime, inode), so re-pushing skips hashing.

A memo, not a record: it lives in ``hashes.sqlite`` under the cache root, and losing entries
only costs a re-hash.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path


class HashMemo:
    """Digests of local files, valid while size, mtime and inode are unchanged; thread-safe."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.database.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.database, check_same_thread=False, timeout=30)
            # Losing the last entries in a crash only costs a re-hash, so skip the fsync per
            # file that would make pushing 10 000 small files crawl.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(
                "CREATE TABLE IF NOT EXISTS file_digest (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, inode INTEGER, sha256 TEXT)"
            )
            db.commit()
            self._db = db
        return self._db

    def known(self, path: Path, stat: os.stat_result) -> str | None:
        """A digest computed earlier for this file, if size, mtime and inode are unchanged."""
        with self._lock:
            row = (
                self._connection()
                .execute(
                    "SELECT sha256 FROM file_digest WHERE path = ? AND size = ? AND mtime_ns = ? "
                    "AND inode = ?",
                    (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino),
                )
                .fetchone()
            )
        return str(row[0]) if row else None

    def remember(self, path: Path, stat: os.stat_result, sha256: str) -> None:
        """Record a file's digest so that re-pushing it unchanged skips hashing."""
        with self._lock:
            db = self._connection()
            db.execute(
                "INSERT OR REPLACE INTO file_digest VALUES (?, ?, ?, ?, ?)",
                (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino, sha256),
            )
            db.commit()

    def close(self) -> None:
        """Close the database (it reopens on next use)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

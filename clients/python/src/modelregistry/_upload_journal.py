"""The upload journal: the resumable-upload session of each blob an unfinished push is sending.

A push records a blob's session as soon as it exists (``uploads/<sha256>.json`` under the
cache root) and drops the record once the blob is in. A push that was interrupted and runs
again finds the session here and asks the server how much of it is stored, instead of sending
the whole file again.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from modelregistry._cache_layout import replace_atomically


class UploadJournal:
    """Upload sessions by blob digest, one small JSON file each, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, sha256: str) -> Path:
        return self.folder / f"{sha256}.json"

    def session(self, sha256: str, size: int) -> str | None:
        """The session an earlier push of ``sha256`` left, if it was for ``size`` bytes.

        An unreadable or mismatched record counts as none: the push then opens a new session.
        """
        try:
            record = json.loads(self._path(sha256).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("size") != size:
            return None
        session = record.get("session")
        return session if isinstance(session, str) and session else None

    def save(self, sha256: str, session: str, size: int) -> None:
        """Remember the session of an upload in progress, for a push that is interrupted."""
        record = json.dumps({"session": session, "size": size})
        replace_atomically(self._path(sha256), lambda t: t.write_text(record))

    def drop(self, sha256: str) -> None:
        """Forget an upload session that finished or no longer exists."""
        with contextlib.suppress(FileNotFoundError):
            self._path(sha256).unlink()

    def count(self) -> int:
        """How many unfinished uploads are recorded."""
        return sum(1 for _ in self.folder.glob("*.json")) if self.folder.is_dir() else 0

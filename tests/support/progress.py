"""A ``modelregistry.Progress`` that records what each phase of a push or pull moved."""

from __future__ import annotations

import threading


class CountingProgress:
    """A thread-safe Progress that remembers the bytes each phase moved.

    The SDK names a phase by its description's first word ("hashing ...", "pushing ...",
    "pulling ..."); :meth:`bytes_for` sums the phases whose description starts with a prefix.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.phases: list[tuple[str, int]] = []  # (description, bytes moved)

    def start(self, total_bytes: int, total_files: int, description: str) -> None:
        """A phase begins."""
        with self._lock:
            self.phases.append((description, 0))

    def advance(self, nbytes: int) -> None:
        """Count bytes for the current phase."""
        with self._lock:
            description, moved = self.phases[-1]
            self.phases[-1] = (description, moved + nbytes)

    def file_done(self, path: str) -> None:
        """Not counted."""

    def finish(self) -> None:
        """Nothing to do."""

    def bytes_for(self, prefix: str) -> int:
        """Bytes moved in the phases whose description starts with ``prefix``."""
        return sum(moved for description, moved in self.phases if description.startswith(prefix))

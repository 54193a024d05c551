"""The progress callback interface of push and pull.

The transfer engines call it from several worker threads, so implementations must be
thread-safe. The CLI draws a bar with it; a serving process can log it or pass nothing.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives the progress of one push or pull."""

    def start(self, total_bytes: int, total_files: int, description: str) -> None:
        """The transfer is about to move ``total_bytes`` in ``total_files`` files."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more bytes were sent or received."""

    def file_done(self, path: str) -> None:
        """One file is complete: uploaded (``path`` is its manifest path), or downloaded and
        verified (``path`` is its sha256: a pull fetches each distinct content once, however
        many paths share it)."""

    def finish(self) -> None:
        """The transfer ended, successfully or not."""


class NullProgress:
    """A :class:`Progress` that ignores everything: the default."""

    def start(self, total_bytes: int, total_files: int, description: str) -> None:
        """Ignore."""

    def advance(self, nbytes: int) -> None:
        """Ignore."""

    def file_done(self, path: str) -> None:
        """Ignore."""

    def finish(self) -> None:
        """Ignore."""

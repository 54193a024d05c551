"""Folders of test files: write random ones, and fingerprint a tree to compare two."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

MiB = 1024 * 1024


def write_random(path: Path, size: int) -> None:
    """Write ``size`` random bytes to ``path`` (parents created), 8 MiB at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            block = os.urandom(min(remaining, 8 * MiB))
            handle.write(block)
            remaining -= len(block)


def tree_digests(root: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every file under ``root`` (links followed)."""
    digests = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            digests[path.relative_to(root).as_posix()] = digest
    return digests

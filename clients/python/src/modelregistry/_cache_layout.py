"""How the cache's entries are named on disk, and the file operations its parts share.

Used by :mod:`modelregistry.cache`, the prune passes, the upload journal and pulls.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from modelregistry.metadata.v1 import model_version_pb2

DIGEST = re.compile(r"[0-9a-f]{64}")
# The temporary name a link or file has while it is being replaced (see replace_atomically).
TEMPORARY = re.compile(r"\..+\.\d+\.\d+\.tmp")


def model_of(version: model_version_pb2.ModelVersion) -> str:
    """The model id in a version's name ``models/{model}/versions/{n}`` ('' if malformed)."""
    parts = version.name.split("/")
    return parts[1] if len(parts) >= 2 and parts[0] == "models" else ""


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Make ``path`` with ``write(temporary)``, then rename it into place.

    Readers see the old entry or the new one, never half of one. The temporary name is the
    one :data:`TEMPORARY` matches, unique per thread.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a crashed process that had the same pid and thread id
    write(temporary)
    os.replace(temporary, path)


def is_same_file(fd: int, path: Path) -> bool:
    """True if ``path`` still names the open file ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_ino, named.st_dev) == (opened.st_ino, opened.st_dev)


def try_lock(fd: int) -> bool:
    """Take an exclusive ``flock`` on ``fd`` without waiting; False if someone holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def sorted_dirs(path: Path) -> list[Path]:
    """The sub-folders of ``path`` (none if it does not exist), by name."""
    try:
        return sorted(
            entry for entry in path.iterdir() if entry.is_dir() and not entry.is_symlink()
        )
    except FileNotFoundError:
        return []


def links(folder: Path) -> Iterator[tuple[Path, str]]:
    """``(link, target)`` for every symlink under ``folder``, at any depth, not followed."""
    for directory, subdirs, names in os.walk(folder):
        # os.walk lists a link to a folder among the folders; a snapshot has none, but count it.
        for name in (*names, *subdirs):
            path = Path(directory, name)
            try:
                target = os.readlink(path)
            except OSError:  # not a link, or removed meanwhile
                continue
            yield path, target

"""Collecting and hashing the files of a push."""

from __future__ import annotations

import hashlib
import mimetypes
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modelregistry.errors import InvalidArgumentError

# Types that mimetypes does not know but model folders are full of.
_MEDIA_TYPES = {
    ".safetensors": "application/vnd.safetensors",
    ".gguf": "application/octet-stream",
    ".onnx": "application/onnx",
    ".pt": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".md": "text/markdown",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
}


@dataclass(frozen=True)
class LocalFile:
    """One file to push: where it is, and its path inside the version."""

    source: Path
    path: str
    stat: os.stat_result  # as collected: the digest memo is keyed by it

    @property
    def size(self) -> int:
        """The size in bytes when the file was collected."""
        return self.stat.st_size


def media_type(path: str) -> str:
    """A best-effort media type from the file extension ('' when unknown)."""
    suffix = Path(path).suffix.lower()
    if suffix in _MEDIA_TYPES:
        return _MEDIA_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or ""


def collect_files(paths: Sequence[str | os.PathLike[str]]) -> list[LocalFile]:
    """The files to push, with manifest paths relative to each given directory.

    A directory contributes every file below it (following no symlinks out of it, skipping
    ``.git``); a file contributes itself under its own name. Paths are POSIX-style.
    """
    files: dict[str, LocalFile] = {}
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise InvalidArgumentError(f"{root} does not exist")
        if root.is_file():
            _add(files, root, root.name)
            continue
        for directory, subdirs, names in os.walk(root):
            subdirs[:] = sorted(d for d in subdirs if d != ".git")
            for name in sorted(names):
                source = Path(directory) / name
                if source.is_symlink() and not source.resolve().is_file():
                    continue
                _add(files, source, source.relative_to(root).as_posix())
    if not files:
        raise InvalidArgumentError("nothing to push: no files under " + ", ".join(map(str, paths)))
    return sorted(files.values(), key=lambda f: f.path)


def _add(files: dict[str, LocalFile], source: Path, path: str) -> None:
    if path in files:
        raise InvalidArgumentError(f"two files would be pushed as {path!r}")
    files[path] = LocalFile(source=source, path=path, stat=source.stat())


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file (``file_digest`` hashes with the GIL released)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()

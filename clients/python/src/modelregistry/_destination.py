"""Where ``pull`` may write: every target under its folder, none through a symbolic link.

Manifest paths are checked first (``_manifest.py``), so joined to a folder they cannot climb
out of it by their spelling. What is already on disk could still redirect a write: a link
``dest/weights -> /etc`` would send ``weights/passwd`` to ``/etc/passwd``. :func:`plan` looks at
every folder a target goes through and at the target itself before anything is written, and
refuses a symbolic link among them, a file where a folder is needed and a folder where a file
goes. The folder itself may be a link (``--dest ./weights`` pointing at a bigger disk is the
user's choice); nothing below it may be.

This guards against a hostile server, not against a local user racing the pull: someone who
can write into the destination while the pull runs could still swap a folder for a link
between the check and the write.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from modelregistry.errors import UnsafeDestinationError


@dataclass
class Plan:
    """The checked targets of one folder, and what did not exist before, to undo a failure."""

    root: Path
    targets: dict[str, Path] = field(default_factory=dict)
    new_files: list[Path] = field(default_factory=list)
    new_dirs: list[Path] = field(default_factory=list)

    def undo(self) -> None:
        """Remove the files and folders this pull created (a failed pull leaves no part).

        Files that were there before stay (replaced ones keep their new contents).
        """
        for path in self.new_files:
            with contextlib.suppress(OSError):
                path.unlink()
        for folder in reversed(self.new_dirs):
            with contextlib.suppress(OSError):  # not empty: someone else put files there
                folder.rmdir()


def plan(root: Path, paths: Iterable[str], *, links_are_files: bool = False) -> Plan:
    """Check where each manifest path lands under ``root``; nothing is written.

    ``links_are_files``: the targets may be existing symbolic links (the cache's snapshot
    folders consist of them); folders on the way still may not.

    Raises:
        UnsafeDestinationError: reason ``DESTINATION_UNSAFE``, naming the path and the link.
    """
    base = Path(os.path.realpath(root))
    if base.exists() and not base.is_dir():
        raise _unsafe(root, "", f"{base} is a file, not a folder")
    result = Plan(root=base)
    kinds: dict[Path, int | None] = {}  # st_mode by path, None if missing: lstat each once
    new_dirs: set[Path] = set()
    for path in paths:
        parts = PurePosixPath(path).parts
        target = base.joinpath(*parts)
        if os.path.commonpath([base, target]) != str(base) or target == base:
            raise _unsafe(root, path, f"{path!r} is not a path inside it")
        current = base
        for depth, part in enumerate(parts, start=1):
            current = current / part
            is_target = depth == len(parts)
            if current not in kinds:
                kinds[current] = _mode(current)
            mode = kinds[current]
            if mode is None:
                if is_target:
                    result.new_files.append(current)
                else:
                    new_dirs.add(current)
                continue
            if stat.S_ISLNK(mode) and not (is_target and links_are_files):
                where = os.readlink(current)
                raise _unsafe(root, path, f"{current} is a symbolic link (to {where})")
            if is_target and stat.S_ISDIR(mode):
                raise _unsafe(root, path, f"{current} is a folder")
            if not is_target and not stat.S_ISDIR(mode):
                raise _unsafe(root, path, f"{current} is a file, not a folder")
        result.targets[path] = target
    result.new_dirs = sorted(new_dirs, key=lambda folder: len(folder.parts))
    return result


def _mode(path: Path) -> int | None:
    try:
        return path.lstat().st_mode
    except FileNotFoundError:
        return None
    except NotADirectoryError:  # cannot happen after the folder checks; treat as missing
        return None


def _unsafe(root: Path, path: str, problem: str) -> UnsafeDestinationError:
    return UnsafeDestinationError(
        f"refusing to write {path!r} under {root}, nothing was written: {problem}; pull "
        "writes only inside its destination and never through a symbolic link",
        reason="DESTINATION_UNSAFE",
        metadata={"path": path, "destination": str(root)},
    )

"""Lineage recorded automatically by ``push``: the git checkout the files come from."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitSource:
    """Where in a git repository a pushed model was produced."""

    repo_url: str
    commit: str
    dirty: bool


def _git(cwd: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):  # no git installed, or a hung filesystem
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def detect_git_source(path: Path) -> GitSource | None:
    """The repository, commit and dirty flag of the checkout that contains ``path``, if any.

    The repo URL is the ``origin`` remote (credentials stripped); a checkout without a remote
    is named by its local path as a ``file://`` URL, which is still useful on a shared machine.
    """
    start = path if path.is_dir() else path.parent
    # One git call for both: it fails outside a checkout and in a repository without commits.
    found = _git(start, "rev-parse", "--show-toplevel", "HEAD")
    if not found:
        return None
    top, _, commit = found.rpartition("\n")  # the commit is the last line; a path may hold one
    remote = _git(start, "remote", "get-url", "origin")
    repo_url = _strip_credentials(remote) if remote else Path(top).resolve().as_uri()
    # Dirty means tracked files differ from the commit. Untracked files do not count: the model
    # output being pushed usually sits untracked in the checkout and would mark every push.
    status = _git(start, "status", "--porcelain", "--untracked-files=no")
    return GitSource(repo_url=repo_url, commit=commit, dirty=bool(status))


def _strip_credentials(url: str) -> str:
    """Drop ``user:token@`` from an https remote: a token must never reach the registry."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    host_and_path = rest.split("@", 1)[1]
    return f"{scheme}://{host_and_path}"

"""What a push or a pull was asked to do, as one value each.

``Client.push``/``pull`` and ``AsyncClient.push``/``pull`` keep their keyword arguments (users
call them); each builds one of these once and hands it to the transfer engine (``_push.py``,
``_pull.py``), so adding an option means one field here and one keyword per public method,
not a list of keywords relayed through every layer. Light on purpose: the clients import it
without loading the transfer engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelregistry._convert import ParamPyValue
    from modelregistry.progress import Progress

LocalPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
Patterns = Sequence[str] | str | None


@dataclass(frozen=True)
class PushOptions:
    """A push of local files as a new version of ``model``; see ``Client.push``.

    ``description`` is the version's model card (markdown, at most 64 KiB). Left empty, a
    ``README.md`` at the top of a pushed folder becomes the card (it is also pushed as a file).
    """

    model: str
    params: Mapping[str, ParamPyValue] | None = None
    metrics: Mapping[str, float] | None = None
    labels: Mapping[str, str] | None = None
    description: str = ""
    alias: str | None = None
    lineage: bool = True
    parallelism: int = 4
    progress: Progress | None = None
    direct_upload: bool = True

    @property
    def workers(self) -> int:
        """Threads to hash and upload with (at least one)."""
        return max(1, self.parallelism)


@dataclass(frozen=True)
class PullOptions:
    """A pull of one version's files; see ``Client.pull``.

    ``dest`` None means the snapshot folder inside the cache.
    """

    dest: str | os.PathLike[str] | None = None
    allow_patterns: Patterns = None
    ignore_patterns: Patterns = None
    parallelism: int = 4
    progress: Progress | None = None

    @property
    def workers(self) -> int:
        """Parallel downloads (at least one)."""
        return max(1, self.parallelism)

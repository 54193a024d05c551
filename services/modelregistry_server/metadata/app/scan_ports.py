"""Ports of model file scanning (``scanning.py``): reading blob ranges, storing verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from modelregistry_server.metadata.domain.scanning import FileVerdict, Verdict
from modelregistry_server.metadata.domain.version import ModelVersion


class BlobReader(Protocol):
    """Reads a byte range of a blob (the ArtifactService's ``Read``)."""

    async def read(self, version_name: str, sha256: str, offset: int, length: int) -> bytes:
        """The bytes ``[offset, offset + length)`` of blob ``sha256`` of ``version_name``.

        Fewer only at the blob's end. Raises a registry error (``Unavailable``...) on failure.
        """
        ...


class ScanStore(Protocol):
    """Where scan verdicts are kept (the version's row)."""

    async def unscanned(self, limit: int) -> list[ModelVersion]:
        """Up to ``limit`` READY versions not scanned yet, oldest commit first."""
        ...

    async def record(
        self, model_id: str, version: int, verdict: Verdict, results: Sequence[FileVerdict]
    ) -> bool:
        """Store the verdict in its own transaction if the version is still READY and not
        scanned yet; False if it was not stored."""
        ...

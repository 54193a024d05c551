"""PostgreSQL side of model file scanning: versions to scan, and storing their verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from modelregistry_server.common.adapters.db import Database
from modelregistry_server.common.adapters.sql import load_queries
from modelregistry_server.metadata.adapters.postgres.rows import (
    QUERIES as VERSION_QUERIES,
)
from modelregistry_server.metadata.adapters.postgres.rows import (
    scan_results_to_json,
    to_version,
)
from modelregistry_server.metadata.domain.events import EventType
from modelregistry_server.metadata.domain.scanning import FileVerdict, Verdict
from modelregistry_server.metadata.domain.version import ModelVersion

QUERIES = load_queries(Path(__file__).parent / "scanning.sql")
SCANNER_ACTOR = "modelregistry-scanner"


class PostgresScanStore:
    """``ScanStore`` on the ``metadata`` schema."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def unscanned(self, limit: int) -> list[ModelVersion]:
        """See the port."""
        async with self._database.connection() as conn:
            rows = await conn.fetch(QUERIES["unscanned_versions"], limit)
        return [to_version(row) for row in rows]

    async def record(
        self, model_id: str, version: int, verdict: Verdict, results: Sequence[FileVerdict]
    ) -> bool:
        """See the port."""
        async with self._database.transaction() as conn:
            stored = await conn.fetchval(
                QUERIES["record_scan"], model_id, version, verdict.value,
                scan_results_to_json(tuple(results)),
            )  # fmt: skip
            if stored is None:
                return False
            # Watchers learn of the verdict (the event's NOTIFY also makes every replica's
            # resolve cache drop the model: its answers carry the verdict). Last before the
            # commit, under the lock that makes event ids commit in order.
            await conn.execute(VERSION_QUERIES["lock_model_events"])
            await conn.execute(
                VERSION_QUERIES["insert_model_event"], EventType.VERSION_SCANNED.value,
                model_id, version, None, SCANNER_ACTOR,
            )  # fmt: skip
        return True

"""PostgreSQL ``UnitOfWork``: one transaction on one pooled connection, and the stores in it.

The unit owns the transaction and everything a mutation must write with its change: the
request-id record (idempotent retries), the audit row and the change event (whose NOTIFY
PostgreSQL delivers only at commit). The use case decides; the stores only read and write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from modelregistry_server.common.adapters import audit_log
from modelregistry_server.common.adapters.db import Database
from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.metadata.adapters.postgres.governance import PostgresGovernanceStore
from modelregistry_server.metadata.adapters.postgres.rows import (
    QUERIES,
    manifest_json,
    new_etag,
    to_alias,
    to_json,
    to_model,
    to_version,
)
from modelregistry_server.metadata.app.ports import (
    AliasRecord,
    AliasStore,
    BlobLocks,
    GovernanceStore,
    ModelStore,
    UnitOfWork,
    VersionStore,
)
from modelregistry_server.metadata.domain.errors import InvalidArgument
from modelregistry_server.metadata.domain.events import EventType
from modelregistry_server.metadata.domain.model import Model, ModelDraft
from modelregistry_server.metadata.domain.version import (
    ManifestFile,
    ModelVersion,
    VersionDraft,
)

if TYPE_CHECKING:
    from modelregistry_server.common.adapters.db import Connection


class PostgresModelStore:
    """``ModelStore`` on one transaction's connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def lock(self, model_id: str) -> Model | None:
        """See the port."""
        row = await self._conn.fetchrow(QUERIES["lock_model"], model_id)
        return None if row is None else to_model(row)

    async def insert(self, model_id: str, draft: ModelDraft) -> Model | None:
        """See the port."""
        row = await self._conn.fetchrow(
            QUERIES["insert_model"], model_id, draft.description, to_json(draft.labels),
            draft.owner, new_etag(),
        )  # fmt: skip
        return None if row is None else to_model(row)

    async def update(self, model_id: str, draft: ModelDraft, fields: frozenset[str]) -> Model:
        """See the port."""
        row = await self._conn.fetchrow(
            QUERIES["update_model"],
            model_id,
            draft.description if "description" in fields else None,
            to_json(draft.labels) if "labels" in fields else None,
            draft.owner if "owner" in fields else None,
            new_etag(),
        )
        assert row is not None, "update_model after lock_model returns the row"
        return to_model(row)

    async def delete(self, model_id: str) -> None:
        """See the port."""
        await self._conn.execute(QUERIES["delete_model"], model_id)

    async def count_live_versions(self, model_id: str) -> int:
        """See the port."""
        return int(await self._conn.fetchval(QUERIES["count_live_versions"], model_id))


class PostgresVersionStore:
    """``VersionStore`` on one transaction's connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def _get(self, model_id: str, version: int) -> ModelVersion:
        row = await self._conn.fetchrow(QUERIES["get_version"], model_id, version)
        assert row is not None, "a version written in this transaction is there"
        return to_version(row)

    async def lock(self, model_id: str, version: int) -> ModelVersion | None:
        """See the port."""
        row = await self._conn.fetchrow(QUERIES["lock_version"], model_id, version)
        return None if row is None else to_version(row)

    async def latest_number(self, model_id: str) -> int | None:
        """See the port."""
        value = await self._conn.fetchval(QUERIES["latest_version_number"], model_id)
        return None if value is None else int(value)

    async def insert(self, model_id: str, draft: VersionDraft, actor: str) -> ModelVersion | None:
        """See the port."""
        number = await self._conn.fetchval(QUERIES["allocate_version"], model_id)
        if number is None:
            return None
        await self._conn.execute(
            QUERIES["insert_version"], model_id, number, draft.description,
            to_json(draft.labels), to_json(draft.params), to_json(draft.metrics),
            to_json(draft.lineage), draft.framework, draft.format, to_json(draft.signature),
            actor, new_etag(),
        )  # fmt: skip
        return await self._get(model_id, number)

    async def update(
        self, model_id: str, version: int, draft: VersionDraft, fields: frozenset[str]
    ) -> ModelVersion:
        """See the port."""

        def pick(field: str, value: Any) -> Any:
            return value if field in fields else None  # NULL: keep the stored value

        await self._conn.execute(
            QUERIES["update_version"], model_id, version,
            pick("description", draft.description), pick("labels", to_json(draft.labels)),
            pick("params", to_json(draft.params)), pick("metrics", to_json(draft.metrics)),
            pick("lineage", to_json(draft.lineage)), pick("framework", draft.framework),
            pick("format", draft.format), pick("signature", to_json(draft.signature)),
            new_etag(),
        )  # fmt: skip
        return await self._get(model_id, version)

    async def mark_ready(
        self, model_id: str, version: int, files: Sequence[ManifestFile]
    ) -> ModelVersion:
        """See the port."""
        await self._conn.execute(
            QUERIES["commit_version"], model_id, version, manifest_json(tuple(files)),
            sum(f.size for f in files), new_etag(),
        )  # fmt: skip
        for entry in files:
            await self._conn.execute(
                QUERIES["insert_version_blob"], model_id, version, entry.sha256, entry.size
            )
        return await self._get(model_id, version)

    async def mark_deleted(self, model_id: str, version: int) -> ModelVersion:
        """See the port."""
        await self._conn.execute(QUERIES["soft_delete_version"], model_id, version, new_etag())
        return await self._get(model_id, version)

    async def mark_failed(self, model_id: str, version: int) -> ModelVersion:
        """See the port."""
        await self._conn.execute(QUERIES["fail_version"], model_id, version, new_etag())
        return await self._get(model_id, version)

    async def stale_pending(self, created_before: datetime) -> list[ModelVersion]:
        """See the port."""
        rows = await self._conn.fetch(QUERIES["stale_pending_versions"], created_before)
        return [to_version(row) for row in rows]


class PostgresAliasStore:
    """``AliasStore`` on one transaction's connection; every move lands in the history."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def lock(self, model_id: str, alias: str) -> AliasRecord | None:
        """See the port."""
        row = await self._conn.fetchrow(QUERIES["lock_alias"], model_id, alias)
        return None if row is None else to_alias(row)

    async def put(self, model_id: str, alias: str, version: int, actor: str) -> AliasRecord:
        """See the port."""
        row = await self._conn.fetchrow(QUERIES["upsert_alias"], model_id, alias, version, actor)
        assert row is not None, "an upsert returns its row"
        await self._conn.execute(QUERIES["record_alias_move"], model_id, alias, version, actor)
        return to_alias(row)

    async def count_locked(self, model_id: str) -> int:
        """See the port."""
        # Two statements: a count in the locking statement would see the snapshot taken
        # before the lock was granted, missing an alias added by the unit that held it.
        await self._conn.execute(QUERIES["lock_model_aliases"], model_id)
        return int(await self._conn.fetchval(QUERIES["count_aliases"], model_id))

    async def remove(self, model_id: str, alias: str, actor: str) -> int | None:
        """See the port."""
        version = await self._conn.fetchval(QUERIES["delete_alias"], model_id, alias)
        if version is not None:
            await self._conn.execute(QUERIES["record_alias_move"], model_id, alias, None, actor)
        return None if version is None else int(version)

    async def remove_all_of(self, model_id: str, version: int, actor: str) -> list[str]:
        """See the port."""
        rows = await self._conn.fetch(QUERIES["delete_aliases_of_version"], model_id, version)
        for row in rows:
            await self._conn.execute(
                QUERIES["record_alias_move"], model_id, row["alias"], None, actor
            )
        return [row["alias"] for row in rows]


class PostgresBlobLocks:
    """``BlobLocks`` as transaction-scoped advisory locks (released at commit or rollback)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def lock_shared(self, sha256s: Sequence[str]) -> None:
        """See the port."""
        # Sorted, so two commits sharing digests take them in one order and cannot deadlock.
        for sha256 in sorted(set(sha256s)):
            await self._conn.execute(QUERIES["lock_blob_shared"], sha256)

    async def lock_exclusive(self, sha256: str) -> None:
        """See the port."""
        await self._conn.execute(QUERIES["lock_blob_exclusive"], sha256)

    async def is_referenced(self, sha256: str) -> bool:
        """See the port."""
        return bool(await self._conn.fetchval(QUERIES["blob_referenced"], sha256))


class PostgresUnitOfWork:
    """``UnitOfWork`` on one transaction's connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.models: ModelStore = PostgresModelStore(conn)
        self.versions: VersionStore = PostgresVersionStore(conn)
        self.aliases: AliasStore = PostgresAliasStore(conn)
        self.blobs: BlobLocks = PostgresBlobLocks(conn)
        self.governance: GovernanceStore = PostgresGovernanceStore(conn)
        # Events are inserted at the end (flush_events), so that ids commit in order.
        self._events: list[tuple[str, str, int | None, str | None, str]] = []

    async def claim_request(self, request_id: str | None, method: str, resource: str) -> bool:
        """See the port.

        Recording in the same transaction as the change means a crash leaves neither, so a
        retry does the work exactly once.
        """
        if request_id is None:
            return True
        if await self._conn.fetchval(QUERIES["record_request"], request_id, method, resource):
            return True
        previous = await self._conn.fetchrow(QUERIES["get_request"], request_id)
        assert previous is not None, "record_request found it, so it is there"
        if previous["method"] != method or previous["resource"] != resource:
            raise InvalidArgument(
                "request_id",
                f"was already used for {previous['method']} on {previous['resource']}; "
                "use a new request_id for a different call",
            )
        return False

    async def audit(self, entry: AuditEntry) -> None:
        """See the port."""
        await audit_log.append(self._conn, entry)

    async def emit(
        self, kind: EventType, model_id: str, version: int | None, alias: str | None, actor: str
    ) -> None:
        """See the port. The event is inserted when the transaction is about to commit."""
        self._events.append((kind.value, model_id, version, alias, actor))

    async def flush_events(self) -> None:
        """Insert the events emitted, in order, under the lock that orders their commits
        (``lock_model_events``); the last statements of the transaction."""
        if not self._events:
            return
        await self._conn.execute(QUERIES["lock_model_events"])
        for event in self._events:
            await self._conn.execute(QUERIES["insert_model_event"], *event)
        self._events.clear()

    async def notify_model_changed(self, model_id: str) -> None:
        """See the port."""
        await self._conn.execute(QUERIES["notify_model_changed"], model_id)


class PostgresUnitOfWorkFactory:
    """``UnitOfWorkFactory``: each call opens a transaction on a pooled connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[UnitOfWork]:
        """Begin a transaction; commit when the block ends, roll back on an exception."""
        async with self._database.transaction() as conn:
            unit = PostgresUnitOfWork(conn)
            yield unit
            await unit.flush_events()


__all__ = ["PostgresUnitOfWork", "PostgresUnitOfWorkFactory"]

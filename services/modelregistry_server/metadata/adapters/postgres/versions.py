"""PostgreSQL ``VersionRepository``: versions, manifests, aliases, audit and change events."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from modelregistry_server.metadata.adapters.postgres.filter_sql import (
    compile_filter,
    keyset_condition,
    order_sql,
)
from modelregistry_server.metadata.adapters.postgres.repository import (
    QUERIES,
    claim_request,
    write_audit,
    write_event,
)
from modelregistry_server.metadata.app.ports import AliasRecord
from modelregistry_server.metadata.domain.errors import (
    EtagMismatch,
    FailedPrecondition,
    NotFound,
)
from modelregistry_server.metadata.domain.filter import Expr, OrderKey
from modelregistry_server.metadata.domain.model import MODEL_NAME_PREFIX
from modelregistry_server.metadata.domain.version import (
    MUTABLE_WHEN_READY,
    ManifestFile,
    ModelVersion,
    VersionDraft,
    VersionState,
    version_name,
)

if TYPE_CHECKING:
    from modelregistry_server.common.db import Connection

_ALIASES = """ARRAY(SELECT a.alias FROM metadata.aliases a
                  WHERE a.model_id = v.model_id AND a.version = v.version
                  ORDER BY a.alias) AS aliases"""


def _etag() -> str:
    return secrets.token_hex(8)


def _to_version(row: asyncpg.Record) -> ModelVersion:
    draft = VersionDraft(
        description=row["description"],
        labels=json.loads(row["labels"]),
        params=json.loads(row["params"]),
        metrics=json.loads(row["metrics"]),
        lineage=json.loads(row["lineage"]),
        framework=row["framework"],
        format=row["format"],
        signature=json.loads(row["signature"]),
    )
    files = tuple(
        ManifestFile(f["path"], f["sha256"], f["size"], f.get("media_type", ""))
        for f in json.loads(row["files"])
    )
    return ModelVersion(
        model_id=row["model_id"],
        version=row["version"],
        uid=str(row["uid"]),
        state=VersionState(row["state"]),
        draft=draft,
        files=files,
        aliases=tuple(row["aliases"]),
        created_by=row["created_by"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        ready_time=row["ready_time"],
        etag=row["etag"],
    )


def _to_alias(row: asyncpg.Record) -> AliasRecord:
    return AliasRecord(
        row["model_id"], row["alias"], row["version"], row["update_time"], row["updated_by"]
    )


def _summary(version: ModelVersion) -> dict[str, Any]:
    """What the audit log keeps of a version before and after a change."""
    return {
        "state": version.state.value,
        "description": version.draft.description,
        "labels": dict(version.draft.labels),
        "params": dict(version.draft.params),
        "metrics": dict(version.draft.metrics),
        "aliases": list(version.aliases),
        "files": len(version.files),
        "etag": version.etag,
    }


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value))


class PostgresVersionRepository:
    """``VersionRepository`` on the ``metadata`` schema."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # ------------------------------------------------------------------ helpers

    async def _get(self, conn: Connection, model_id: str, version: int) -> ModelVersion:
        row = await conn.fetchrow(QUERIES["get_version"], model_id, version)
        if row is None:
            raise NotFound(version_name(model_id, version))
        return _to_version(row)

    async def _lock(
        self, conn: Connection, model_id: str, version: int, expected_etag: str
    ) -> VersionState:
        row = await conn.fetchrow(QUERIES["lock_version"], model_id, version)
        if row is None:
            raise NotFound(version_name(model_id, version))
        if expected_etag and expected_etag != row["etag"]:
            raise EtagMismatch(version_name(model_id, version), expected_etag, row["etag"])
        return VersionState(row["state"])

    # ------------------------------------------------------------------ versions

    async def create(
        self, model_id: str, draft: VersionDraft, actor: str, request_id: str | None
    ) -> ModelVersion:
        """See the port."""
        resource = MODEL_NAME_PREFIX + model_id
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_request(conn, request_id, "CreateModelVersion", resource):
                # The replay returns the version the first call created (the newest by then).
                previous = await conn.fetchval(
                    "SELECT max(version) FROM metadata.model_versions WHERE model_id = $1",
                    model_id,
                )
                return await self._get(conn, model_id, int(previous))
            number = await conn.fetchval(QUERIES["allocate_version"], model_id)
            if number is None:
                raise NotFound(resource)
            await conn.execute(
                QUERIES["insert_version"],
                model_id,
                number,
                draft.description,
                _json(draft.labels),
                _json(draft.params),
                _json(draft.metrics),
                _json(draft.lineage),
                draft.framework,
                draft.format,
                _json(draft.signature),
                actor,
                _etag(),
            )
            created = await self._get(conn, model_id, number)
            await write_audit(
                conn, actor, "CreateModelVersion", created.name, model_id, None,
                _summary(created), request_id,
            )  # fmt: skip
            return created

    async def get(self, model_id: str, version: int) -> ModelVersion:
        """See the port."""
        async with self._pool.acquire() as conn:
            return await self._get(conn, model_id, version)

    async def get_by_uid(self, uid: str) -> ModelVersion | None:
        """See the port."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(QUERIES["get_version_by_uid"], uid)
        return None if row is None else _to_version(row)

    async def list_versions(
        self,
        model_id: str | None,
        filter_expr: Expr | None,
        order: Sequence[OrderKey],
        after: Sequence[object] | None,
        limit: int,
        show_deleted: bool,
    ) -> tuple[list[ModelVersion], list[object] | None]:
        """See the port."""
        params: list[Any] = [model_id, show_deleted]
        where = ["($1::text IS NULL OR v.model_id = $1)", "($2 OR v.state <> 'DELETED')"]
        if filter_expr is not None:
            sql, filter_params = compile_filter(filter_expr, "version", len(params) + 1)
            where.append(sql)
            params += filter_params
        ordering = order_sql(order, "version", len(params) + 1)
        params += ordering.params
        if after is not None:
            condition, after_params = keyset_condition(ordering, after, ordering.next_param)
            where.append(condition)
            params += after_params
        params.append(limit + 1)
        # Only fixed fragments and compiler output (which binds every value) form the SQL.
        query = (
            f"SELECT v.*, {_ALIASES}, {ordering.select_list()} "  # noqa: S608
            f"FROM metadata.model_versions v WHERE {' AND '.join(where)} "
            f"ORDER BY {ordering.order_by()} LIMIT ${len(params)}"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(query, *params)
        if len(rows) <= limit:
            return [_to_version(row) for row in rows], None
        return [_to_version(row) for row in rows[:limit]], ordering.cursor(rows[limit - 1])

    async def update(
        self,
        model_id: str,
        version: int,
        draft: VersionDraft,
        fields: frozenset[str],
        expected_etag: str,
        actor: str,
        request_id: str | None,
    ) -> ModelVersion:
        """See the port."""
        name = version_name(model_id, version)
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_request(conn, request_id, "UpdateModelVersion", name):
                return await self._get(conn, model_id, version)
            state = await self._lock(conn, model_id, version, expected_etag)
            if state is VersionState.DELETED:
                raise FailedPrecondition(f"{name} is deleted", reason="VERSION_DELETED")
            if state is not VersionState.PENDING and not fields <= MUTABLE_WHEN_READY:
                frozen = ", ".join(sorted(fields - MUTABLE_WHEN_READY))
                raise FailedPrecondition(
                    f"{name} is {state.value} and immutable except description and labels; "
                    f"cannot change {frozen}",
                    reason="VERSION_IMMUTABLE",
                )
            before = await self._get(conn, model_id, version)

            def pick(field: str, value: Any) -> Any:
                return value if field in fields else None

            await conn.execute(
                QUERIES["update_version"],
                model_id,
                version,
                pick("description", draft.description),
                pick("labels", _json(draft.labels)),
                pick("params", _json(draft.params)),
                pick("metrics", _json(draft.metrics)),
                pick("lineage", _json(draft.lineage)),
                pick("framework", draft.framework),
                pick("format", draft.format),
                pick("signature", _json(draft.signature)),
                _etag(),
            )
            after = await self._get(conn, model_id, version)
            await write_audit(
                conn, actor, "UpdateModelVersion", name, model_id, _summary(before),
                _summary(after), request_id,
            )  # fmt: skip
            # Not a watchable event, but it changes what ResolveModelVersion returns: other
            # replicas drop their cached answers for this model when this commits.
            await conn.execute(QUERIES["notify_model_changed"], model_id)
            return after

    async def delete(
        self, model_id: str, version: int, expected_etag: str, actor: str, request_id: str | None
    ) -> ModelVersion:
        """See the port."""
        name = version_name(model_id, version)
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_request(conn, request_id, "DeleteModelVersion", name):
                return await self._get(conn, model_id, version)
            state = await self._lock(conn, model_id, version, expected_etag)
            if state is VersionState.DELETED:
                raise NotFound(name)
            before = await self._get(conn, model_id, version)
            for alias in await conn.fetch(QUERIES["delete_aliases_of_version"], model_id, version):
                await conn.execute(
                    QUERIES["record_alias_move"], model_id, alias["alias"], None, actor
                )
                await write_event(conn, "ALIAS_DELETED", model_id, version, alias["alias"], actor)
            await conn.execute(QUERIES["soft_delete_version"], model_id, version, _etag())
            after = await self._get(conn, model_id, version)
            await write_audit(
                conn, actor, "DeleteModelVersion", name, model_id, _summary(before),
                _summary(after), request_id,
            )  # fmt: skip
            await write_event(conn, "VERSION_DELETED", model_id, version, None, actor)
            return after

    async def commit(
        self,
        model_id: str,
        version: int,
        files: Sequence[ManifestFile],
        expected_etag: str,
        actor: str,
        request_id: str | None,
        verify: Callable[[Sequence[ManifestFile]], Awaitable[None]],
    ) -> ModelVersion:
        """See the port."""
        name = version_name(model_id, version)
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_request(conn, request_id, "CommitModelVersion", name):
                return await self._get(conn, model_id, version)
            state = await self._lock(conn, model_id, version, expected_etag)
            if state is not VersionState.PENDING:
                raise FailedPrecondition(
                    f"{name} is {state.value}; only a PENDING version can be committed",
                    reason="VERSION_NOT_PENDING",
                )
            # Shared locks on the digests (sorted, so concurrent commits cannot deadlock): GC
            # takes the same locks exclusively before it deletes a blob.
            for sha256 in sorted({f.sha256 for f in files}):
                await conn.execute(QUERIES["lock_blob_shared"], sha256)
            await verify(files)
            manifest = [
                {"path": f.path, "sha256": f.sha256, "size": f.size, "media_type": f.media_type}
                for f in files
            ]
            await conn.execute(
                QUERIES["commit_version"], model_id, version, json.dumps(manifest),
                sum(f.size for f in files), _etag(),
            )  # fmt: skip
            for entry in files:
                await conn.execute(
                    QUERIES["insert_version_blob"], model_id, version, entry.sha256, entry.size
                )
            after = await self._get(conn, model_id, version)
            await write_audit(
                conn, actor, "CommitModelVersion", name, model_id, {"state": "PENDING"},
                _summary(after), request_id,
            )  # fmt: skip
            await write_event(conn, "VERSION_READY", model_id, version, None, actor)
            return after

    async def get_latest_ready(self, model_id: str, as_of: datetime | None) -> ModelVersion | None:
        """See the port."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(QUERIES["get_latest_ready_version"], model_id, as_of)
        return None if row is None else _to_version(row)

    async def get_by_alias(
        self, model_id: str, alias: str, as_of: datetime | None
    ) -> ModelVersion | None:
        """See the port."""
        async with self._pool.acquire() as conn:
            if as_of is None:
                row = await conn.fetchrow(QUERIES["get_version_by_alias"], model_id, alias)
            else:
                row = await conn.fetchrow(
                    QUERIES["get_version_by_alias_at"], model_id, alias, as_of
                )
        return None if row is None else _to_version(row)

    # ------------------------------------------------------------------ aliases

    async def set_alias(
        self,
        model_id: str,
        alias: str,
        version: int,
        expected_version: int | None,
        actor: str,
        request_id: str | None,
    ) -> AliasRecord:
        """See the port."""
        resource = f"{MODEL_NAME_PREFIX}{model_id}/aliases/{alias}"
        async with self._pool.acquire() as conn, conn.transaction():
            replay = not await claim_request(conn, request_id, "SetAlias", resource)
            state = await self._lock(conn, model_id, version, "")
            locked = await conn.fetchrow(QUERIES["lock_alias"], model_id, alias)
            if replay and locked is not None:
                return _to_alias(locked)
            current: int | None = None if locked is None else locked["version"]
            if state is not VersionState.READY:
                raise FailedPrecondition(
                    f"{version_name(model_id, version)} is {state.value}; aliases point at READY "
                    "versions only",
                    reason="VERSION_NOT_READY",
                )
            if expected_version is not None and current != expected_version:
                shown = "nothing" if current is None else version_name(model_id, current)
                raise FailedPrecondition(
                    f"{resource} points at {shown}, not the expected "
                    f"{version_name(model_id, expected_version)}",
                    reason="ALIAS_VERSION_MISMATCH",
                )
            row = await conn.fetchrow(QUERIES["upsert_alias"], model_id, alias, version, actor)
            assert row is not None
            await conn.execute(QUERIES["record_alias_move"], model_id, alias, version, actor)
            await write_audit(
                conn, actor, "SetAlias", resource, model_id,
                None if current is None else {"version": version_name(model_id, current)},
                {"version": version_name(model_id, version)}, request_id,
            )  # fmt: skip
            await write_event(conn, "ALIAS_MOVED", model_id, version, alias, actor)
            return _to_alias(row)

    async def delete_alias(
        self, model_id: str, alias: str, actor: str, request_id: str | None
    ) -> None:
        """See the port."""
        resource = f"{MODEL_NAME_PREFIX}{model_id}/aliases/{alias}"
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_request(conn, request_id, "DeleteAlias", resource):
                return
            version = await conn.fetchval(QUERIES["delete_alias"], model_id, alias)
            if version is None:
                raise NotFound(resource)
            await conn.execute(QUERIES["record_alias_move"], model_id, alias, None, actor)
            await write_audit(
                conn, actor, "DeleteAlias", resource, model_id,
                {"version": version_name(model_id, version)}, None, request_id,
            )  # fmt: skip
            await write_event(conn, "ALIAS_DELETED", model_id, version, alias, actor)

    async def list_aliases(self, model_id: str, after: str, limit: int) -> list[AliasRecord]:
        """See the port."""
        async with self._pool.acquire() as conn:
            if not await conn.fetchval(
                "SELECT 1 FROM metadata.models WHERE model_id = $1", model_id
            ):
                raise NotFound(MODEL_NAME_PREFIX + model_id)
            rows = await conn.fetch(QUERIES["list_aliases"], model_id, after, limit)
        return [_to_alias(row) for row in rows]

    # ------------------------------------------------------------------ garbage collection

    async def expire_pending(self, created_before: datetime, dry_run: bool, actor: str) -> int:
        """See the port."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(QUERIES["stale_pending_versions"], created_before)
            if dry_run:
                return len(rows)
            for row in rows:
                await conn.execute(
                    QUERIES["fail_version"], row["model_id"], row["version"], _etag()
                )
                await write_audit(
                    conn, actor, "RunGarbageCollection",
                    version_name(row["model_id"], row["version"]), row["model_id"],
                    {"state": "PENDING"}, {"state": "FAILED", "reason": "pending too long"}, None,
                )  # fmt: skip
            return len(rows)

    async def delete_blob_if_unreferenced(
        self, sha256: str, delete: Callable[[str], Awaitable[None]]
    ) -> bool:
        """See the port."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(QUERIES["lock_blob_exclusive"], sha256)
            if await conn.fetchval(QUERIES["blob_referenced"], sha256):
                return False
            await delete(sha256)
            return True

    async def referenced(self, sha256s: Sequence[str]) -> set[str]:
        """See the port."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(QUERIES["referenced_blobs"], list(sha256s))
        return {row["sha256"] for row in rows}

    async def record_gc(
        self, actor: str, summary: Mapping[str, object], request_id: str | None = None
    ) -> None:
        """See the port."""
        async with self._pool.acquire() as conn:
            await write_audit(
                conn, actor, "RunGarbageCollection", "blobs", "", None, summary, request_id
            )

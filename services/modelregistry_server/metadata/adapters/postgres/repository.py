"""PostgreSQL implementations of the metadata ports, on an asyncpg pool."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from modelregistry_server.common.sql import load_queries
from modelregistry_server.common.telemetry import current_trace_id

if TYPE_CHECKING:
    from modelregistry_server.common.db import Connection
from modelregistry_server.metadata.adapters.postgres.filter_sql import compile_filter
from modelregistry_server.metadata.app.ports import ModelCursor, ModelOrdering, ModelSortField
from modelregistry_server.metadata.domain.errors import (
    AlreadyExists,
    EtagMismatch,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from modelregistry_server.metadata.domain.filter import Expr
from modelregistry_server.metadata.domain.model import MODEL_NAME_PREFIX, Model, ModelDraft

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SCHEMA = "metadata"
QUERIES = load_queries(Path(__file__).parent / "queries.sql")

_MODEL_COLUMNS = "model_id, uid, description, labels, owner, create_time, update_time, etag"
# Sort fields map to fixed column names; nothing a client sends is ever formatted into SQL.
_SORT_COLUMNS: Mapping[ModelSortField, str] = {
    "name": "model_id",
    "create_time": "create_time",
    "update_time": "update_time",
}


async def claim_request(
    conn: Connection, request_id: str | None, method: str, resource: str
) -> bool:
    """Record ``request_id`` in the caller's transaction; False means this is a replay.

    Recording in the same transaction as the change means a crash leaves neither, so a
    retry does the work exactly once.

    Raises:
        InvalidArgument: ``request_id`` was used for another method or resource.
    """
    if request_id is None:
        return True
    if await conn.fetchval(QUERIES["record_request"], request_id, method, resource):
        return True
    previous = await conn.fetchrow(QUERIES["get_request"], request_id)
    assert previous is not None
    if previous["method"] != method or previous["resource"] != resource:
        raise InvalidArgument(
            "request_id",
            f"was already used for {previous['method']} on {previous['resource']}; "
            "use a new request_id for a different call",
        )
    return False


async def write_audit(
    conn: Connection,
    actor: str,
    method: str,
    resource: str,
    model_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    request_id: str | None,
) -> None:
    """Record a mutation in the audit log, in the caller's transaction."""
    await conn.execute(
        QUERIES["insert_audit_event"],
        actor,
        method,
        resource,
        model_id,
        None if before is None else json.dumps(dict(before), default=str),
        None if after is None else json.dumps(dict(after), default=str),
        request_id,
        current_trace_id() or None,
    )


async def write_event(
    conn: Connection,
    kind: str,
    model_id: str,
    version: int | None,
    alias: str | None,
    actor: str,
) -> None:
    """Record a change event (NOTIFY is sent when the caller's transaction commits)."""
    await conn.execute(QUERIES["insert_model_event"], kind, model_id, version, alias, actor)


def _model_summary(model: Model) -> dict[str, Any]:
    return {
        "description": model.description,
        "labels": dict(model.labels),
        "owner": model.owner,
        "etag": model.etag,
    }


def _new_etag() -> str:
    return secrets.token_hex(8)


def _list_query(ordering: ModelOrdering, with_cursor: bool, filter_sql: str = "") -> str:
    column = _SORT_COLUMNS[ordering.field]
    direction = "DESC" if ordering.descending else "ASC"
    keys = "model_id" if column == "model_id" else f"{column}, model_id"
    where = ""
    if with_cursor:
        comparison = "<" if ordering.descending else ">"
        where = (
            "WHERE model_id " + comparison + " $2"
            if column == "model_id"
            else f"WHERE ({column}, model_id) {comparison} ($2, $3)"
        )
    if filter_sql:
        where = f"{where} AND ({filter_sql})" if where else f"WHERE ({filter_sql})"
    order = ", ".join(f"{key} {direction}" for key in keys.split(", "))
    # Only fixed column names from _SORT_COLUMNS are formatted in; values are $n parameters.
    return f"SELECT {_MODEL_COLUMNS} FROM metadata.models m {where} ORDER BY {order} LIMIT $1"  # noqa: S608


def _to_model(row: asyncpg.Record) -> Model:
    return Model(
        model_id=row["model_id"],
        uid=str(row["uid"]),
        description=row["description"],
        labels=json.loads(row["labels"]),
        owner=row["owner"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        etag=row["etag"],
    )


class PostgresModelRepository:
    """``ModelRepository`` on the ``metadata`` schema."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self, model_id: str, draft: ModelDraft, request_id: str | None, actor: str = ""
    ) -> Model:
        """See ``ModelRepository.create``."""
        resource = MODEL_NAME_PREFIX + model_id
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_request(conn, request_id, "CreateModel", resource):
                return await self._get_in(conn, model_id)
            row = await conn.fetchrow(
                QUERIES["insert_model"],
                model_id,
                draft.description,
                json.dumps(dict(draft.labels)),
                draft.owner,
                _new_etag(),
            )
            if row is None:
                raise AlreadyExists(resource)
            created = _to_model(row)
            await write_audit(
                conn, actor, "CreateModel", resource, model_id, None, _model_summary(created),
                request_id,
            )  # fmt: skip
            return created

    async def _get_in(self, conn: Connection, model_id: str) -> Model:
        row = await conn.fetchrow(QUERIES["get_model"], model_id)
        if row is None:
            raise NotFound(MODEL_NAME_PREFIX + model_id)
        return _to_model(row)

    async def get(self, model_id: str) -> Model:
        """See ``ModelRepository.get``."""
        async with self._pool.acquire() as conn:
            return await self._get_in(conn, model_id)

    async def list(
        self,
        ordering: ModelOrdering,
        after: ModelCursor | None,
        limit: int,
        filter_expr: Expr | None = None,
    ) -> list[Model]:
        """See ``ModelRepository.list``."""
        args: list[Any] = [limit]
        if after is not None:
            args += (
                [after.model_id] if ordering.field == "name" else [after.sort_value, after.model_id]
            )
        filter_sql = ""
        if filter_expr is not None:
            filter_sql, filter_args = compile_filter(filter_expr, "model", len(args) + 1)
            args += filter_args
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_list_query(ordering, after is not None, filter_sql), *args)
        return [_to_model(row) for row in rows]

    async def update(
        self,
        model_id: str,
        draft: ModelDraft,
        fields: frozenset[str],
        expected_etag: str,
        request_id: str | None,
        actor: str = "",
    ) -> Model:
        """See ``ModelRepository.update``."""
        resource = MODEL_NAME_PREFIX + model_id
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_request(conn, request_id, "UpdateModel", resource):
                return await self._get_in(conn, model_id)
            before_row = await conn.fetchrow(QUERIES["get_model"], model_id)
            row = await conn.fetchrow(
                QUERIES["update_model"],
                model_id,
                draft.description if "description" in fields else None,
                json.dumps(dict(draft.labels)) if "labels" in fields else None,
                draft.owner if "owner" in fields else None,
                expected_etag,
                _new_etag(),
            )
            if row is None:
                await self._raise_missing_or_stale(conn, model_id, expected_etag)
            assert row is not None
            assert before_row is not None
            updated = _to_model(row)
            await write_audit(
                conn, actor, "UpdateModel", resource, model_id,
                _model_summary(_to_model(before_row)), _model_summary(updated), request_id,
            )  # fmt: skip
            return updated

    async def delete(
        self,
        model_id: str,
        expected_etag: str,
        request_id: str | None,
        force: bool = False,
        actor: str = "",
    ) -> None:
        """See ``ModelRepository.delete``."""
        resource = MODEL_NAME_PREFIX + model_id
        async with self._pool.acquire() as conn, conn.transaction():
            if not await claim_request(conn, request_id, "DeleteModel", resource):
                return
            live = await conn.fetchval(QUERIES["count_live_versions"], model_id)
            if live and not force:
                raise FailedPrecondition(
                    f"{resource} has {live} version(s) that are not deleted; delete them first "
                    "or pass force=true to delete the model with all its versions",
                    reason="MODEL_HAS_VERSIONS",
                )
            before = await conn.fetchrow(QUERIES["get_model"], model_id)
            deleted = await conn.fetchval(QUERIES["delete_model"], model_id, expected_etag)
            if deleted is None:
                await self._raise_missing_or_stale(conn, model_id, expected_etag)
            assert before is not None
            await write_audit(
                conn, actor, "DeleteModel", resource, model_id,
                _model_summary(_to_model(before)), None, request_id,
            )  # fmt: skip
            await write_event(conn, "MODEL_DELETED", model_id, None, None, actor)

    async def _raise_missing_or_stale(
        self, conn: Connection, model_id: str, expected_etag: str
    ) -> None:
        current = await conn.fetchval(QUERIES["get_model_etag"], model_id)
        if current is None:
            raise NotFound(MODEL_NAME_PREFIX + model_id)
        raise EtagMismatch(MODEL_NAME_PREFIX + model_id, expected_etag, current)


class PostgresSecretStore:
    """``SecretStore`` on the ``metadata.server_secrets`` table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page_token_secret(self) -> bytes:
        """See ``SecretStore.page_token_secret``."""
        async with self._pool.acquire() as conn:
            # Whoever inserts first wins; every replica then reads the same value.
            await conn.execute(QUERIES["insert_secret"], "page_token", secrets.token_bytes(32))
            value: bytes = await conn.fetchval(QUERIES["get_secret"], "page_token")
        return value

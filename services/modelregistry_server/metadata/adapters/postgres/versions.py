"""PostgreSQL read side of versions and aliases (writes go through the unit of work)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from modelregistry_server.common.adapters.db import Database
from modelregistry_server.common.kernel.identity import Visibility
from modelregistry_server.common.kernel.paging import Cursor, split_page, string_position
from modelregistry_server.metadata.adapters.postgres.listing_sql import version_listing
from modelregistry_server.metadata.adapters.postgres.rows import QUERIES, to_alias, to_version
from modelregistry_server.metadata.app.ports import AliasRecord
from modelregistry_server.metadata.domain.errors import not_found
from modelregistry_server.metadata.domain.filter import Expr, OrderKey
from modelregistry_server.metadata.domain.model import MODEL_NAME_PREFIX
from modelregistry_server.metadata.domain.version import ModelVersion, version_name


class PostgresVersionRepository:
    """``VersionRepository`` on the ``metadata`` schema."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, model_id: str, version: int) -> ModelVersion:
        """See the port."""
        async with self._database.connection() as conn:
            row = await conn.fetchrow(QUERIES["get_version"], model_id, version)
        if row is None:
            raise not_found(version_name(model_id, version))
        return to_version(row)

    async def get_by_uid(self, uid: str) -> ModelVersion | None:
        """See the port."""
        async with self._database.connection() as conn:
            row = await conn.fetchrow(QUERIES["get_version_by_uid"], uid)
        return None if row is None else to_version(row)

    async def list_versions(
        self,
        model_id: str | None,
        filter_expr: Expr | None,
        order: Sequence[OrderKey],
        after: Cursor | None,
        limit: int,
        show_deleted: bool,
        visible: Visibility | None = None,
    ) -> tuple[list[ModelVersion], Cursor | None]:
        """See the port."""
        listing = version_listing(model_id, show_deleted, filter_expr, order, after, limit, visible)
        async with self._database.connection() as conn:
            rows = await conn.fetch(listing.sql, *listing.params)
        page, cursor = split_page(rows, limit, listing.order.cursor)
        return [to_version(row) for row in page], cursor

    async def get_latest_ready(self, model_id: str, as_of: datetime | None) -> ModelVersion | None:
        """See the port."""
        async with self._database.connection() as conn:
            row = await conn.fetchrow(QUERIES["get_latest_ready_version"], model_id, as_of)
        return None if row is None else to_version(row)

    async def get_by_alias(
        self, model_id: str, alias: str, as_of: datetime | None
    ) -> ModelVersion | None:
        """See the port."""
        async with self._database.connection() as conn:
            if as_of is None:
                row = await conn.fetchrow(QUERIES["get_version_by_alias"], model_id, alias)
            else:
                row = await conn.fetchrow(
                    QUERIES["get_version_by_alias_at"], model_id, alias, as_of
                )
        return None if row is None else to_version(row)

    async def list_aliases(
        self, model_id: str, after: Cursor | None, limit: int
    ) -> tuple[list[AliasRecord], Cursor | None]:
        """See the port. The cursor is ``[alias]``."""
        start = string_position(after)
        async with self._database.connection() as conn:
            if not await conn.fetchval(QUERIES["model_exists"], model_id):
                raise not_found(MODEL_NAME_PREFIX + model_id)
            rows = await conn.fetch(QUERIES["list_aliases"], model_id, start, limit + 1)
        page, cursor = split_page([to_alias(row) for row in rows], limit, lambda a: [a.alias])
        return page, cursor

    async def referenced(self, sha256s: Sequence[str]) -> set[str]:
        """See the port."""
        async with self._database.connection() as conn:
            rows = await conn.fetch(QUERIES["referenced_blobs"], list(sha256s))
        return {row["sha256"] for row in rows}

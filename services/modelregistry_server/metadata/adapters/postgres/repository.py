"""PostgreSQL read side of models, and the server secrets (writes go through the unit of work)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from modelregistry_server.common.adapters.db import Database, shared_secret
from modelregistry_server.common.kernel.identity import Visibility
from modelregistry_server.common.kernel.paging import Cursor, split_page
from modelregistry_server.metadata.adapters.postgres.listing_sql import model_listing
from modelregistry_server.metadata.adapters.postgres.rows import QUERIES, to_model
from modelregistry_server.metadata.domain.errors import not_found
from modelregistry_server.metadata.domain.filter import Expr, OrderKey
from modelregistry_server.metadata.domain.model import MODEL_NAME_PREFIX, Model

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SCHEMA = "metadata"


class PostgresModelRepository:
    """``ModelRepository`` on the ``metadata`` schema."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, model_id: str) -> Model:
        """See ``ModelRepository.get``."""
        async with self._database.connection() as conn:
            row = await conn.fetchrow(QUERIES["get_model"], model_id)
        if row is None:
            raise not_found(MODEL_NAME_PREFIX + model_id)
        return to_model(row)

    async def list(
        self,
        filter_expr: Expr | None,
        order: Sequence[OrderKey],
        after: Cursor | None,
        limit: int,
        visible: Visibility | None = None,
    ) -> tuple[list[Model], Cursor | None]:
        """See ``ModelRepository.list``."""
        listing = model_listing(filter_expr, order, after, limit, visible)
        async with self._database.connection() as conn:
            rows = await conn.fetch(listing.sql, *listing.params)
        page, cursor = split_page(rows, limit, listing.order.cursor)
        return [to_model(row) for row in page], cursor


class PostgresSecretStore:
    """``SecretStore`` on the ``metadata.server_secrets`` table."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def page_token_secret(self) -> bytes:
        """See ``SecretStore.page_token_secret``."""
        return await shared_secret(self._database, QUERIES, "page_token")

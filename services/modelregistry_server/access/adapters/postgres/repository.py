"""PostgreSQL ``TokenStore`` on the ``access`` schema."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import asyncpg

from modelregistry_server.access.domain.policy import Binding, Role
from modelregistry_server.access.domain.token import TokenRecord
from modelregistry_server.common.adapters import audit_log
from modelregistry_server.common.adapters.db import Database, shared_secret
from modelregistry_server.common.adapters.sql import load_queries
from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.paging import Cursor, invalid_page_token, split_page

QUERIES = load_queries(Path(__file__).parent / "queries.sql")


def _to_token(row: asyncpg.Record) -> TokenRecord:
    return TokenRecord(
        token_id=row["token_id"],
        secret_sha256=row["secret_sha256"],
        principal=row["principal"],
        description=row["description"],
        created_by=row["created_by"],
        create_time=row["create_time"],
        expire_time=row["expire_time"],
        last_use_time=row["last_use_time"],
        revoke_time=row["revoke_time"],
    )


class PostgresTokenStore:
    """``TokenStore`` on ``access.tokens``."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, record: TokenRecord) -> bool:
        """See the port."""
        async with self._database.transaction() as conn:
            inserted = await conn.fetchval(
                QUERIES["insert_token"], record.token_id, record.secret_sha256,
                record.principal, record.description, record.created_by, record.create_time,
                record.expire_time,
            )  # fmt: skip
            if inserted is not None:
                await audit_log.append(
                    conn, _audit(record.created_by, "CreateAccessToken", record.name, None, record)
                )
        return inserted is not None

    async def get(self, token_id: str) -> TokenRecord | None:
        """See the port."""
        async with self._database.connection() as conn:
            row = await conn.fetchrow(QUERIES["get_token"], token_id)
        return None if row is None else _to_token(row)

    async def list(
        self, principal: str | None, active_at: datetime | None, after: Cursor | None, limit: int
    ) -> tuple[list[TokenRecord], Cursor | None]:
        """See the port. The cursor is ``[create time (ISO 8601), token id]``."""
        after_time, after_id = None, None
        if after is not None:
            try:
                after_time, after_id = datetime.fromisoformat(after[0]), str(after[1])
            except (ValueError, TypeError, IndexError):
                raise invalid_page_token("page_token does not fit this listing") from None
        async with self._database.connection() as conn:
            rows = await conn.fetch(
                QUERIES["list_tokens"], principal, active_at, after_time, after_id, limit + 1
            )
        tokens = [_to_token(row) for row in rows]
        return split_page(tokens, limit, lambda t: [t.create_time.isoformat(), t.token_id])

    async def revoke(self, token_id: str, when: datetime, actor: str) -> TokenRecord | None:
        """See the port."""
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(QUERIES["lock_token"], token_id)
            if row is None:
                return None
            before = _to_token(row)
            if before.revoke_time is not None:  # revoked already: nothing changes
                return before
            row = await conn.fetchrow(QUERIES["revoke_token"], token_id, when)
            assert row is not None, "the row is locked, so it is still there"
            after = _to_token(row)
            await audit_log.append(
                conn, _audit(actor, "RevokeAccessToken", after.name, before, after)
            )
        return after

    async def record_use(self, token_id: str, when: datetime) -> None:
        """See the port."""
        async with self._database.connection() as conn:
            await conn.execute(QUERIES["record_token_use"], token_id, when)


def _audit(
    actor: str,
    method: str,
    resource: str,
    before: TokenRecord | Binding | None,
    after: TokenRecord | Binding | None,
) -> AuditEntry:
    """The audit row of a change to who may do what (registry-wide: no model)."""
    return AuditEntry(
        actor, method, resource, None,
        None if before is None else before.snapshot(),
        None if after is None else after.snapshot(),
        None,
    )  # fmt: skip


class PostgresDeniedCallLog:
    """``DeniedCallLog``: refused calls go to the audit log, each in its own transaction."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(self, entry: AuditEntry) -> None:
        """See the port."""
        async with self._database.connection() as conn:
            await audit_log.append(conn, entry)


async def page_token_secret(database: Database) -> bytes:
    """The page-token key of the access listings, created by the first replica to ask."""
    return await shared_secret(database, QUERIES, "page_token")


def _to_binding(row: asyncpg.Record) -> Binding:
    return Binding(
        binding_id=row["binding_id"],
        subject=row["subject"],
        role=Role(row["role"]),
        scope=row["scope"],
        created_by=row["created_by"],
        create_time=row["create_time"],
    )


class PostgresBindingStore:
    """``BindingStore`` on ``access.role_bindings``."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, binding: Binding) -> Binding:
        """See the port."""
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(
                QUERIES["insert_binding"], binding.binding_id, binding.subject,
                binding.role.value, binding.scope, binding.created_by, binding.create_time,
            )  # fmt: skip
            assert row is not None, "the insert or the existing row"
            stored = _to_binding(row)
            if stored.binding_id == binding.binding_id:  # new, not the existing one
                await audit_log.append(
                    conn, _audit(binding.created_by, "CreateRoleBinding", stored.name, None, stored)
                )
        return stored

    async def delete(self, binding_id: str, actor: str) -> Binding | None:
        """See the port."""
        async with self._database.transaction() as conn:
            row = await conn.fetchrow(QUERIES["delete_binding"], binding_id)
            if row is None:
                return None
            removed = _to_binding(row)
            await audit_log.append(
                conn, _audit(actor, "DeleteRoleBinding", removed.name, removed, None)
            )
        return removed

    async def all(self) -> list[Binding]:
        """See the port."""
        async with self._database.connection() as conn:
            rows = await conn.fetch(QUERIES["all_bindings"])
        return [_to_binding(row) for row in rows]

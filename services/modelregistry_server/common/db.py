"""The asyncpg connection pool, with the timeouts every acquire and query must have."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # What ``pool.acquire()`` yields and what ``asyncpg.connect()`` returns; code that runs
    # queries accepts either.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

# A query or an acquire that hangs would hold a gRPC call (and its client) forever; these
# bounds turn a stuck database into a prompt, reported error instead.
ACQUIRE_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 30.0


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    """Open a pool to ``dsn`` with a per-query timeout."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=COMMAND_TIMEOUT_S,
        timeout=ACQUIRE_TIMEOUT_S,
    )
    assert pool is not None
    return pool


async def ensure_database(admin_dsn: str, database: str) -> None:
    """Create ``database`` if it does not exist (used for the embedded server only)."""
    conn = await asyncpg.connect(admin_dsn, timeout=ACQUIRE_TIMEOUT_S)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # Identifiers cannot be bound as parameters; quote_ident-equivalent quoting.
            quoted = '"' + database.replace('"', '""') + '"'
            await conn.execute(f"CREATE DATABASE {quoted}")
    finally:
        await conn.close()

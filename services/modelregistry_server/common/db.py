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


async def _keep_session(_conn: object) -> None:
    """Pool ``reset`` hook that leaves the session alone.

    asyncpg's default reset runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release: a full round trip (and a traced query) after *every* pooled
    use, which measured as the largest single cost of a ``ResolveModelVersion`` (bench/README.md).
    None of it is needed, because no code here leaves session state on a pooled connection:
    advisory locks are all ``pg_advisory_xact_lock*`` (released at commit), settings are only
    ever ``SET LOCAL`` (migrations), no cursor outlives its transaction, and LISTEN runs on the
    event feed's own dedicated connection, never a pooled one. asyncpg still rolls back an
    unfinished transaction and drops listener callbacks before calling this hook. Anything that
    adds session state to a pooled connection must undo it itself.
    """


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    """Open a pool to ``dsn`` with a per-query timeout and no reset query on release."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=COMMAND_TIMEOUT_S,
        timeout=ACQUIRE_TIMEOUT_S,
        reset=_keep_session,
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

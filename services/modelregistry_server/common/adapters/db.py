"""The asyncpg connection pool, with the timeouts every acquire and query must have, and the
one place where database failures become registry errors.

Adapters reach PostgreSQL only through ``Database.connection()`` / ``Database.transaction()``
(or ``classify_database_error`` for a connection they own, like the event feed's listener):
a refused or lost connection, a pool or query timeout, an administrator's shutdown become
``UNAVAILABLE`` (``DATABASE_UNAVAILABLE``), a serialization failure or deadlock becomes
``ABORTED`` (``CONCURRENT_MODIFICATION``), never ``INTERNAL``. The classification goes by
exception class and SQLSTATE, never by message text.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from modelregistry_server.common.adapters.sql import load_queries
from modelregistry_server.common.kernel.errors import (
    RegistryError,
    concurrent_modification,
    database_unavailable,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # What ``pool.acquire()`` yields and what ``asyncpg.connect()`` returns; code that runs
    # queries accepts either.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

QUERIES = load_queries(Path(__file__).parent / "queries.sql")

# A query or an acquire that hangs would hold a gRPC call (and its client) forever; these
# bounds turn a stuck database into a prompt, reported error instead.
ACQUIRE_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 30.0
# Writers of one row queue for milliseconds; a wait this long means a stuck or very long
# transaction holds the lock, and the waiter is better told to retry (CONCURRENT_MODIFICATION).
# Migrations, which may legitimately wait for another replica's, lift it for their transaction.
LOCK_TIMEOUT_S = 5.0


# Pool -> what is told how long each acquire waited (seconds), when metrics are on.
_ACQUIRE_OBSERVERS: dict[asyncpg.Pool, Callable[[float], None]] = {}


def observe_acquire_wait(pool: asyncpg.Pool, observer: Callable[[float], None] | None) -> None:
    """Tell ``observer`` how long every acquire from ``pool`` waited (None: stop telling).

    Kept beside the pool rather than in each ``Database``: the composition root makes many
    of them over one pool, before metrics are wired.
    """
    if observer is None:
        _ACQUIRE_OBSERVERS.pop(pool, None)
    else:
        _ACQUIRE_OBSERVERS[pool] = observer


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
    """Open a pool to ``dsn`` with acquire, query and lock-wait timeouts and no reset query."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=COMMAND_TIMEOUT_S,
        timeout=ACQUIRE_TIMEOUT_S,
        reset=_keep_session,
        server_settings={"lock_timeout": f"{int(LOCK_TIMEOUT_S * 1000)}ms"},
    )
    assert pool is not None
    return pool


async def ensure_database(admin_dsn: str, database: str) -> None:
    """Create ``database`` if it does not exist (used for the embedded server only)."""
    conn = await asyncpg.connect(admin_dsn, timeout=ACQUIRE_TIMEOUT_S)
    try:
        if not await conn.fetchval(QUERIES["database_exists"], database):
            # Identifiers cannot be bound as parameters: the server quotes it (format %I).
            await conn.execute(await conn.fetchval(QUERIES["create_database_statement"], database))
    finally:
        await conn.close()


# SQLSTATE classes and codes (PostgreSQL appendix A) that say "the database cannot serve
# now" rather than "this statement is wrong".
_UNAVAILABLE_STATES = {
    "57P01": "the server is shutting down",  # admin_shutdown
    "57P02": "the server crashed",  # crash_shutdown
    "57P03": "the server is not accepting connections yet",  # cannot_connect_now
    "57014": "the query was cancelled",  # query_canceled (statement_timeout, pg_cancel_backend)
    "53300": "too many connections",  # too_many_connections
    "58030": "an I/O error on the server",  # io_error
}
_UNAVAILABLE_CLASSES = {"08": "the connection failed", "53": "the server ran out of resources"}
# serialization_failure, deadlock_detected, and lock_not_available: a statement that waited
# LOCK_TIMEOUT_S for a row or advisory lock another transaction holds gives up, and the
# caller is told a concurrent change is in the way (retry) instead of hanging to its deadline.
_CONFLICT_STATES = {"40001", "40P01", "55P03"}


def classify_database_error(
    exc: BaseException,
    *,
    connection: Connection | None = None,
    pool: asyncpg.Pool | None = None,
) -> RegistryError | None:
    """Return the registry error a database failure stands for, or None if it is not one.

    None means ``exc`` is either already a registry error or a genuine bug (a broken query,
    a misused connection), which must surface as ``INTERNAL``.

    Args:
        exc: What a database call raised.
        connection: The connection the call ran on, if any. asyncpg reports a lost
            connection with a plain ``InterfaceError`` ("connection is closed"), which
            otherwise means misuse; the connection's own state tells the two apart.
        pool: The pool the connection came from, if any: an ``InterfaceError`` from a pool
            that is closing means the server is shutting down, not a bug.
    """
    if isinstance(exc, RegistryError):
        return None
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        if state in _CONFLICT_STATES:
            return concurrent_modification()
        if state in _UNAVAILABLE_STATES:
            return database_unavailable(_UNAVAILABLE_STATES[state])
        if state[:2] in _UNAVAILABLE_CLASSES:
            return database_unavailable(_UNAVAILABLE_CLASSES[state[:2]])
        return None
    if isinstance(exc, asyncpg.InterfaceError):
        if connection is not None and _is_closed(connection):
            return database_unavailable("the connection was lost")
        if pool is not None and pool.is_closing():
            return database_unavailable("the registry is shutting down")
        return None
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # "cannot switch to state …; another operation is in progress": the server ended the
        # session (a shutdown's FATAL message) while a query was being sent, and asyncpg's
        # protocol was left mid-operation. Seen under PostgreSQL restarts (tests/e2e/
        # test_outages.py). The connection is dropped either way (Database.connection).
        return database_unavailable("the connection was lost mid-query")
    # TimeoutError (asyncio's is the same class since 3.11) is an OSError: test it first.
    # A pool acquire or a query past its timeout raises it.
    if isinstance(exc, TimeoutError):
        return database_unavailable("it did not answer in time")
    # Refused, reset, unreachable, unresolvable: every socket failure is an OSError.
    if isinstance(exc, OSError):
        return database_unavailable("the connection was refused or lost")
    return None


def _is_closed(connection: Connection) -> bool:
    try:
        return connection.is_closed()
    except asyncpg.InterfaceError:
        # "connection has been released back to the pool": the pool takes a connection back
        # by itself when it closes under the caller (the server ended the session).
        return True


class Database:
    """The pool, handed out only with failure classification around it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection (no transaction); database failures become registry errors.

        Raises:
            Unavailable: The database is unreachable, lost the connection, timed out or is
                shutting down (reason ``DATABASE_UNAVAILABLE``).
            Aborted: A serialization failure or deadlock (``CONCURRENT_MODIFICATION``).
        """
        observer = _ACQUIRE_OBSERVERS.get(self.pool)
        started = time.perf_counter()
        try:
            conn = await self.pool.acquire()
        except Exception as exc:
            if observer is not None:  # a wait that ended in a timeout is the one to see
                observer(time.perf_counter() - started)
            # Whatever stops a connection from being made (refused, a database that takes no
            # connections, bad credentials, a full server, a timeout) means the same to a
            # caller: the registry cannot reach its database now.
            raise (
                classify_database_error(exc, pool=self.pool)
                or database_unavailable(f"no connection could be made: {type(exc).__name__}")
            ) from exc
        if observer is not None:
            observer(time.perf_counter() - started)
        try:
            yield conn
        except Exception as exc:
            if isinstance(exc, asyncpg.exceptions.InternalClientError):
                conn.terminate()  # its protocol state is broken: never hand it out again
            translated = classify_database_error(exc, connection=conn, pool=self.pool)
            if translated is None:
                raise
            raise translated from exc
        finally:
            await self.pool.release(conn)

    async def ping(self) -> None:
        """Return once the database answers a trivial query (health probes).

        Raises:
            Unavailable: It does not (``DATABASE_UNAVAILABLE``).
        """
        async with self.connection() as conn:
            await conn.fetchval(QUERIES["ping"], timeout=ACQUIRE_TIMEOUT_S)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection inside a transaction that commits when the block ends."""
        async with self.connection() as conn, conn.transaction():
            yield conn


async def shared_secret(database: Database, queries: Mapping[str, str], name: str) -> bytes:
    """A server-wide secret every replica must share (a page-token key), made by the first.

    ``queries`` are the schema's named ``insert_secret`` and ``get_secret``: each service
    keeps its secrets in its own schema.
    """
    async with database.connection() as conn:
        # Whoever inserts first wins; every replica then reads the same value.
        await conn.execute(queries["insert_secret"], name, secrets.token_bytes(32))
        value: bytes = await conn.fetchval(queries["get_secret"], name)
    return value

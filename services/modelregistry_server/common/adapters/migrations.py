"""Forward-only numbered SQL migrations, one PostgreSQL schema per service.

Files are named ``NNNN_description.sql`` and applied in order, each once, inside one
transaction that holds a transaction-scoped advisory lock, so replicas starting together
serialise here instead of racing (session-scoped locks are unsafe with a pool: the lock
would stay with whichever pooled connection took it).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelregistry_server.common.adapters.sql import load_queries

if TYPE_CHECKING:
    from modelregistry_server.common.adapters.db import Connection

QUERIES = load_queries(Path(__file__).parent / "queries.sql")
_log = logging.getLogger(__name__)
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class MigrationError(RuntimeError):
    """The database schema cannot be brought to the version this server expects."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the SQL text, to catch an applied migration edited afterwards."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path) -> list[Migration]:
    """Load the migrations in ``directory``, checking the numbering has no gaps."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files must be named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{directory}: migration {expected:04d} is missing (found {migration.version:04d})"
            )
    return found


async def apply_migrations(conn: Connection, schema: str, directory: Path) -> int:
    """Bring ``schema`` up to the newest migration in ``directory``.

    Returns:
        The number of migrations applied now (0 when already current).

    Raises:
        MigrationError: The database is newer than this server, or an applied file changed.
    """
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"bad schema name {schema!r}")
    migrations = discover(directory)
    async with conn.transaction():
        await conn.execute(QUERIES["no_lock_timeout"])
        await conn.execute(QUERIES["lock_migrations"], schema)
        await conn.execute(await conn.fetchval(QUERIES["create_schema_statement"], schema))
        await conn.execute(QUERIES["use_schema"], schema)
        await conn.execute(QUERIES["create_migrations_table"])
        rows = await conn.fetch(QUERIES["applied_migrations"])
        applied = {row["version"]: row for row in rows}
        known = {m.version: m for m in migrations}
        newer = sorted(set(applied) - set(known))
        if newer:
            raise MigrationError(
                f"database schema {schema!r} is at migration {newer[-1]:04d} but this server "
                f"only knows up to {len(migrations):04d}: upgrade the server, never downgrade"
            )
        for version, row in applied.items():
            if row["checksum"] != known[version].checksum:
                raise MigrationError(
                    f"migration {version:04d}_{row['name']} of schema {schema!r} was edited after "
                    "it was applied; add a new migration instead of changing an applied one"
                )
        count = 0
        for migration in migrations:
            if migration.version in applied:
                continue
            _log.info("applying migration %s %04d_%s", schema, migration.version, migration.name)
            await conn.execute(QUERIES["use_schema"], schema)
            await conn.execute(migration.sql)
            # Again: a migration may have changed the search path.
            await conn.execute(QUERIES["use_schema"], schema)
            await conn.execute(
                QUERIES["record_migration"], migration.version, migration.name, migration.checksum
            )
            count += 1
        return count

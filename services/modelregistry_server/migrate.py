"""``modelregistry-server migrate [all|metadata|artifacts]``: apply the migrations and exit.

The servers migrate at start-up anyway (under an advisory lock, so replicas may start
together); this runs the same migrations on their own, so that a deployment can apply them
once before it rolls new replicas (the Helm chart's pre-install/pre-upgrade Job) and stop the
roll-out when they fail, instead of finding out from crash-looping pods. The database may still
be starting (a fresh CloudNativePG cluster, say): the connection is retried for ``--wait``
seconds before giving up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence

import asyncpg

from modelregistry_server.common.adapters.db import ACQUIRE_TIMEOUT_S
from modelregistry_server.common.adapters.migrations import MigrationError, apply_migrations
from modelregistry_server.server import schema_migrations

_log = logging.getLogger("modelregistry_server.migrate")
_ENV_URL = "MODELREGISTRY_DATABASE_URL"
# Between connection attempts while the database is not reachable yet.
_RETRY_INTERVAL_S = 2.0


def build_parser() -> argparse.ArgumentParser:
    """The ``migrate`` argument parser (without the command word)."""
    parser = argparse.ArgumentParser(
        prog="modelregistry-server migrate",
        description="Bring the database schemas of the given services up to this server's "
        "migrations, then exit (0: the schemas are current). Every server also does this at "
        "start-up; run it alone before rolling out a new version.",
    )
    parser.add_argument(
        "services",
        nargs="?",
        choices=["all", "metadata", "artifacts"],
        default="all",
        help="whose schemas to migrate (default: all; access and audit always)",
    )
    parser.add_argument(
        "--database-url",
        help=f"postgresql://user:password@host:port/db (default ${_ENV_URL}); pass it through "
        "the environment: command-line flags are visible to every user in `ps`",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="seconds to keep retrying while the database cannot be reached (default 60)",
    )
    return parser


async def _connect(url: str, wait_s: float) -> asyncpg.Connection[asyncpg.Record]:
    """Connect, retrying refused or failed connections until ``wait_s`` has passed."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(
                url, timeout=ACQUIRE_TIMEOUT_S
            )
            return conn
        except (TimeoutError, OSError, asyncpg.CannotConnectNowError) as exc:
            if time.monotonic() + _RETRY_INTERVAL_S > deadline:
                raise
            _log.info("database not reachable yet (%s); retrying", exc)
            await asyncio.sleep(_RETRY_INTERVAL_S)


async def migrate(url: str, services: str, wait_s: float) -> dict[str, int]:
    """Apply the migrations of ``services``; returns how many were applied per schema."""
    conn = await _connect(url, wait_s)
    try:
        return {
            schema: await apply_migrations(conn, schema, directory)
            for schema, directory in schema_migrations(services)
        }
    finally:
        await conn.close()


def main(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """Run ``migrate``; returns the exit code (2: bad arguments, 1: migration failed)."""
    args = build_parser().parse_args(list(argv))
    env = os.environ if environ is None else environ
    url = args.database_url or env.get(_ENV_URL)
    problem = None
    if not url:
        problem = f"migrate needs --database-url (or {_ENV_URL})"
    elif not url.startswith(("postgres://", "postgresql://")):
        problem = "--database-url must start with postgresql:// (or postgres://)"
    elif not 0 <= args.wait <= 3600:
        problem = f"--wait must be seconds from 0 to 3600, not {args.wait}"
    if problem is not None or url is None:
        print(f"modelregistry-server: {problem}", file=sys.stderr)
        return 2
    try:
        applied = asyncio.run(migrate(url, args.services, args.wait))
    except MigrationError as exc:
        print(f"modelregistry-server: migration failed: {exc}", file=sys.stderr)
        return 1
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        # The URL is not printed: it holds the password.
        reason = f"{type(exc).__name__}: {exc}"
        print(f"modelregistry-server: migration failed: {reason}", file=sys.stderr)
        return 1
    for schema, count in applied.items():
        print(
            f"schema {schema}: {count} migration(s) applied"
            if count
            else f"schema {schema}: current"
        )
    return 0

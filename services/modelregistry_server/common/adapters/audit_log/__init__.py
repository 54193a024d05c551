"""The ``audit`` schema: the registry's one audit log, which every service appends to.

It is its own schema, migrated by every process (like ``access``), because every service
records in it: metadata its changes, access its token and binding changes and the calls it
refused. ``MetadataService.ListAuditEvents`` reads it.

Every event is chained into a tamper-evident hash chain shortly after its transaction commits:
``chain.py`` says how and why that way, ``common/kernel/audit_chain.py`` what is hashed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from modelregistry_server.common.adapters.sql import load_queries
from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.telemetry import current_trace_id

if TYPE_CHECKING:
    from modelregistry_server.common.adapters.db import Connection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SCHEMA = "audit"
QUERIES = load_queries(Path(__file__).parent / "queries.sql")
# Called after every append in this process: the chainer's wake-up (see ``on_append``).
_appended: list[Callable[[], None]] = []


async def append(conn: Connection, entry: AuditEntry) -> None:
    """Append ``entry``; in the caller's transaction, so a change never commits without it."""
    await conn.execute(
        QUERIES["insert_event"],
        entry.actor,
        entry.method,
        entry.resource,
        entry.model_id or None,
        None if entry.before is None else json.dumps(dict(entry.before), default=str),
        None if entry.after is None else json.dumps(dict(entry.after), default=str),
        entry.request_id,
        current_trace_id() or None,
        entry.denied_permission,
    )
    for callback in tuple(_appended):
        callback()


def on_append(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` (cheap, synchronous) after each append in this process, before the
    appending transaction commits; returns the function that stops it."""
    _appended.append(callback)
    return lambda: _appended.remove(callback)


__all__ = ["MIGRATIONS_DIR", "SCHEMA", "AuditEntry", "append", "on_append"]

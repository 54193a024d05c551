"""Rows for the filter/keyset SQL integration tests, inserted with plain SQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg

Row = tuple[str, int]


def day(month: int, d: int, year: int = 2026) -> datetime:
    return datetime(year, month, d, tzinfo=UTC)


async def insert_model(conn: asyncpg.Connection, model_id: str, owner: str = "", **kw: Any) -> None:
    await conn.execute(
        "INSERT INTO metadata.models (model_id, owner, labels, create_time, update_time, etag) "
        "VALUES ($1, $2, $3::jsonb, $4, $5, 'e')",
        model_id,
        owner,
        json.dumps(kw.get("labels", {})),
        kw.get("create_time", day(1, 1)),
        kw.get("update_time", kw.get("create_time", day(1, 1))),
    )


async def insert_version(
    conn: asyncpg.Connection,
    model_id: str,
    version: int,
    *,
    state: str = "READY",
    labels: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    framework: str = "",
    create_time: datetime | None = None,
    ready_time: datetime | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO metadata.model_versions (model_id, version, state, labels, params, "
        "metrics, framework, create_time, update_time, ready_time, etag) "
        "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8, $8, $9, 'e')",
        model_id,
        version,
        state,
        json.dumps(labels or {}),
        json.dumps(params or {}),
        json.dumps(metrics or {}),
        framework,
        create_time or day(1, 1),
        ready_time,
    )

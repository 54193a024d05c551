"""Compiled filters and keyset ordering (``adapters/postgres/filter_sql.py``) against a real
PostgreSQL: rows are inserted with plain SQL, then each filter must select exactly the
expected rows, and paging with every supported order must return every row exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from modelregistry_server.metadata.adapters.postgres.filter_sql import (
    compile_filter,
)
from modelregistry_server.metadata.domain.filter import (
    parse_filter,
)
from tests.support.filter_rows import Row, day, insert_model, insert_version
from tests.support.postgres import create_test_database, drop_test_database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


MODELS: list[tuple[str, str, dict[str, str], datetime]] = [
    ("alpha", "ana", {"team": "nlp"}, day(1, 1)),
    ("beta", "bob", {"team": "vision"}, day(12, 1, 2025)),
    ("gamma", "", {}, day(3, 1)),
]

# (model, version, state, labels, params, metrics, framework, create_time, ready_time)
VERSIONS: list[
    tuple[str, int, str, dict[str, Any], dict[str, Any], dict[str, Any], str, datetime, Any]
] = [
    (
        "alpha", 1, "READY", {"team": "nlp", "tier": "gold"},
        {"opt": "adam", "epochs": 10, "lr": 0.001, "amp": True},
        {"accuracy": 0.91, "loss": 0.3}, "pytorch", day(1, 1), day(1, 2),
    ),
    (
        "alpha", 2, "READY", {"team": "vision"},
        {"opt": "sgd", "epochs": 20, "lr": 0.1, "amp": False},
        {"accuracy": 0.85}, "pytorch", day(2, 1), day(2, 2),
    ),
    (
        "alpha", 3, "PENDING", {},
        {"opt": "adam", "epochs": "10", "seed": 12345678901234567},
        {"accuracy": "n/a"}, "tensorflow", day(3, 1), None,
    ),
    (
        "beta", 1, "READY", {"team": "nlp"},
        {"lr": 0.01, "amp": "true"},
        {"accuracy": 0.95, "f1": 0.9}, "jax", day(12, 1, 2025), day(12, 2, 2025),
    ),
    (
        "beta", 2, "ARCHIVED", {"team": "n*p"},
        {},
        {"loss": 0.5}, "", day(1, 15), day(1, 16),
    ),
    (
        "gamma", 1, "FAILED", {"tier": "silver"},
        {"epochs": 10.0},
        {}, "onnx", day(4, 1), None,
    ),
]  # fmt: skip

ALIASES = [("alpha", "production", 1), ("alpha", "staging", 2), ("beta", "production", 1)]
ALIASES += [("beta", "canary", 1)]

A1, A2, A3, B1, B2, G1 = (
    ("alpha", 1),
    ("alpha", 2),
    ("alpha", 3),
    ("beta", 1),
    ("beta", 2),
    ("gamma", 1),
)
ALL = {A1, A2, A3, B1, B2, G1}


async def _seed(conn: asyncpg.Connection) -> None:
    for model_id, owner, labels, created in MODELS:
        await insert_model(conn, model_id, owner, labels=labels, create_time=created)
    for model_id, version, state, labels, params, metrics, fw, created, ready in VERSIONS:
        await insert_version(
            conn,
            model_id,
            version,
            state=state,
            labels=labels,
            params=params,
            metrics=metrics,
            framework=fw,
            create_time=created,
            ready_time=ready,
        )
    for model_id, alias, version in ALIASES:
        await conn.execute(
            "INSERT INTO metadata.aliases (model_id, alias, version) VALUES ($1, $2, $3)",
            model_id,
            alias,
            version,
        )


@pytest.fixture(scope="module")
async def seeded_url(postgres_template: str) -> AsyncIterator[str]:
    """One fresh migrated database with the rows above, shared by the read-only tests."""
    url = await create_test_database(postgres_template)
    try:
        connection = await asyncpg.connect(url, timeout=10, command_timeout=20)
        try:
            await _seed(connection)
        finally:
            await connection.close(timeout=10)
        yield url
    finally:
        await drop_test_database(postgres_template, url)


@pytest.fixture
async def seeded(seeded_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the seeded database inside a transaction that is rolled back."""
    connection = await asyncpg.connect(seeded_url, timeout=10, command_timeout=20)
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield connection
    finally:
        await transaction.rollback()
        await connection.close(timeout=10)


async def select_versions(conn: asyncpg.Connection, text: str) -> set[Row]:
    """Rows matching ``text``; ``$1`` is taken by another condition to check the numbering."""
    expr = parse_filter(text, "version")
    assert expr is not None
    where, params = compile_filter(expr, "version", first_param=2)
    sql = (
        "SELECT v.model_id, v.version FROM metadata.model_versions v "  # noqa: S608
        f"WHERE v.model_id <> $1::text AND {where} ORDER BY v.model_id, v.version"
    )
    rows = await conn.fetch(sql, "no-such-model", *params)
    return {(r["model_id"], r["version"]) for r in rows}


VERSION_CASES: list[tuple[str, set[Row]]] = [
    # metrics (a string "accuracy" on alpha/3 must neither match nor raise)
    ("metrics.accuracy > 0.9", {A1, B1}),
    ("metrics.accuracy >= 0.85 AND metrics.accuracy < 0.95", {A1, A2}),
    ("metrics.accuracy = 0.91", {A1}),
    ("metrics.accuracy != 0.91", {A2, B1}),
    ("metrics.f1 != 0.5", {B1}),
    ("metrics.loss <= 0.5", {A1, B2}),
    ("NOT metrics.accuracy > 0.9", {A2, A3, B2, G1}),
    # state
    ("state = READY", {A1, A2, B1}),
    ("state = model_version_state_archived", {B2}),
    ("state != READY", {A3, B2, G1}),
    ("-state = READY", {A3, B2, G1}),
    # labels (missing keys never match, also not with !=)
    ('labels.team = "nlp"', {A1, B1}),
    ('labels.team != "nlp"', {A2, B2}),
    ('NOT labels.team = "nlp"', {A2, A3, B2, G1}),
    ('labels.team = "n*"', {A1, B1, B2}),
    (r'labels.team = "n\*p"', {B2}),
    ('labels.team = "*"', {A1, A2, B1, B2}),
    ('labels.team != "n*"', {A2}),
    ('labels.team = "%"', set()),
    ('labels.team = "_lp"', set()),
    ('labels.team = "_*"', set()),
    ('labels.tier > "h"', {G1}),
    ("labels.tier = gold", {A1}),
    # params: typed by the filter value
    ('params.opt = "adam"', {A1, A3}),
    ('params.opt != "adam"', {A2}),
    ("params.epochs = 10", {A1, G1}),
    ('params.epochs = "10"', {A3}),
    ("params.epochs > 10.5", {A2}),
    ("params.lr < 0.05", {A1, B1}),
    ("params.lr = 0.1", {A2}),
    ("params.lr = 0.001", {A1}),
    ("params.amp = true", {A1}),
    ("params.amp != true", {A2}),
    ('params.amp = "true"', {B1}),
    ("params.seed = 12345678901234567", {A3}),
    ("params.seed = 12345678901234568", set()),  # float8 would have said yes
    ('params.opt < "b"', {A1, A3}),
    # alias
    ('alias = "production"', {A1, B1}),
    ('alias != "production"', {A2, A3, B2, G1}),
    ('alias = "stag*"', {A2}),
    ('alias = "canary" AND alias = "production"', {B1}),
    # name, version, framework
    ('name = "alpha"', {A1, A2, A3}),
    ('name = "models/beta"', {B1, B2}),
    ('name < "b"', {A1, A2, A3}),
    ('name = "*a"', {A1, A2, A3, B1, B2, G1}),
    ("version >= 2", {A2, A3, B2}),
    ("framework = pytorch", {A1, A2}),
    ('framework != "pytorch"', {A3, B1, B2, G1}),
    # times (ready_time is NULL for alpha/3 and gamma/1)
    ('create_time >= "2026-01-01T00:00:00Z" AND create_time < 2026-02-01T00:00:00Z', {A1, B2}),
    ("create_time = 2026-01-01T01:00:00+01:00", {A1}),
    ('ready_time < "2026-01-10T00:00:00Z"', {A1, B1}),
    ("ready_time > 2000-01-01T00:00:00Z", {A1, A2, B1, B2}),
    ('NOT ready_time < "2026-01-10T00:00:00Z"', {A2, A3, B2, G1}),
    ("update_time > 2026-03-15T00:00:00Z", {G1}),
    # AND / OR / NOT and parentheses (OR binds tighter than AND)
    ('name = "alpha" AND (state = PENDING OR metrics.accuracy > 0.9)', {A1, A3}),
    ('name = "alpha" AND state = PENDING OR metrics.accuracy > 0.9', {A1, A3}),
    ('(name = "alpha" AND state = PENDING) OR metrics.accuracy > 0.9', {A1, A3, B1}),
    ('NOT (name = "alpha" OR name = "beta")', {G1}),
    ('state = READY AND NOT (labels.team = "nlp" AND alias = "production")', {A2}),
    ("version = 1 OR version = 2 OR version = 3 AND state != PENDING", {A1, A2, B1, B2, G1}),
    # injection attempts are plain strings
    ('name = "\' OR 1=1 --"', set()),
    ('labels.team = "\'; DROP TABLE metadata.model_versions; --"', set()),
    ("params.opt = \"x' OR '1'='1\"", set()),
]


@pytest.mark.parametrize(("text", "expected"), VERSION_CASES, ids=[c[0] for c in VERSION_CASES])
async def test_version_filters(seeded: asyncpg.Connection, text: str, expected: set[Row]) -> None:
    assert await select_versions(seeded, text) == expected


async def test_injection_leaves_the_tables_intact(seeded: asyncpg.Connection) -> None:
    for text in [
        'name = "\' OR 1=1 --"',
        'name = "x\'; DELETE FROM metadata.model_versions; --"',
        'labels.team = "\'); DROP TABLE metadata.models; --"',
    ]:
        assert await select_versions(seeded, text) == set()
    assert await seeded.fetchval("SELECT count(*) FROM metadata.model_versions") == len(VERSIONS)
    assert await seeded.fetchval("SELECT count(*) FROM metadata.models") == len(MODELS)
    # Keys are parameters too: a hostile key can only miss.
    assert await select_versions(seeded, 'labels.x--1 = "y"') == set()


def test_values_and_keys_never_appear_in_the_sql() -> None:
    text = (
        'labels.secret_key = "topsecret" AND params.pkey = "pval" AND metrics.mkey > 0.25 '
        'AND alias = "aliasval" AND name = "modelval" AND state = ARCHIVED'
    )
    expr = parse_filter(text, "version")
    assert expr is not None
    sql, params = compile_filter(expr, "version", first_param=5)
    for word in ["secret_key", "topsecret", "pkey", "pval", "mkey", "0.25", "aliasval"]:
        assert word not in sql
    for word in ["modelval", "ARCHIVED"]:
        assert word not in sql
    assert "$5::text" in sql
    assert f"${5 + len(params) - 1}::" in sql
    assert f"${5 + len(params)}" not in sql
    assert "topsecret" in params
    assert "secret_key" in params


MODEL_CASES: list[tuple[str, set[str]]] = [
    ('owner = "ana"', {"alpha"}),
    ('owner != "ana"', {"beta", "gamma"}),
    ('labels.team = "nlp" OR name = "models/gamma"', {"alpha", "gamma"}),
    ('labels.team != "nlp"', {"beta"}),
    ('NOT labels.team = "nlp"', {"beta", "gamma"}),
    ('name = "a*"', {"alpha"}),
    ("name >= beta", {"beta", "gamma"}),
    ("create_time < 2026-01-01T00:00:00Z", {"beta"}),
    ("update_time >= 2026-01-01T00:00:00Z AND NOT owner = bob", {"alpha", "gamma"}),
]


@pytest.mark.parametrize(("text", "expected"), MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
async def test_model_filters(seeded: asyncpg.Connection, text: str, expected: set[str]) -> None:
    expr = parse_filter(text, "model")
    assert expr is not None
    where, params = compile_filter(expr, "model", first_param=1)
    sql = f"SELECT m.model_id FROM metadata.models m WHERE {where}"  # noqa: S608
    rows = await seeded.fetch(sql, *params)
    assert {r["model_id"] for r in rows} == expected


def test_compile_rejects_fields_of_the_other_kind() -> None:
    expr = parse_filter("state = READY", "version")
    assert expr is not None
    with pytest.raises(ValueError, match="no field state"):
        compile_filter(expr, "model", first_param=1)

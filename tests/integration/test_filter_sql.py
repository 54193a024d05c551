"""Compiled filters and keyset ordering (``adapters/postgres/filter_sql.py``) against a real
PostgreSQL: rows are inserted with plain SQL, then each filter must select exactly the
expected rows, and paging with every supported order must return every row exactly once."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from modelregistry_server.common.kernel.page_token import PageTokenCodec
from modelregistry_server.metadata.adapters.postgres.filter_sql import (
    OrderSql,
    compile_filter,
    keyset_condition,
    order_sql,
)
from modelregistry_server.metadata.domain.errors import InvalidArgument
from modelregistry_server.metadata.domain.filter import (
    OrderKey,
    ResourceKind,
    parse_filter,
    parse_order_by,
)
from tests.support.postgres import create_test_database, drop_test_database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

Row = tuple[str, int]


def day(month: int, d: int, year: int = 2026) -> datetime:
    return datetime(year, month, d, tzinfo=UTC)


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


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url, timeout=10, command_timeout=20)
    try:
        yield connection
    finally:
        await connection.close(timeout=10)


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


# ---------------------------------------------------------------- keyset pagination


def _expected_order(rows: list[dict[str, Any]], keys: list[OrderKey]) -> list[Row]:
    """The order the contract promises: missing values last in either direction, ties
    broken by (model, version) in the last key's direction."""
    columns: list[tuple[str, bool]] = []
    for key in keys:
        name = key.field.key if key.field.kind == "metrics" else key.field.kind
        assert name is not None
        columns.append(("model_id" if name == "name" else name, key.descending))
    last = keys[-1].descending if keys else False
    columns += [("model_id", last), ("version", last)]

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for name, descending in columns:
            x, y = a.get(name), b.get(name)
            if x == y:
                continue
            if x is None:
                return 1
            if y is None:
                return -1
            result = -1 if x < y else 1
            return -result if descending else result
        return 0

    return [(r["model_id"], r["version"]) for r in sorted(rows, key=functools.cmp_to_key(compare))]


async def _seed_many(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """32 versions over two models: tied, missing and non-numeric accuracies, tied create
    times, NULL ready times."""
    rows: list[dict[str, Any]] = []
    base = day(1, 1)
    for model_id in ("many-a", "many-b"):
        await insert_model(conn, model_id)
        for version in range(1, 17):
            i = len(rows)
            metrics: dict[str, Any] = {}
            if i % 5 == 0:
                pass  # no accuracy at all
            elif i % 7 == 0:
                metrics["accuracy"] = "high"  # not a number: sorts like a missing one
            else:
                metrics["accuracy"] = round((i * 37 % 11) / 10, 1)  # many ties
            created = base + timedelta(hours=i % 6)
            ready = None if i % 4 == 0 else base + timedelta(days=1, minutes=(i * 13) % 9)
            await insert_version(
                conn,
                model_id,
                version,
                metrics=metrics,
                create_time=created,
                ready_time=ready,
            )
            accuracy = metrics.get("accuracy")
            rows.append(
                {
                    "model_id": model_id,
                    "version": version,
                    "accuracy": accuracy if isinstance(accuracy, float) else None,
                    "create_time": created,
                    "update_time": created,
                    "ready_time": ready,
                }
            )
    # A row the filter below excludes, so filter and order parameters share one query.
    await insert_model(conn, "other")
    await insert_version(conn, "other", 1, metrics={"accuracy": 0.5})
    return rows


async def _page_through(
    conn: asyncpg.Connection, kind: ResourceKind, filter_text: str, order_by: str, size: int
) -> list[list[Row]]:
    codec = PageTokenCodec(b"k" * 32)
    expr = parse_filter(filter_text, kind)
    assert expr is not None
    where, filter_params = compile_filter(expr, kind, first_param=2)
    order: OrderSql = order_sql(parse_order_by(order_by, kind), kind, 2 + len(filter_params))
    table = "metadata.model_versions v" if kind == "version" else "metadata.models m"
    columns = "v.model_id, v.version" if kind == "version" else "m.model_id, 0 AS version"
    pages: list[list[Row]] = []
    token = ""
    while True:
        after_sql, after_params = "true", list[Any]()
        if token:
            cursor = codec.decode("q", token)
            after_sql, after_params = keyset_condition(order, cursor, order.next_param)
        sql = (
            f"SELECT {columns}, {order.select_list()} FROM {table} "  # noqa: S608
            f"WHERE {where} AND {after_sql} ORDER BY {order.order_by()} LIMIT $1::int"
        )
        rows = await conn.fetch(sql, size, *filter_params, *order.params, *after_params)
        pages.append([(r["model_id"], r["version"]) for r in rows])
        if len(rows) < size:
            return pages
        token = codec.encode("q", order.cursor(rows[-1]))
        assert len(pages) < 50, "pagination does not end"


@pytest.mark.parametrize(
    "order_by",
    [
        "metrics.accuracy desc",
        "metrics.accuracy asc",
        "metrics.accuracy desc, create_time",
        "create_time desc, metrics.accuracy",
        "ready_time desc",
        "ready_time",
        "create_time desc",
        "version desc",
        "name, version desc",
        "update_time, name",
    ],
)
async def test_keyset_pages_return_every_row_once_in_order(
    conn: asyncpg.Connection, order_by: str
) -> None:
    rows = await _seed_many(conn)
    pages = await _page_through(
        conn, "version", 'name = "many-a" OR name = "many-b"', order_by, size=7
    )
    assert all(len(page) == 7 for page in pages[:-1])
    flat = [row for page in pages for row in page]
    assert flat == _expected_order(rows, parse_order_by(order_by, "version"))
    assert len(set(flat)) == len(rows) == 32


async def test_missing_metrics_sort_last_in_both_directions(conn: asyncpg.Connection) -> None:
    rows = await _seed_many(conn)
    missing = {(r["model_id"], r["version"]) for r in rows if r["accuracy"] is None}
    for order_by in ("metrics.accuracy desc", "metrics.accuracy"):
        pages = await _page_through(conn, "version", 'name = "many-*"', order_by, size=7)
        flat = [row for page in pages for row in page]
        assert set(flat[-len(missing) :]) == missing


async def test_keyset_pages_over_models(conn: asyncpg.Connection) -> None:
    base = day(1, 1)
    expected = []
    for i in range(23):
        model_id = f"m{i:02d}"
        updated = base + timedelta(days=i % 4)
        await insert_model(conn, model_id, create_time=base, update_time=updated)
        expected.append({"model_id": model_id, "version": 0, "update_time": updated})
    for order_by in ("update_time desc, name", "name desc", "update_time"):
        pages = await _page_through(conn, "model", 'name = "m*"', order_by, size=5)
        flat = [row for page in pages for row in page]
        assert flat == _expected_order(expected, parse_order_by(order_by, "model")), order_by


def test_order_sql_shapes() -> None:
    keys = parse_order_by("metrics.accuracy desc", "version")
    order = order_sql(keys, "version", first_param=3)
    assert order.params == ("accuracy",)
    assert order.next_param == 4
    assert [c.descending for c in order.columns] == [True, True, True]
    assert "'-Infinity'::float8" in order.columns[0].expr
    assert "$3::text" in order.columns[0].expr
    assert order.order_by().endswith("v.model_id DESC, v.version DESC")
    sql, params = keyset_condition(order, [0.5, "a", 2], first_param=4)
    assert sql.startswith("((COALESCE(")
    assert ") < ($4::float8, $5::text, $6::bigint))" in sql
    assert params == [0.5, "a", 2]
    asc = order_sql(parse_order_by("metrics.accuracy", "version"), "version")
    assert "'Infinity'::float8" in asc.columns[0].expr
    # 'version' as a key is not repeated as a tie-breaker; 'name' on models is the tie-breaker.
    assert len(order_sql(parse_order_by("version", "version"), "version").columns) == 2
    assert len(order_sql(parse_order_by("name desc", "model"), "model").columns) == 1
    mixed = order_sql(parse_order_by("update_time desc, name", "model"), "model")
    sql, _ = keyset_condition(mixed, ["2026-01-01T00:00:00+00:00", "m"], first_param=1)
    assert " OR " in sql
    assert "m.update_time < $1::timestamptz" in sql


@pytest.mark.parametrize(
    "cursor",
    [
        [],
        [0.5, "a"],
        ["x", "a", 2],
        [0.5, 1, 2],
        [0.5, "a", "2"],
        [0.5, "a", True],
        [0.5, "a", 2**70],
        [float("nan"), "a", 2],
    ],
)
def test_cursor_that_does_not_fit_is_a_page_token_error(cursor: list[Any]) -> None:
    order = order_sql(parse_order_by("metrics.accuracy desc", "version"), "version")
    with pytest.raises(InvalidArgument) as info:
        keyset_condition(order, cursor, first_param=2)
    assert info.value.reason == "PAGE_TOKEN_INVALID"
    assert info.value.field == "page_token"


def test_bad_timestamp_cursor_is_a_page_token_error() -> None:
    order = order_sql(parse_order_by("ready_time", "version"), "version")
    with pytest.raises(InvalidArgument):
        keyset_condition(order, ["yesterday", "a", 1], first_param=1)
    _sql, params = keyset_condition(order, ["infinity", "a", 1], first_param=1)
    assert params[0] == datetime.max.replace(tzinfo=UTC)

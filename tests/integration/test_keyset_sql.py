"""Keyset pagination (``adapters/postgres/filter_sql.py``) against a real PostgreSQL: paging
with every supported order returns every row exactly once, in order."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
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
from tests.support.filter_rows import Row, day, insert_model, insert_version

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


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


# Values of one param across versions: every JSON scalar type, ties, integers too close for a
# float, a JSON null (sorts like a missing param) and versions without it.
_PARAM_VALUES: list[Any] = [
    3, 0.5, "adam", True, None, "sgd", 2**53 + 1, 2**53, -7, False, "adam", 0.5,
    "MISSING", 1e-05, "b", True, "MISSING", 3, "", -7.25,
]  # fmt: skip


def _param_rank(value: Any, descending: bool) -> tuple[int, Decimal, str]:
    """The contract: numbers by value, then strings, then false and true; missing last."""
    if value is None or value == "MISSING":
        return (-1 if descending else 3, Decimal(0), "")
    if isinstance(value, bool):
        return (2, Decimal(0), "true" if value else "false")
    if isinstance(value, int | float):
        return (0, Decimal(repr(value)) if isinstance(value, float) else Decimal(value), "")
    return (1, Decimal(0), value)


@pytest.mark.parametrize("descending", [False, True])
async def test_params_sort_by_type_then_value_and_page_exactly(
    conn: asyncpg.Connection, descending: bool
) -> None:
    await insert_model(conn, "p")
    for version, value in enumerate(_PARAM_VALUES, start=1):
        params = {} if value == "MISSING" else {"opt": value}
        await insert_version(conn, "p", version, params=params)
    order_by = "params.opt desc" if descending else "params.opt"
    pages = await _page_through(conn, "version", 'name = "p"', order_by, size=3)
    flat = [version for page in pages for _, version in page]

    def key(version: int) -> tuple[tuple[int, Decimal, str], int]:
        return _param_rank(_PARAM_VALUES[version - 1], descending), version

    # Strings here are ASCII lower-case or empty, which every collation orders alike.
    expected = sorted(range(1, len(_PARAM_VALUES) + 1), key=key, reverse=descending)
    assert flat == expected
    missing = {v for v, value in enumerate(_PARAM_VALUES, 1) if value in (None, "MISSING")}
    assert set(flat[-len(missing) :]) == missing
    # The big integers keep their exact order (a float8 would tie them).
    assert flat.index(7) < flat.index(8) if descending else flat.index(8) < flat.index(7)


def test_param_order_sql_shape_and_numeric_cursor() -> None:
    order = order_sql(parse_order_by("params.opt desc", "version"), "version", first_param=2)
    assert order.params == ("opt",)
    assert [c.sql_type for c in order.columns] == ["bigint", "numeric", "text", "text", "bigint"]
    assert "ELSE -1 END" in order.columns[0].expr
    row = {f"sort_key_{i}": v for i, v in enumerate([0, Decimal(2**53 + 1), "", "p", 4])}
    cursor = order.cursor(row)
    assert cursor[1] == str(2**53 + 1)
    _sql, params = keyset_condition(order, cursor, first_param=3)
    assert params[1] == Decimal(2**53 + 1)
    for bad in (1.5, "x", "NaN", "9" * 500):
        with pytest.raises(InvalidArgument):
            keyset_condition(order, [0, bad, "", "p", 4], first_param=3)

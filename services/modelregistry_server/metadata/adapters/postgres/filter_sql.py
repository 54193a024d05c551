"""Compile parsed ``filter`` and ``order_by`` (``domain/filter.py``) into PostgreSQL.

Everything a client wrote reaches PostgreSQL as a bind parameter ``$n``: values, and map keys
too (``v.labels ->> $3::text``). The SQL text is assembled only from the fixed fragments in
this module, so no filter can change the shape of a query.

The SQL refers to a ``metadata.model_versions`` row aliased ``v`` or a ``metadata.models`` row
aliased ``m``::

    where, params = compile_filter(expr, "version", first_param=2)
    order = order_sql(keys, "version", first_param=2 + len(params))
    after, after_params = keyset_condition(order, cursor, order.next_param)
    sql = (f"SELECT v.*, {order.select_list()} FROM metadata.model_versions v "
           f"WHERE v.model_id = $1 AND {where} AND {after} "
           f"ORDER BY {order.order_by()} LIMIT ...")
    rows = await conn.fetch(sql, model_id, *params, *order.params, *after_params)
    next_cursor = order.cursor(rows[-1])   # JSON-safe: put it in the page token

Filter semantics:

- Every comparison is two-valued (true or false, never NULL), so ``NOT`` is the exact
  complement and a NULL can never leak through ``NOT``.
- A label, param or metric the row does not have never matches, not even with ``!=``:
  ``labels.team != "nlp"`` skips rows without a ``team`` label (but ``NOT labels.team = "nlp"``
  includes them). The same holds for a key whose JSON type differs from the comparison's:
  metrics compare as ``float8`` only where the value is a JSON number, params compare as the
  filter value's type (string: ``text``; integer or decimal number: exact ``numeric``;
  boolean: ``boolean``) only where the stored value has that JSON type. The type test is a
  ``CASE`` guard, because PostgreSQL does not promise to evaluate ``AND`` operands in order, so
  a cast of a non-number never runs and never raises.
- ``ready_time`` of a version that never became READY is NULL and matches nothing.
- ``alias = "x"`` is ``EXISTS`` over ``metadata.aliases`` for the row's (model, version);
  ``alias != "x"`` is ``NOT EXISTS`` (so it includes versions with no alias at all).
- ``name`` is the model id (``m.model_id`` / ``v.model_id``); ``state`` is the text column.
- A ``Wildcard`` compiles to ``LIKE`` (``NOT LIKE`` for ``!=``) with ``%`` ``_`` and ``\\``
  escaped in the literal parts. String ordering uses the database's collation, the same one
  ``ORDER BY`` uses.
- ``labels.k = "x"`` compiles to ``labels @> jsonb_build_object(k, x)`` so the GIN index on
  ``model_versions.labels`` can serve it.

Ordering and keyset pagination:

- Each sort key becomes an expression that is never NULL, so the keyset comparison never
  meets a NULL: a missing (or non-numeric) metric becomes ``-Infinity`` when sorting
  descending and ``Infinity`` ascending, and a NULL ``ready_time`` becomes ``-infinity`` /
  ``infinity`` likewise, so rows without the value sort last in either direction (as the
  ``order_by`` contract says). Real values never reach these sentinels: JSON numbers are
  finite. A param, whose values may be of any JSON scalar type, sorts by three columns: its
  type's rank (numbers, strings, booleans; missing after them in the sort's direction), its
  exact number, and its text.
- The tie-breakers ``(model_id, version)`` (models: ``model_id``) follow the last key's
  direction; a tie-breaker already among the keys is not repeated.
- Directions may be mixed. When all columns share one direction the keyset condition is one
  row comparison, ``(e1, e2, e3) > ($a, $b, $c)`` (``<`` descending), which an index on the
  same columns can serve; mixed directions use the expanded form
  ``e1 > $a OR (e1 = $a AND (e2 < $b OR (e2 = $b AND ...)))``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NoReturn, Protocol

from modelregistry_server.metadata.domain.errors import InvalidArgument
from modelregistry_server.metadata.domain.filter import (
    And,
    Compare,
    Expr,
    FieldRef,
    Not,
    Op,
    Or,
    OrderKey,
    ResourceKind,
    Value,
    Wildcard,
)
from modelregistry_server.metadata.domain.filter_lexer import parse_rfc3339

_TABLE: Mapping[ResourceKind, str] = {"model": "m", "version": "v"}
# Plain columns per kind: field -> (column, SQL type of its values).
_COLUMNS: Mapping[ResourceKind, Mapping[str, tuple[str, str]]] = {
    "model": {
        "name": ("m.model_id", "text"),
        "owner": ("m.owner", "text"),
        "create_time": ("m.create_time", "timestamptz"),
        "update_time": ("m.update_time", "timestamptz"),
    },
    "version": {
        "name": ("v.model_id", "text"),
        "version": ("v.version", "bigint"),
        "state": ("v.state", "text"),
        "scan": ("v.scan_verdict", "text"),  # '' while not scanned yet (UNSPECIFIED)
        "framework": ("v.framework", "text"),
        "format": ("v.format", "text"),
        # The model card, searched without regard to case (see the filter grammar).
        "card": ("lower(v.description)", "text"),
        "create_time": ("v.create_time", "timestamptz"),
        "update_time": ("v.update_time", "timestamptz"),
        "ready_time": ("v.ready_time", "timestamptz"),
    },
}
_NULLABLE = frozenset({"v.ready_time"})
_MAPS: Mapping[ResourceKind, frozenset[str]] = {
    "model": frozenset({"labels"}),
    "version": frozenset({"labels", "params", "metrics"}),
}
_SQL_OP: Mapping[Op, str] = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_TIE_BREAKERS: Mapping[ResourceKind, tuple[tuple[str, str], ...]] = {
    "model": (("m.model_id", "text"),),
    "version": (("v.model_id", "text"), ("v.version", "bigint")),
}
SORT_ALIAS = "sort_key_"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_NUMERIC_CHARS = 400  # a param's number: an int64 or a double written out in full
_INFINITY = datetime.max.replace(tzinfo=UTC)
_NEGATIVE_INFINITY = datetime.min.replace(tzinfo=UTC)


class _Params:
    """Numbers bind parameters from ``first`` and collects their values."""

    def __init__(self, first: int) -> None:
        if first < 1:
            raise ValueError("bind parameters are numbered from 1")
        self.first = first
        self.values: list[Any] = []

    def add(self, value: Any, sql_type: str) -> str:
        self.values.append(value)
        return f"${self.first + len(self.values) - 1}::{sql_type}"


# ---------------------------------------------------------------------------- filter


def compile_filter(expr: Expr, kind: ResourceKind, first_param: int) -> tuple[str, list[Any]]:
    """Return a SQL boolean expression for ``expr`` and the values of its parameters.

    Parameters are numbered ``$first_param``, ``$first_param + 1``, ... in the order of the
    returned list. The expression is parenthesized where it needs to be, so it can be joined
    to others with ``AND``.

    Raises:
        ValueError: ``expr`` uses a field ``kind`` does not have (``parse_filter`` with the
            same ``kind`` never produces one).
    """
    params = _Params(first_param)
    return _compile(expr, kind, params), params.values


def _operands(expr: And | Or) -> list[Expr]:
    """The operands of a chain of the same operator, left to right (without recursion)."""
    out: list[Expr] = []
    stack: list[Expr] = [expr]
    while stack:
        item = stack.pop()
        if type(item) is type(expr):
            assert isinstance(item, And | Or)
            stack.append(item.right)
            stack.append(item.left)
        else:
            out.append(item)
    return out


def _compile(expr: Expr, kind: ResourceKind, params: _Params) -> str:
    if isinstance(expr, And | Or):
        joiner = " AND " if isinstance(expr, And) else " OR "
        return "(" + joiner.join(_compile(e, kind, params) for e in _operands(expr)) + ")"
    if isinstance(expr, Not):
        return f"NOT ({_compile(expr.expr, kind, params)})"
    return _compare(expr, kind, params)


def _like_pattern(value: Wildcard) -> str:
    def escape(part: str) -> str:
        return part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

    return "%".join(escape(part) for part in value.parts)


def _text_compare(sql: str, op: Op, value: object, params: _Params) -> str:
    """``sql op value`` for a text expression; a ``Wildcard`` becomes (NOT) LIKE."""
    if isinstance(value, Wildcard):
        if op not in ("=", "!="):
            raise ValueError(f"a wildcard cannot be compared with {op}")
        like = "LIKE" if op == "=" else "NOT LIKE"
        return f"{sql} {like} {params.add(_like_pattern(value), 'text')}"
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return f"{sql} {_SQL_OP[op]} {params.add(value, 'text')}"


def _lowered(value: Value) -> Value:
    """A text value in lower case (a wildcard's parts too), for case-blind fields."""
    if isinstance(value, Wildcard):
        return Wildcard(tuple(part.lower() for part in value.parts))
    return value.lower() if isinstance(value, str) else value


def _guarded(json_type: str, doc: str, key: str, then: str) -> str:
    # CASE, not AND: only CASE guarantees the cast in ``then`` runs after the type test.
    return f"CASE WHEN jsonb_typeof({doc} -> {key}) = '{json_type}' THEN {then} ELSE false END"


def _compare(cmp: Compare, kind: ResourceKind, params: _Params) -> str:
    field, op, value = cmp.field, cmp.op, cmp.value
    table = _TABLE[kind]
    if field.kind == "alias" and kind == "version":
        if op not in ("=", "!="):
            raise ValueError(f"alias cannot be compared with {op}")
        match = _text_compare("a.alias", "=", value, params)
        # Fixed text around ``match``, whose value is a bind parameter.
        exists = (
            "EXISTS (SELECT 1 FROM metadata.aliases a WHERE a.model_id = v.model_id "  # noqa: S608
            f"AND a.version = v.version AND {match})"
        )
        return exists if op == "=" else f"NOT {exists}"
    if field.kind in _MAPS[kind]:
        if field.key is None:
            raise ValueError(f"{field.kind} needs a key")
        doc = f"{table}.{field.kind}"
        key = params.add(field.key, "text")
        text = f"({doc} ->> {key})"
        if field.kind == "metrics":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"metrics compare with numbers, got {value!r}")
            number = params.add(float(value), "float8")
            return _guarded("number", doc, key, f"{text}::float8 {_SQL_OP[op]} {number}")
        if field.kind == "params" and isinstance(value, bool):
            if op not in ("=", "!="):
                raise ValueError(f"booleans cannot be compared with {op}")
            flag = params.add(value, "boolean")
            return _guarded("boolean", doc, key, f"{text}::boolean {_SQL_OP[op]} {flag}")
        if field.kind == "params" and isinstance(value, int | float):
            # numeric, not float8: exact for big integers, and 0.1 equals a stored 0.1.
            exact = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
            number = params.add(exact, "numeric")
            return _guarded("number", doc, key, f"{text}::numeric {_SQL_OP[op]} {number}")
        if field.kind == "labels" and op == "=" and isinstance(value, str):
            return f"{doc} @> jsonb_build_object({key}, {params.add(value, 'text')})"
        return _guarded("string", doc, key, _text_compare(text, op, value, params))
    column = _COLUMNS[kind].get(field.kind)
    if column is None or field.key is not None:
        raise ValueError(f"{kind}s have no field {field}")
    sql, sql_type = column
    if field.kind == "card":
        value = _lowered(value)
    if sql_type == "text":
        return _text_compare(sql, op, value, params)
    if sql_type == "bigint":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{field} compares with integers, got {value!r}")
    elif not isinstance(value, datetime):
        raise ValueError(f"{field} compares with timestamps, got {value!r}")
    condition = f"{sql} {_SQL_OP[op]} {params.add(value, sql_type)}"
    if sql in _NULLABLE:
        return f"({sql} IS NOT NULL AND {condition})"
    return condition


# ---------------------------------------------------------------------------- order_by


class RowLike(Protocol):
    """A result row readable by column name (an ``asyncpg.Record``, a ``dict``)."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True)
class SortColumn:
    """One ``ORDER BY`` expression; ``expr`` is never NULL."""

    expr: str
    sql_type: str  # "text", "bigint", "float8", "numeric" or "timestamptz"
    descending: bool


@dataclass(frozen=True)
class OrderSql:
    """The ``ORDER BY`` of a keyset-paginated listing: the requested keys then tie-breakers.

    ``params`` are the values of the parameters the expressions use (metric keys), numbered
    from ``first_param``; pass them once per query, however many of ``order_by()``,
    ``select_list()`` and ``keyset_condition`` it uses.
    """

    columns: tuple[SortColumn, ...]
    params: tuple[Any, ...]
    first_param: int

    @property
    def next_param(self) -> int:
        """The first parameter number after ``params``."""
        return self.first_param + len(self.params)

    def order_by(self) -> str:
        """The ``ORDER BY`` list (without the keywords), e.g. ``v.version DESC, ...``."""
        return ", ".join(f"{c.expr} {'DESC' if c.descending else 'ASC'}" for c in self.columns)

    def select_list(self) -> str:
        """Select-list entries ``<expr> AS sort_key_<i>`` that ``cursor`` reads back."""
        return ", ".join(f"{c.expr} AS {SORT_ALIAS}{i}" for i, c in enumerate(self.columns))

    def cursor(self, row: RowLike) -> list[Any]:
        """The keyset position of ``row`` (selected with ``select_list``) as JSON-safe values.

        Timestamps become ISO 8601 strings (``"infinity"`` / ``"-infinity"`` for the
        sentinels), infinite floats ``"Infinity"`` / ``"-Infinity"``.
        """
        return [
            _encode_cursor_value(row[f"{SORT_ALIAS}{i}"], c.sql_type)
            for i, c in enumerate(self.columns)
        ]


def _sort_expressions(
    field: FieldRef, kind: ResourceKind, descending: bool, params: _Params
) -> list[tuple[str, str]]:
    if field.kind == "params" and kind == "version" and field.key is not None:
        return _param_sort_expressions(params.add(field.key, "text"), descending)
    return [_sort_expression(field, kind, descending, params)]


def _param_sort_expressions(key: str, descending: bool) -> list[tuple[str, str]]:
    """``params.<key>``, whose values are JSON scalars of any type, as three columns that are
    never NULL: the type's rank (numbers, then strings, then booleans; a missing param ranks
    after all of them in the sort's direction), the number (exact, ``numeric``), and the text
    (strings by the database's collation; ``false`` before ``true``)."""
    json_type = f"jsonb_typeof(v.params -> {key})"
    missing = -1 if descending else 3
    rank = (
        f"(CASE {json_type} WHEN 'number' THEN 0 WHEN 'string' THEN 1 WHEN 'boolean' THEN 2 "
        f"ELSE {missing} END)::bigint"
    )
    number = f"(CASE WHEN {json_type} = 'number' THEN (v.params ->> {key})::numeric ELSE 0 END)"
    text = f"(CASE WHEN {json_type} = 'number' THEN '' ELSE COALESCE(v.params ->> {key}, '') END)"
    return [(rank, "bigint"), (number, "numeric"), (text, "text")]


def _sort_expression(
    field: FieldRef, kind: ResourceKind, descending: bool, params: _Params
) -> tuple[str, str]:
    if field.kind == "metrics" and kind == "version" and field.key is not None:
        key = params.add(field.key, "text")
        value = (
            f"CASE WHEN jsonb_typeof(v.metrics -> {key}) = 'number' "
            f"THEN (v.metrics ->> {key})::float8 END"
        )
        missing = "-Infinity" if descending else "Infinity"
        return f"COALESCE({value}, '{missing}'::float8)", "float8"
    sortable = {"model": ("name", "create_time", "update_time")}.get(
        kind, ("name", "version", "create_time", "update_time", "ready_time")
    )
    if field.kind not in sortable or field.key is not None:
        raise ValueError(f"{kind}s cannot be sorted by {field}")
    sql, sql_type = _COLUMNS[kind][field.kind]
    if sql in _NULLABLE:
        missing = "-infinity" if descending else "infinity"
        return f"COALESCE({sql}, '{missing}'::timestamptz)", sql_type
    return sql, sql_type


def order_sql(keys: Sequence[OrderKey], kind: ResourceKind, first_param: int = 1) -> OrderSql:
    """Build the sort columns for ``keys`` (from ``parse_order_by``) plus the tie-breakers.

    The caller substitutes its default order for an empty ``keys`` first; with none, rows
    are in ascending tie-breaker order.

    Raises:
        ValueError: A key ``kind`` cannot be sorted by.
    """
    params = _Params(first_param)
    columns: list[SortColumn] = []
    for key in keys:
        for expr, sql_type in _sort_expressions(key.field, kind, key.descending, params):
            columns.append(SortColumn(expr, sql_type, key.descending))
    tie_direction = keys[-1].descending if keys else False
    present = {c.expr for c in columns}
    for expr, sql_type in _TIE_BREAKERS[kind]:
        if expr not in present:
            columns.append(SortColumn(expr, sql_type, tie_direction))
    return OrderSql(tuple(columns), tuple(params.values), first_param)


def keyset_condition(
    order: OrderSql, cursor: Sequence[Any], first_param: int
) -> tuple[str, list[Any]]:
    """The condition "strictly after ``cursor`` in ``order``", and its parameter values.

    ``cursor`` is what ``order.cursor(row)`` returned for the last row of the previous page
    (typically decoded from a page token). Parameters are numbered from ``first_param``; the
    condition also uses ``order.params``.

    Raises:
        InvalidArgument: ``field="page_token"``, ``reason="PAGE_TOKEN_INVALID"``: the cursor
            does not fit ``order`` (a token from another server version).
    """
    columns = order.columns
    if len(cursor) != len(columns):
        _bad_cursor("it has the wrong number of sort values")
    params = _Params(first_param)
    values = [
        params.add(_decode_cursor_value(value, c.sql_type), c.sql_type)
        for value, c in zip(cursor, columns, strict=True)
    ]
    if len({c.descending for c in columns}) == 1:
        comparison = "<" if columns[0].descending else ">"
        left = ", ".join(c.expr for c in columns)
        right = ", ".join(values)
        return f"(({left}) {comparison} ({right}))", params.values
    # Mixed directions: e1 > $a OR (e1 = $a AND (e2 < $b OR (e2 = $b AND (...)))).
    sql = ""
    for c, value in reversed(list(zip(columns, values, strict=True))):
        strict = f"{c.expr} {'<' if c.descending else '>'} {value}"
        sql = f"({strict} OR ({c.expr} = {value} AND {sql}))" if sql else f"({strict})"
    return sql, params.values


def _bad_cursor(what: str) -> NoReturn:
    raise InvalidArgument(
        "page_token",
        f"page_token does not fit this listing ({what}); start again without a page_token",
        reason="PAGE_TOKEN_INVALID",
    )


def _encode_cursor_value(value: Any, sql_type: str) -> Any:
    if sql_type == "timestamptz":
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime sort value, got {value!r}")
        if value.tzinfo is None:
            # asyncpg decodes timestamptz 'infinity' / '-infinity' as naive max / min.
            if value == datetime.max:
                return "infinity"
            if value == datetime.min:
                return "-infinity"
            raise TypeError(f"expected an aware datetime sort value, got {value!r}")
        return value.isoformat()
    if sql_type == "numeric":
        return str(value)  # exact, whatever its size
    if sql_type == "float8":
        number = float(value)
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return number
    return value


def _decode_cursor_value(value: Any, sql_type: str) -> Any:
    """Check a JSON cursor value and return what to bind for a ``$n::sql_type`` parameter."""
    if sql_type == "text":
        if not isinstance(value, str):
            _bad_cursor("a text sort value is not a string")
        return value
    if sql_type == "bigint":
        if isinstance(value, bool) or not isinstance(value, int):
            _bad_cursor("an integer sort value is not an integer")
        if not _INT64_MIN <= value <= _INT64_MAX:
            _bad_cursor("an integer sort value is out of range")
        return value
    if sql_type == "float8":
        if value in ("Infinity", "-Infinity"):
            return float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            _bad_cursor("a number sort value is not a number")
        number = float(value)
        if math.isnan(number):
            _bad_cursor("a number sort value is not a number")
        return number
    if sql_type == "numeric":
        if not isinstance(value, str) or len(value) > _MAX_NUMERIC_CHARS:
            _bad_cursor("a numeric sort value is not a decimal string")
        try:
            exact = Decimal(value)
        except ArithmeticError:
            _bad_cursor("a numeric sort value is not a decimal string")
        if not exact.is_finite():
            _bad_cursor("a numeric sort value is not finite")
        return exact
    if sql_type == "timestamptz":
        if not isinstance(value, str):
            _bad_cursor("a timestamp sort value is not a string")
        if value in ("infinity", "-infinity"):
            # asyncpg binds the UTC datetime.max / datetime.min as 'infinity' / '-infinity'.
            return _INFINITY if value == "infinity" else _NEGATIVE_INFINITY
        stamp = parse_rfc3339(value)
        if stamp is None:
            _bad_cursor("a timestamp sort value is not a timestamp")
        return stamp
    raise ValueError(f"unknown sort type {sql_type}")

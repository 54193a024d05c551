"""The List queries, assembled from the filter compiler's output and fixed fragments only.

This module and ``filter_sql`` are the only places that build SQL text in Python; every other
query is a named query in ``queries.sql``. A listing is a fixed ``SELECT … FROM`` of one
resource kind, fixed scope conditions, the compiled filter, the keyset condition and the
``ORDER BY`` of ``filter_sql.order_sql``, and a ``LIMIT`` one row larger than the page so the
caller can tell whether another page follows. Every value is a ``$n`` parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelregistry_server.common.kernel.identity import Visibility
from modelregistry_server.metadata.adapters.postgres.filter_sql import (
    OrderSql,
    compile_filter,
    keyset_condition,
    order_sql,
)
from modelregistry_server.metadata.domain.filter import Expr, OrderKey, ResourceKind

_SELECT: dict[ResourceKind, str] = {
    "model": (
        "SELECT m.model_id, m.uid, m.description, m.labels, m.owner, m.create_time, "
        "m.update_time, m.etag, {sort_keys} FROM metadata.models m"
    ),
    "version": (
        "SELECT v.*, ARRAY(SELECT a.alias FROM metadata.aliases a "
        "WHERE a.model_id = v.model_id AND a.version = v.version ORDER BY a.alias) AS aliases, "
        "{sort_keys} FROM metadata.model_versions v"
    ),
}
# Scope conditions of a version listing: $1 the model (NULL: every model), $2 show_deleted.
_VERSION_SCOPE = ("($1::text IS NULL OR v.model_id = $1)", "($2 OR v.state <> 'DELETED')")


@dataclass(frozen=True)
class Listing:
    """A compiled List query: run ``sql`` with ``params``; ``order.cursor(row)`` is a row's
    keyset position; ``limit`` is the page size (the query fetches one row more)."""

    sql: str
    params: list[Any]
    order: OrderSql
    limit: int


def _visible(column: str, visible: Visibility | None, params: list[Any]) -> list[str]:
    """The condition "the caller may see this model" (none when it may see all)."""
    if visible is None or visible.everything:
        return []
    params.append(sorted(visible.names))
    params.append([prefix + "%" for prefix in sorted(visible.prefixes)])
    # Model ids and scope prefixes are [a-z0-9-] only: no LIKE wildcard can hide in a prefix.
    n = len(params)
    return [f"({column} = ANY(${n - 1}::text[]) OR {column} LIKE ANY(${n}::text[]))"]


def _listing(
    kind: ResourceKind,
    scope: Sequence[str],
    params: list[Any],
    filter_expr: Expr | None,
    order: Sequence[OrderKey],
    after: Sequence[Any] | None,
    limit: int,
    visible: Visibility | None = None,
) -> Listing:
    params = list(params)
    where = list(scope) + _visible(
        "m.model_id" if kind == "model" else "v.model_id", visible, params
    )
    if filter_expr is not None:
        sql, filter_params = compile_filter(filter_expr, kind, len(params) + 1)
        where.append(sql)
        params = params + filter_params
    ordering = order_sql(order, kind, len(params) + 1)
    params = params + list(ordering.params)
    if after is not None:
        condition, after_params = keyset_condition(ordering, after, ordering.next_param)
        where.append(condition)
        params = params + after_params
    params.append(limit + 1)
    where_sql = f" WHERE {' AND '.join(where)}" if where else ""
    select = _SELECT[kind].format(sort_keys=ordering.select_list())
    sql = f"{select}{where_sql} ORDER BY {ordering.order_by()} LIMIT ${len(params)}"
    return Listing(sql, params, ordering, limit)


def model_listing(
    filter_expr: Expr | None,
    order: Sequence[OrderKey],
    after: Sequence[Any] | None,
    limit: int,
    visible: Visibility | None = None,
) -> Listing:
    """The ListModels query (only the models ``visible`` allows)."""
    return _listing("model", (), [], filter_expr, order, after, limit, visible)


def version_listing(
    model_id: str | None,
    show_deleted: bool,
    filter_expr: Expr | None,
    order: Sequence[OrderKey],
    after: Sequence[Any] | None,
    limit: int,
    visible: Visibility | None = None,
) -> Listing:
    """The ListModelVersions query, of one model or (``model_id`` None) of all it may see."""
    return _listing(
        "version", _VERSION_SCOPE, [model_id, show_deleted], filter_expr, order, after, limit,
        visible,
    )  # fmt: skip

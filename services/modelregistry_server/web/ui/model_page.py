"""The model page (``/models/{model}``): a model's versions, a metric across versions, and its
alias history.

Everything the page shows comes from the API with the user's credential, in one round of
concurrent calls: the model, its aliases, one page of versions and their checks (one ListChecks
across the page's versions), the latest versions for the chart, the alias moves from the audit
log, the user's permissions. The versions table is paged and sorted by the server
(``page_size`` 50, ``order_by``, ``page_token``), so the page costs the same with 10 versions or
10,000; the chart reads at most the latest 500 versions. Which metric and param columns the
table shows is the user's choice, kept in the address
(``?col=metrics.accuracy&col=params.optimizer``) like everything else a view depends on, so a
view can be shared as a link.

The actions (move an alias, edit the model) are in ``model_actions.py``; they re-render this
page with the server's message when the server refuses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2
from multidict import MultiDict

from modelregistry.metadata.v1 import (
    alias_pb2,
    audit_event_pb2,
    governance_pb2,
    metadata_service_pb2,
    model_version_pb2,
)
from modelregistry_server.web.gateway import CallError
from modelregistry_server.web.ui.page import Page, metric_text, param_text

PAGE_SIZE = 50
CHART_VERSIONS = 500
HISTORY_EVENTS = 12  # the latest alias moves shown; the audit log page has the rest
MAX_COLUMNS = 12
DEFAULT_METRIC_COLUMNS = 4
PERMISSIONS = ("aliases.write", "models.write")
_CHECK_STATUSES = ("PASSED", "FAILED", "PENDING")
NO_COLUMNS = "none"  # ?col=none: the user chose no metric or param columns
# The sortable fields of ListModelVersions that the table offers, besides metrics and params.
_SORTS = ("version", "create_time")
_MAP_KEY = re.compile(r"(metrics|params)\.[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_ALIAS = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
FILTER_EXAMPLES = (
    ("metrics.accuracy >= 0.9", "a metric at least 0.9"),
    ('state = "READY"', "only READY versions"),
    ('params.optimizer = "adam"', "a param's value"),
    ('alias = "production"', "the version an alias points at"),
    ('scan = "UNSAFE"', "versions whose files failed the scan"),
    ('create_time >= "2026-01-01T00:00:00Z" AND labels.team = "risk"', "combined"),
)


@dataclass(frozen=True)
class View:
    """What the address asks the page to show."""

    filter: str
    sort: str  # "version", "create_time", "metrics.<key>" or "params.<key>"
    descending: bool
    page_token: str
    columns: tuple[str, ...] | None  # None: the default columns
    chart: str
    at_alias: str
    at_time: str

    @property
    def order_by(self) -> str:
        """The ``order_by`` of ListModelVersions."""
        return f"{self.sort} {'desc' if self.descending else 'asc'}"

    def links(self) -> MultiDict[str]:
        """The query of this view without the page token and one-off notices (for links)."""
        pairs = [("filter", self.filter), ("sort", self.sort)]
        pairs.append(("dir", "desc" if self.descending else "asc"))
        if self.columns is not None:
            pairs += [("col", c) for c in self.columns] or [("col", NO_COLUMNS)]
        if self.chart:
            pairs.append(("chart", self.chart))
        return MultiDict((k, v) for k, v in pairs if v)


def parse_view(query: Mapping[str, str]) -> View:
    """The view an address asks for; anything malformed falls back to the default."""
    getall = getattr(query, "getall", None)
    raw_columns: list[str] = list(getall("col", [])) if getall else []
    columns = None
    if raw_columns:
        columns = tuple(dict.fromkeys(c for c in raw_columns if _MAP_KEY.fullmatch(c)))
        columns = columns[:MAX_COLUMNS]
    sort = query.get("sort", "version")
    if sort not in _SORTS and not _MAP_KEY.fullmatch(sort):
        sort = "version"
    return View(
        filter=query.get("filter", "").strip(),
        sort=sort,
        descending=query.get("dir", "desc") != "asc",
        page_token=query.get("page", ""),
        columns=columns,
        chart=query.get("chart", "") if _is_key(query.get("chart", "")) else "",
        at_alias=query.get("at_alias", "").strip(),
        at_time=query.get("at_time", "").strip(),
    )


def _is_key(text: str) -> bool:
    return bool(_MAP_KEY.fullmatch(f"metrics.{text}"))


@dataclass(frozen=True)
class Checks:
    """The latest report of each check of a version, counted by status."""

    passed: int = 0
    failed: int = 0
    pending: int = 0
    detail: str = ""


@dataclass(frozen=True)
class Row:
    """One row of the versions table."""

    version: model_version_pb2.ModelVersion
    cells: list[str]  # the chosen columns' values as text
    checks: Checks
    scan: str  # SAFE, UNSAFE, UNSCANNED, ERROR; "" before the scan


@dataclass(frozen=True)
class AliasMove:
    """One alias move from the audit log."""

    alias: str
    before: int | None  # None: the alias was created
    after: int | None  # None: the alias was deleted
    actor: str
    time: timestamp_pb2.Timestamp


@dataclass(frozen=True)
class AsOf:
    """The answer to "what was <alias> on <time>?"."""

    alias: str
    time: str
    version: int | None
    message: str  # why there is no version (the server's words)


@dataclass
class Forms:
    """What the action forms show after a refused POST: the server's message, the values."""

    move_error: str = ""
    edit_error: str = ""
    values: dict[str, str] = field(default_factory=dict)


async def model(request: web.Request) -> web.StreamResponse:
    """Render the model page."""
    page = Page(request)
    return await render_model(page, request.match_info["model"], parse_view(request.query))


async def render_model(
    page: Page, model_id: str, view: View, status: int = 200, forms: Forms | None = None
) -> web.Response:
    """The model page of ``model_id`` as ``view`` asks, with ``forms``' messages."""
    name = f"models/{model_id}"
    found, aliases, listing, recent, (history, older), (allowed, _me) = await asyncio.gather(
        page.call(page.metadata.GetModel, metadata_service_pb2.GetModelRequest(name=name)),
        _aliases(page, name),
        _versions(page, name, view),
        _recent(page, name),
        _history(page, name),
        asyncio.gather(page.allowed(name, *PERMISSIONS), page.me()),
    )
    versions, next_page, error, checks = listing
    metric_keys = sorted({k for v in (*versions, *recent) for k in v.metrics})
    param_keys = sorted({k for v in versions for k in v.params})
    columns = _columns(view, metric_keys)
    chart = view.chart or _default_chart(view, columns, metric_keys)
    as_of = await _as_of(page, model_id, view) if view.at_alias else None
    return page.render(
        "model.html",
        status=status,
        model=found,
        model_id=model_id,
        aliases=aliases,
        rows=[_row(v, c, columns) for v, c in zip(versions, checks, strict=True)],
        first_page=not view.page_token,
        next_page=next_page,
        error=error,
        view=view,
        links=view.links(),
        columns=columns,
        chooser=_chooser(columns, metric_keys, param_keys),
        chart=chart,
        chart_keys=metric_keys,
        chart_data=_chart_data(recent, chart),
        ready=[v.version for v in recent if v.state == model_version_pb2.MODEL_VERSION_STATE_READY],
        history=history,
        older_history=older,
        as_of=as_of,
        allowed=allowed,
        forms=forms or Forms(),
        notice=_notice(page.request.query),
        labels_text="\n".join(f"{k}={v}" for k, v in sorted(found.labels.items())),
        examples=FILTER_EXAMPLES,
    )


async def _aliases(page: Page, name: str) -> list[alias_pb2.Alias]:
    listed = await page.call(
        page.metadata.ListAliases,
        metadata_service_pb2.ListAliasesRequest(parent=name, page_size=100),
    )
    return list(listed.aliases)


async def _versions(
    page: Page, name: str, view: View
) -> tuple[list[model_version_pb2.ModelVersion], str, str, list[Checks]]:
    """One page of versions and their checks; an invalid filter or sort is the server's
    message (shown above the table), not an error page."""
    request = metadata_service_pb2.ListModelVersionsRequest(
        parent=name,
        page_size=PAGE_SIZE,
        page_token=view.page_token,
        filter=view.filter,
        order_by=view.order_by,
    )
    try:
        listed = await page.call(page.metadata.ListModelVersions, request)
    except CallError as exc:
        if exc.status.code != code_pb2.INVALID_ARGUMENT:
            raise
        return [], "", exc.status.message, []
    versions = list(listed.model_versions)
    checks = await _checks(page, name, [v.version for v in versions])
    return versions, listed.next_page_token, "", [checks.get(v.version, Checks()) for v in versions]


async def _checks(page: Page, name: str, numbers: Sequence[int]) -> dict[int, Checks]:
    """The latest check reports of the versions ``numbers``, counted by status, in one call
    (ListChecks across versions)."""
    if not numbers:
        return {}
    listed = await page.call(
        page.metadata.ListChecks,
        governance_pb2.ListChecksRequest(parent=f"{name}/versions/-", versions=numbers),
    )
    by_version: dict[int, list[governance_pb2.Check]] = {}
    for check in listed.checks:
        number = int(check.name.split("/")[3])  # models/{model}/versions/{n}/checks/...
        by_version.setdefault(number, []).append(check)
    return {number: _counted(checks) for number, checks in by_version.items()}


def _counted(checks: Sequence[governance_pb2.Check]) -> Checks:
    counts = dict.fromkeys(_CHECK_STATUSES, 0)
    lines = []
    for check in checks:
        status = governance_pb2.Check.Status.Name(check.status).removeprefix("STATUS_")
        counts[status] = counts.get(status, 0) + 1
        lines.append(f"{check.check_name}: {status.lower()}")
    return Checks(counts["PASSED"], counts["FAILED"], counts["PENDING"], "\n".join(lines))


async def _recent(page: Page, name: str) -> list[model_version_pb2.ModelVersion]:
    """The latest versions by number, oldest first (the chart's points, the move form's
    choices)."""
    listed = await page.call(
        page.metadata.ListModelVersions,
        metadata_service_pb2.ListModelVersionsRequest(
            parent=name, page_size=CHART_VERSIONS, order_by="version desc"
        ),
    )
    return list(reversed(listed.model_versions))


async def _history(page: Page, name: str) -> tuple[list[AliasMove], bool]:
    """The latest alias moves and deletions, newest first, and whether there are older ones."""
    moved, deleted = await asyncio.gather(
        *(
            page.call(
                page.metadata.ListAuditEvents,
                metadata_service_pb2.ListAuditEventsRequest(
                    model=name, method=method, page_size=HISTORY_EVENTS
                ),
            )
            for method in ("SetAlias", "DeleteAlias")
        )
    )
    events = sorted(
        (*moved.audit_events, *deleted.audit_events),
        key=lambda e: (e.event_time.seconds, e.event_time.nanos),
        reverse=True,
    )
    older = bool(moved.next_page_token or deleted.next_page_token) or len(events) > HISTORY_EVENTS
    return [_move(event) for event in events[:HISTORY_EVENTS]], older


def _move(event: audit_event_pb2.AuditEvent) -> AliasMove:
    def number(snapshot: Any) -> int | None:
        version = snapshot.fields.get("version")
        if version is None:
            return None
        tail = version.string_value.rsplit("/", 1)[-1]
        return int(tail) if tail.isdigit() else None

    before = number(event.before) if event.HasField("before") else None
    after = number(event.after) if event.HasField("after") else None
    alias = event.resource.rsplit("/", 1)[-1]
    return AliasMove(alias, before, after, event.actor, event.event_time)


async def _as_of(page: Page, model_id: str, view: View) -> AsOf:
    """Resolve ``<model>@<alias>`` as it was at the asked time (UTC)."""
    try:
        moment = dt.datetime.fromisoformat(view.at_time) if view.at_time else None
    except ValueError:
        return AsOf(view.at_alias, view.at_time, None, "Give a date and time.")
    stamp = timestamp_pb2.Timestamp()
    if moment is not None:
        stamp.FromDatetime(moment.replace(tzinfo=moment.tzinfo or dt.UTC))
    else:
        stamp.GetCurrentTime()
    request = metadata_service_pb2.ResolveModelVersionRequest(
        ref=f"{model_id}@{view.at_alias}", as_of_time=stamp
    )
    try:
        found = await page.call(page.metadata.ResolveModelVersion, request)
    except CallError as exc:
        if exc.status.code == code_pb2.UNAUTHENTICATED:
            raise
        return AsOf(view.at_alias, view.at_time, None, exc.status.message)
    return AsOf(view.at_alias, view.at_time, int(found.version), "")


def _row(version: model_version_pb2.ModelVersion, checks: Checks, columns: Sequence[str]) -> Row:
    cells = []
    for column in columns:
        kind, key = column.split(".", 1)
        if kind == "metrics":
            cells.append(metric_text(version.metrics[key]) if key in version.metrics else "")
        else:
            cells.append(param_text(version.params[key]) if key in version.params else "")
    scan = model_version_pb2.ScanVerdict.Name(version.scan_verdict).removeprefix("SCAN_VERDICT_")
    return Row(version, cells, checks, "" if scan == "UNSPECIFIED" else scan)


def _columns(view: View, metric_keys: Sequence[str]) -> list[str]:
    if view.columns is not None:
        return list(view.columns)
    return [f"metrics.{k}" for k in metric_keys[:DEFAULT_METRIC_COLUMNS]]


def _chooser(
    columns: Sequence[str], metric_keys: Sequence[str], param_keys: Sequence[str]
) -> dict[str, list[str]]:
    """The keys the column chooser lists: those seen on the page, and those chosen."""
    shown = {"metrics": [f"metrics.{k}" for k in metric_keys]}
    shown["params"] = [f"params.{k}" for k in param_keys]
    for column in columns:
        group = shown[column.split(".", 1)[0]]
        if column not in group:
            group.append(column)
    return shown


def _default_chart(view: View, columns: Sequence[str], metric_keys: Sequence[str]) -> str:
    """The sorted-by metric, else the first metric column, else the first metric."""
    for key in (view.sort, *columns):
        if key.startswith("metrics."):
            return key.removeprefix("metrics.")
    return metric_keys[0] if metric_keys else ""


def _chart_data(versions: Sequence[model_version_pb2.ModelVersion], key: str) -> dict[str, Any]:
    points = [(v.version, v.metrics[key]) for v in versions if key in v.metrics]
    return {
        "labels": [f"v{number}" for number, _ in points],
        "datasets": [{"label": key, "data": [value for _, value in points]}],
        "xTitle": "version",
        "yTitle": key,
    }


def _notice(query: Mapping[str, str]) -> str:
    """The one-line notice after a successful action (the redirect's address says which)."""
    alias, version = query.get("moved", ""), query.get("to", "")
    if _ALIAS.fullmatch(alias) and version.isdigit():
        return f"Moved {alias} to v{version}."
    if query.get("edited") == "1":
        return "Saved the model's description and labels."
    return ""


ROUTES = [("GET", "/models/{model}", model)]

"""The audit log page (``/audit``): who did what, when, filtered by model, actor, method and
time range, newest first, paged by the server.

Every filter is a field of ``ListAuditEvents`` and lives in the address, so a filtered view
can be shared. Times in the form are ``datetime-local`` values read as UTC (the page says
so): the registry records UTC, and a browser's own zone would make a shared link mean
different things to different readers. A filter the server refuses (a malformed method, say)
is shown with the server's message above an empty table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2

from modelregistry.metadata.v1 import audit_event_pb2, metadata_service_pb2
from modelregistry_server.web.gateway import CallError
from modelregistry_server.web.ui.page import CONTEXT, Page
from modelregistry_server.web.ui.version_page import Change, changed_fields

PAGE_SIZE = 50
FILTERS = ("model", "actor", "method", "start", "end")
_MAX_FILTER_CHARS = 256


class FilterError(Exception):
    """A filter in the address cannot be sent as it is; the message says why."""


@dataclass(frozen=True)
class AuditRow:
    """One event as the table shows it."""

    event: audit_event_pb2.AuditEvent
    time: str
    resource_href: str
    changed: list[Change]


def resource_href(resource: str) -> str:
    """The page of a model, version (or what hangs under it) or alias; empty for others."""
    parts = resource.split("/")
    if len(parts) < 2 or parts[0] != "models" or not parts[1]:
        return ""
    model = "/models/" + quote(parts[1], safe="")
    if len(parts) >= 4 and parts[2] == "versions" and parts[3].isdigit():
        return f"{model}/versions/{parts[3]}"
    return model


def utc_timestamp(value: str, field: str) -> timestamp_pb2.Timestamp | None:
    """A ``datetime-local`` value (``2026-12-03T09:25``, seconds optional) read as UTC.

    Raises:
        FilterError: The value is not a date and time.
    """
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{field}: {value[:40]!r} is not a date and time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment.astimezone(dt.UTC))
    return stamp


def audit_request(
    filters: Mapping[str, str], page_token: str
) -> metadata_service_pb2.ListAuditEventsRequest:
    """The ``ListAuditEvents`` call of the filters in the address.

    Raises:
        FilterError: A time is malformed or the range is empty.
    """
    request = metadata_service_pb2.ListAuditEventsRequest(
        page_size=PAGE_SIZE,
        page_token=page_token,
        actor=filters["actor"],
        method=filters["method"],
    )
    if filters["model"]:
        request.model = "models/" + filters["model"]
    start = utc_timestamp(filters["start"], "From")
    end = utc_timestamp(filters["end"], "To")
    if start is not None:
        request.start_time.CopyFrom(start)
    if end is not None:
        request.end_time.CopyFrom(end)
    if start is not None and end is not None and end.ToDatetime() <= start.ToDatetime():
        raise FilterError("To must be later than From.")
    return request


def read_filters(query: Mapping[str, str]) -> dict[str, str]:
    """The filters in the address, trimmed (a model may be given as ``models/x``)."""
    filters = {key: query.get(key, "").strip()[:_MAX_FILTER_CHARS] for key in FILTERS}
    filters["model"] = filters["model"].removeprefix("models/")
    return filters


def method_names(page: Page) -> list[str]:
    """Every method of the services this server serves (suggestions for the method filter)."""
    services = page.request.app[CONTEXT].services
    return sorted({method.name for service in services for method in service.methods})


def _row(event: audit_event_pb2.AuditEvent) -> AuditRow:
    moment = event.event_time.ToDatetime(tzinfo=dt.UTC)
    return AuditRow(
        event,
        moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
        resource_href(event.resource),
        changed_fields(event),
    )


async def audit(request: web.Request) -> web.StreamResponse:
    """Render one page of the audit log."""
    page = Page(request)
    await page.me()
    filters = read_filters(request.query)
    error, status = "", 200
    listed = metadata_service_pb2.ListAuditEventsResponse()
    try:
        call = audit_request(filters, request.query.get("page", ""))
        listed = await page.call(page.metadata.ListAuditEvents, call)
    except FilterError as exc:
        error, status = str(exc), 400
    except CallError as exc:
        if exc.status.code not in (code_pb2.INVALID_ARGUMENT, code_pb2.PERMISSION_DENIED):
            raise
        # A bad filter, a stale page token, a model out of reach: shown above the form.
        error, status = exc.status.message, exc.http_status
    return page.render(
        "audit.html",
        status=status,
        rows=[_row(event) for event in listed.audit_events],
        filters=filters,
        filtered=any(filters.values()),
        error=error,
        next_page=listed.next_page_token,
        first_page=bool(request.query.get("page")),
        methods=method_names(page),
        query_args={key: value for key, value in filters.items() if value},
    )


ROUTES = [("GET", "/audit", audit)]

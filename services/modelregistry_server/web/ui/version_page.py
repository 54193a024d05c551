"""The version page (``/models/{model}/versions/{version}``): everything about one version.

Files (with download links to the file URLs), params, metrics, lineage, framework and
signature, the model card (Markdown, sanitised by ``markdown.py``), checks and approvals, the
scan's findings per file, and the audit trail of this version. It comes from one round of
concurrent calls with the user's credential; the actions a user's role allows (approve the
version for an alias, edit its labels and description) are forms handled by
``version_actions.py``, which re-renders this page with the server's message when the server
refuses.

The audit trail reads the model's latest :data:`AUDIT_SCAN` events (one bounded call) and
keeps those about this version: its own resource and what hangs under it (checks,
approvals), and events whose snapshots name it (an alias moved to or away from it). Older
history is one link away on the audit log page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlparse

from aiohttp import web
from google.protobuf import json_format
from google.rpc import code_pb2

from modelregistry.metadata.v1 import (
    alias_pb2,
    audit_event_pb2,
    governance_pb2,
    metadata_service_pb2,
    model_version_pb2,
)
from modelregistry_server.web.gateway import CallError
from modelregistry_server.web.ui.markdown import render_card
from modelregistry_server.web.ui.page import Page

AUDIT_SCAN = 500
# ?done=… after an action's redirect: what the page confirms.
DONE = {"approved": "Approval recorded.", "edited": "Labels and description saved."}
PERMISSIONS = ("versions.approve", "models.write")
VERDICTS = {
    model_version_pb2.SCAN_VERDICT_SAFE: "safe",
    model_version_pb2.SCAN_VERDICT_UNSAFE: "unsafe",
    model_version_pb2.SCAN_VERDICT_UNSCANNED: "unscanned",
    model_version_pb2.SCAN_VERDICT_ERROR: "error",
}
_CHECK_STATUS = {
    governance_pb2.Check.STATUS_PENDING: "pending",
    governance_pb2.Check.STATUS_PASSED: "passed",
    governance_pb2.Check.STATUS_FAILED: "failed",
}


@dataclass(frozen=True)
class FileRow:
    """One file of the manifest, with its download address and scan result."""

    file: model_version_pb2.ManifestFile
    url: str
    verdict: str
    scanner: str
    findings: list[str]


@dataclass(frozen=True)
class Link:
    """Text, and the address it may link to (empty: shown as text only)."""

    text: str
    href: str = ""


@dataclass
class Forms:
    """What the action forms show: an error from the server, and the values last sent."""

    approve_error: str = ""
    edit_error: str = ""
    alias: str = ""
    comment: str = ""
    labels: str | None = None
    description: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class TrailEvent:
    """An audit event of the version, with the fields it changed."""

    event: audit_event_pb2.AuditEvent
    changed: list[Change]


def version_name(model: str, number: str) -> str:
    """``models/{model}/versions/{number}``."""
    return f"models/{model}/versions/{number}"


def file_url(model: str, number: int, path: str) -> str:
    """The file URL that streams ``path`` of a version."""
    return f"/v1/models/{quote(model, safe='')}/versions/{number}/files/{quote(path, safe='/')}"


def web_link(url: str) -> Link:
    """``url`` as a link when it is an http(s) address, else as text."""
    text = url.strip()
    try:
        scheme = urlparse(text).scheme.lower()
    except ValueError:
        scheme = ""
    return Link(url, text if scheme in ("http", "https") and "//" in text else "")


def version_link(name: str) -> Link:
    """A version's resource name as a link to its page (others as text)."""
    parts = name.split("/")
    if len(parts) == 4 and parts[0] == "models" and parts[2] == "versions":
        return Link(f"{parts[1]} v{parts[3]}", f"/models/{quote(parts[1])}/versions/{parts[3]}")
    return Link(name)


def labels_text(labels: Mapping[str, str]) -> str:
    """Labels as the edit form shows them: ``key=value``, one a line, by key."""
    return "\n".join(f"{key}={value}" for key, value in sorted(labels.items()))


def mentions(snapshot: Any, name: str) -> bool:
    """Whether a JSON snapshot (dicts, lists, strings) names ``name`` or something under it."""
    if isinstance(snapshot, str):
        return snapshot == name or snapshot.startswith(name + "/")
    if isinstance(snapshot, Mapping):
        return any(mentions(value, name) for value in snapshot.values())
    if isinstance(snapshot, list):
        return any(mentions(value, name) for value in snapshot)
    return False


def about_version(event: audit_event_pb2.AuditEvent, name: str) -> bool:
    """Whether an audit event concerns the version ``name``."""
    if event.resource == name or event.resource.startswith(name + "/"):
        return True
    for side in ("before", "after"):
        if event.HasField(side) and mentions(json_format.MessageToDict(getattr(event, side)), name):
            return True
    return False


def file_rows(model: str, version: model_version_pb2.ModelVersion) -> list[FileRow]:
    """The manifest by path, each file with its download URL and scan result."""
    scans = {scan.path: scan for scan in version.file_scans}
    rows = []
    for item in sorted(version.files, key=lambda f: f.path):
        scan = scans.get(item.path)
        rows.append(
            FileRow(
                item,
                file_url(model, version.version, item.path),
                VERDICTS.get(scan.verdict, "") if scan else "",
                scan.scanner if scan else "",
                list(scan.findings) if scan else [],
            )
        )
    return rows


def lineage_view(lineage: model_version_pb2.Lineage) -> dict[str, Any]:
    """The lineage with each address as a link only when it is http(s)."""
    recorded = bool(
        lineage.HasField("source")
        or lineage.datasets
        or lineage.parent_versions
        or lineage.training_run_id
        or lineage.training_run_url
    )
    return {
        "recorded": recorded,
        "repo": web_link(lineage.source.repo_url) if lineage.source.repo_url else None,
        "commit": lineage.source.commit,
        "dirty": lineage.source.dirty,
        "has_source": lineage.HasField("source"),
        "datasets": [(web_link(d.uri), d.digest) for d in lineage.datasets],
        "parents": [version_link(p) for p in lineage.parent_versions],
        "run_id": lineage.training_run_id,
        "run": web_link(lineage.training_run_url) if lineage.training_run_url else None,
    }


async def version(request: web.Request) -> web.StreamResponse:
    """Render the version page."""
    model, number = request.match_info["model"], request.match_info["version"]
    return await render_version(Page(request), model, number, Forms())


async def render_version(
    page: Page, model: str, number: str, forms: Forms, status: int = 200
) -> web.StreamResponse:
    """The page of ``models/{model}/versions/{number}``, with ``forms``' messages and values."""
    name = version_name(model, number)
    get = metadata_service_pb2.GetModelVersionRequest(name=name)
    found, (checks, approvals), trail, aliases, allowed, _me = await asyncio.gather(
        page.call(page.metadata.GetModelVersion, get),
        _governance(page, name),
        _trail(page, model, name),
        _aliases(page, model),
        page.allowed(f"models/{model}", *PERMISSIONS),
        page.me(),
    )
    if forms.labels is None:
        forms.labels = labels_text(found.labels)
    if forms.description is None:
        forms.description = found.description
    if forms.etag is None:
        forms.etag = found.etag
    return page.render(
        "version.html",
        status=status,
        model_id=model,
        v=found,
        files=file_rows(model, found),
        params=sorted(found.params.items()),
        metrics=sorted(found.metrics.items()),
        lineage=lineage_view(found.lineage),
        card=render_card(found.description) if found.description.strip() else "",
        verdict=VERDICTS.get(found.scan_verdict, ""),
        checks=[(c, _CHECK_STATUS.get(c.status, "unspecified"), web_link(c.details_url))
                for c in checks],
        approvals=approvals,
        trail=trail,
        trail_scanned=AUDIT_SCAN,
        alias_names=sorted(a.name.rsplit("/", 1)[-1] for a in aliases),
        can_approve="versions.approve" in allowed,
        can_edit="models.write" in allowed,
        forms=forms,
        done=DONE.get(page.request.query.get("done", ""), ""),
        action_base=f"/models/{quote(model)}/versions/{found.version}",
    )  # fmt: skip


async def _governance(
    page: Page, name: str
) -> tuple[list[governance_pb2.Check], list[governance_pb2.Approval]]:
    """The version's checks (the latest report per name) and approvals in force."""
    checks, approvals = await asyncio.gather(
        page.call(page.metadata.ListChecks, governance_pb2.ListChecksRequest(parent=name)),
        page.call(page.metadata.ListApprovals, governance_pb2.ListApprovalsRequest(parent=name)),
    )
    return list(checks.checks), list(approvals.approvals)


async def _aliases(page: Page, model: str) -> list[alias_pb2.Alias]:
    listed = await page.call(
        page.metadata.ListAliases,
        metadata_service_pb2.ListAliasesRequest(parent=f"models/{model}", page_size=100),
    )
    return list(listed.aliases)


async def _trail(page: Page, model: str, name: str) -> list[TrailEvent]:
    """This version's events among the model's latest :data:`AUDIT_SCAN` (newest first)."""
    try:
        listed = await page.call(
            page.metadata.ListAuditEvents,
            metadata_service_pb2.ListAuditEventsRequest(
                model=f"models/{model}", page_size=AUDIT_SCAN
            ),
        )
    except CallError as exc:
        if exc.status.code != code_pb2.PERMISSION_DENIED:
            raise
        return []
    return [
        TrailEvent(event, changed_fields(event))
        for event in listed.audit_events
        if about_version(event, name)
    ]


@dataclass(frozen=True)
class Change:
    """A top-level field an event changed; ``before``/``after`` are short texts, or empty when
    the value is too long to show in a line."""

    field: str
    before: str
    after: str


_SHORT_CHARS = 48
_IGNORED = frozenset({"update_time", "etag", "ready_time"})


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON numbers arrive as floats: 2, not 2.0
    if not isinstance(value, str | int | float) or value == "":
        return ""
    text = str(value)
    parts = text.split("/")
    if len(parts) == 4 and parts[0] == "models" and parts[2] == "versions":
        return f"v{parts[3]}"
    return text if len(text) <= _SHORT_CHARS else ""


def changed_fields(event: audit_event_pb2.AuditEvent) -> list[Change]:
    """The top-level fields an event changed (for the audit trail's summary); none when it
    created or removed the resource (everything would count)."""
    if not (event.HasField("before") and event.HasField("after")):
        return []
    before = json_format.MessageToDict(event.before)
    after = json_format.MessageToDict(event.after)
    keys: Iterable[str] = sorted(set(before) | set(after))
    return [
        Change(key, _short(before.get(key)), _short(after.get(key)))
        for key in keys
        if key not in _IGNORED and _value(before.get(key)) != _value(after.get(key))
    ]


def _value(value: Any) -> Any:
    """A snapshot's value, with an empty one the same as none (snapshots leave some out)."""
    return None if value in ("", [], {}) else value


ROUTES = [("GET", "/models/{model}/versions/{version}", version)]

"""Pure helpers of the CLI's output: tables, sizes, times and JSON-ready dictionaries.

Flag values are parsed in ``_values``. Nothing here does I/O, so all of it is unit-tested
directly.

Text from the registry (names, labels, descriptions, paths, principals, error sentences) is
printed through :func:`printable`: a hostile server, or a label someone stored with ``ESC [2J``
in it, must not drive the terminal. :func:`table` and :func:`key_values` escape every cell and
value; the commands' output funnels escape what is left (see ``_commands._emit``); JSON goes
through :func:`json_text`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, timestamp_pb2

from modelregistry._convert import params_from_proto
from modelregistry.cache import CacheUsage, PruneResult, SnapshotInfo
from modelregistry.metadata.v1 import (
    alias_pb2,
    audit_event_pb2,
    model_pb2,
    model_version_pb2,
)

_STATE_PREFIX = "MODEL_VERSION_STATE_"


# ------------------------------------------------------------------------- terminal safety

# C0 controls, DEL and C1 controls: ESC, CR, BEL, backspace, and U+009B, the one-character CSI.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED_ESCAPES = {"\n": r"\n", "\r": r"\r", "\t": r"\t"}
# What json.dumps leaves raw although it is a control (it escapes only U+0000-U+001F).
_JSON_RAW_CONTROLS = re.compile(r"[\x7f-\x9f]")


def printable(text: str, keep: str = "") -> str:
    r"""``text`` with every control character shown as a visible escape, safe for a terminal.

    C0 controls, DEL and C1 controls become ``\n``, ``\r``, ``\t`` or ``\xHH``: a label holding
    ESC ``[2J`` is printed as the seven characters ``\x1b[2J``, the 8-bit CSI as ``\x9b``. The
    characters in ``keep`` stay raw, e.g. ``"\n\t"`` where a line break is the formatting
    itself (a model card's body). Everything else, backslashes included, is left as it is.
    """

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if char in keep:
            return char
        return _NAMED_ESCAPES.get(char) or f"\\x{ord(char):02x}"

    return _CONTROLS.sub(escape, text)


def json_text(value: object) -> str:
    r"""``value`` as indented JSON whose text holds no raw control character.

    ``json.dumps`` escapes U+0000-U+001F itself; DEL and the C1 controls (U+009B is a CSI to
    many terminals) are written here as ``\u007f`` to ``\u009f``, which decode to the same
    characters, so the JSON still means exactly what the registry sent.
    """
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _JSON_RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# ---------------------------------------------------------------------------- human rendering

_IEC = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(nbytes: float) -> str:
    """``1536`` → ``"1.5 KiB"``; bytes below 1 KiB are exact (``"512 B"``)."""
    value = float(nbytes)
    if abs(value) < 1024:
        return f"{int(value)} B"
    for unit in _IEC[1:]:
        value /= 1024
        if abs(value) < 1024 or unit == _IEC[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def human_rate(bytes_per_second: float) -> str:
    """Decimal megabytes per second, as network people count: ``"50.0 MB/s"``."""
    return f"{bytes_per_second / 1e6:.1f} MB/s"


def human_duration(seconds: float) -> str:
    """``"4.2 s"`` under a minute, then ``"3m05s"``, then ``"1h02m"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{(whole % 3600) // 60:02d}m"


def timestamp_to_datetime(ts: timestamp_pb2.Timestamp) -> datetime | None:
    """An aware UTC datetime, or None for an unset timestamp."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def local_time(ts: timestamp_pb2.Timestamp | datetime | None) -> str:
    """Local ISO time to the second (``2025-01-31T13:04:05+01:00``); ``"-"`` when unset."""
    moment = ts if isinstance(ts, datetime) or ts is None else timestamp_to_datetime(ts)
    if moment is None:
        return "-"
    return moment.astimezone().isoformat(timespec="seconds")


def iso_utc(ts: timestamp_pb2.Timestamp | datetime) -> str | None:
    """UTC RFC 3339 (``2025-01-31T12:04:05.123456Z``) for JSON; None when unset."""
    moment = ts if isinstance(ts, datetime) else timestamp_to_datetime(ts)
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """An aligned plain-text table; the last column is not padded (no trailing spaces).

    Every cell is :func:`printable`: a control character in a value is shown escaped, and a
    line break in one cannot start a row of its own.
    """
    cells = [[printable(str(h)) for h in headers]] + [
        ["" if c is None else printable(str(c)) for c in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def key_values(pairs: Sequence[tuple[str, str]], indent: str = "") -> str:
    """``key:  value`` lines with the values aligned; keys and values are :func:`printable`."""
    if not pairs:
        return ""
    safe = [(printable(key), printable(value)) for key, value in pairs]
    width = max(len(key) for key, _ in safe) + 1
    return "\n".join(f"{indent}{(key + ':').ljust(width)}  {value}" for key, value in safe)


def truncate(text: str, width: int) -> str:
    """First line of ``text``, cut to ``width`` characters with an ellipsis."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def format_scalar(value: object) -> str:
    """A param or metric value as a user would type it (``true``, ``0.01``, ``adam``)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e16 else f"{value:g}"
    return str(value)


def format_mapping(values: Mapping[str, object]) -> str:
    """``a=1, b=x`` sorted by key; ``-`` when empty."""
    if not values:
        return "-"
    return ", ".join(f"{k}={format_scalar(v)}" for k, v in sorted(values.items()))


def state_name(state: int) -> str:
    """``MODEL_VERSION_STATE_READY`` → ``READY``."""
    enum = model_version_pb2.ModelVersionState
    if state not in enum.values():
        return f"UNKNOWN({state})"
    name: str = enum.Name(enum.ValueType(state))
    return name.removeprefix(_STATE_PREFIX)


def version_ref(version: model_version_pb2.ModelVersion) -> str:
    """``models/m/versions/3`` → ``m:3``, the short reference users type."""
    return f"{model_of(version.name)}:{version.version}"


def model_of(resource: str) -> str:
    """The model id in ``models/{model}[/...]`` (or the text itself if it is not a name)."""
    parts = resource.split("/")
    if len(parts) >= 2 and parts[0] == "models":
        return parts[1]
    return resource


def lineage_text(lineage: model_version_pb2.Lineage) -> list[tuple[str, str]]:
    """Human lines describing the lineage, empty when nothing was recorded."""
    rows: list[tuple[str, str]] = []
    source = lineage.source
    if source.repo_url or source.commit:
        text = source.repo_url or "?"
        if source.commit:
            text += f" @ {source.commit[:12]}"
        if source.dirty:
            text += " (dirty)"
        rows.append(("source", text))
    for dataset in lineage.datasets:
        rows.append(("dataset", f"{dataset.uri} {dataset.digest}".strip()))
    if lineage.parent_versions:
        rows.append(("parents", ", ".join(lineage.parent_versions)))
    if lineage.training_run_id or lineage.training_run_url:
        rows.append(("training run", " ".join(
            x for x in (lineage.training_run_id, lineage.training_run_url) if x
        )))  # fmt: skip
    return rows


def render_version(version: model_version_pb2.ModelVersion) -> str:
    """The ``show`` page of one version."""
    params = params_from_proto(version.params)
    created = local_time(version.create_time)
    if version.created_by:
        created += f" by {version.created_by}"
    head: list[tuple[str, str]] = [
        ("version", version_ref(version)),
        ("state", state_name(version.state)),
        ("scan", scan_name(version)),
        ("uid", version.uid or "-"),
        ("created", created),
        ("ready", local_time(version.ready_time)),
        ("size", f"{human_size(version.total_size_bytes)} in {len(version.files)} files"),
        ("aliases", ", ".join(sorted(version.aliases)) or "-"),
        ("labels", format_mapping(dict(version.labels))),
        ("params", format_mapping(params)),
        ("metrics", format_mapping(dict(version.metrics))),
    ]
    if version.framework or version.format:
        head.append(("format", " / ".join(x for x in (version.framework, version.format) if x)))
    lineage = lineage_text(version.lineage)
    out = [key_values(head)]
    if lineage:
        out.append("lineage:\n" + key_values(lineage, indent="  "))
    else:
        out.append("lineage:  -")
    if version.description.strip():
        # Markdown: its line breaks and tabs are the formatting; any other control is escaped
        # (a CR too, which splitlines() would have taken for a line break).
        lines = version.description.strip().split("\n")
        body = "\n".join("  " + printable(line, keep="\t") for line in lines)
        out.append("description:\n" + body)
    if version.files:
        rows = [(f.path, human_size(f.size_bytes), f.sha256[:12]) for f in version.files]
        files = table(("PATH", "SIZE", "SHA256"), rows)
        out.append("files:\n" + "\n".join("  " + line for line in files.splitlines()))
    return "\n".join(out)


def render_models(models: Sequence[model_pb2.Model]) -> str:
    """The ``ls`` table."""
    rows = [
        (
            model_of(m.name),
            m.owner or "-",
            local_time(m.update_time),
            format_mapping(dict(m.labels)) if m.labels else "",
            truncate(m.description, 50),
        )
        for m in models
    ]
    return table(("NAME", "OWNER", "UPDATED", "LABELS", "DESCRIPTION"), rows)


def render_versions(versions: Sequence[model_version_pb2.ModelVersion]) -> str:
    """The ``versions`` table."""
    rows = [
        (
            v.version,
            state_name(v.state),
            human_size(v.total_size_bytes),
            local_time(v.create_time),
            v.created_by or "-",
            ", ".join(sorted(v.aliases)),
        )
        for v in versions
    ]
    return table(("VERSION", "STATE", "SIZE", "CREATED", "BY", "ALIASES"), rows)


def render_aliases(aliases: Sequence[alias_pb2.Alias]) -> str:
    """The ``alias ls`` table."""
    rows = [
        (
            a.name.rsplit("/", 1)[-1],
            a.version.rsplit("/", 1)[-1],
            local_time(a.update_time),
            a.updated_by or "-",
        )
        for a in sorted(aliases, key=lambda a: a.name)
    ]
    return table(("ALIAS", "VERSION", "UPDATED", "BY"), rows)


def render_audit(events: Sequence[audit_event_pb2.AuditEvent]) -> str:
    """The ``log`` table."""
    rows = [(local_time(e.event_time), e.actor, _audit_method(e), e.resource) for e in events]
    return table(("TIME", "ACTOR", "METHOD", "RESOURCE"), rows)


def _audit_method(event: audit_event_pb2.AuditEvent) -> str:
    """The method, and for a refused call what it lacked: ``DeleteModel (denied: …)``."""
    if event.denied_permission:
        return f"{event.method} (denied: {event.denied_permission})"
    return event.method


def render_snapshots(snapshots: Sequence[SnapshotInfo]) -> str:
    """The ``cache ls`` table."""
    rows = [
        (s.model, s.version, s.files, human_size(s.bytes), local_time(s.last_used))
        for s in snapshots
    ]
    return table(("MODEL", "VERSION", "FILES", "SIZE", "LAST USED"), rows)


def plural(count: int, noun: str) -> str:
    """``1 file``, ``0 files``, ``3 files``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def usage_line(usage: CacheUsage) -> str:
    """The total under ``cache ls``: disk use counts a file shared by versions once."""
    line = (
        f"total: {plural(usage.snapshots, 'snapshot')}, {human_size(usage.blob_bytes)} "
        f"in {plural(usage.blobs, 'file')}"
    )
    if usage.incomplete:
        line += (
            f", plus {human_size(usage.incomplete_bytes)} in "
            f"{plural(usage.incomplete, 'unfinished download')}"
        )
    return line


def prune_line(result: PruneResult) -> str:
    """What ``cache prune`` freed (or would free)."""
    verb = "would free" if result.dry_run else "freed"
    return (
        f"{verb} {human_size(result.bytes_freed)}: "
        f"{plural(result.blobs, 'unused file')} ({human_size(result.blob_bytes)}), "
        f"{plural(result.incomplete, 'unfinished download')} "
        f"({human_size(result.incomplete_bytes)}), {plural(result.locks, 'lock file')}, "
        f"{plural(result.refs, 'ref record')}"
    )


# ----------------------------------------------------------------------------------- JSON


def scan_name(version: model_version_pb2.ModelVersion) -> str:
    """The file scan's verdict (``SAFE``, ``UNSAFE``, ...), or ``-`` before it is stored."""
    if not version.scan_verdict:
        return "-"
    name = model_version_pb2.ScanVerdict.Name(version.scan_verdict).removeprefix("SCAN_VERDICT_")
    findings = sum(len(f.findings) for f in version.file_scans)
    return f"{name} ({findings} findings)" if findings else name


def version_dict(version: model_version_pb2.ModelVersion) -> dict[str, Any]:
    """A version as plain JSON types: typed params, RFC 3339 UTC times, sizes as ints."""
    return {
        "name": version.name,
        "model": model_of(version.name),
        "version": version.version,
        "ref": version_ref(version),
        "uid": version.uid,
        "state": state_name(version.state),
        "scan": scan_name(version),
        "description": version.description,
        "labels": dict(version.labels),
        "params": params_from_proto(version.params),
        "metrics": dict(version.metrics),
        "lineage": json_format.MessageToDict(
            version.lineage,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        ),
        "framework": version.framework,
        "format": version.format,
        "files": [
            {
                "path": f.path,
                "sha256": f.sha256,
                "size_bytes": f.size_bytes,
                "media_type": f.media_type,
            }
            for f in version.files
        ],
        "aliases": sorted(version.aliases),
        "created_by": version.created_by,
        "create_time": iso_utc(version.create_time),
        "update_time": iso_utc(version.update_time),
        "ready_time": iso_utc(version.ready_time),
        "total_size_bytes": version.total_size_bytes,
        "etag": version.etag,
    }


def model_dict(model: model_pb2.Model) -> dict[str, Any]:
    """A model as plain JSON types."""
    return {
        "name": model.name,
        "id": model_of(model.name),
        "uid": model.uid,
        "description": model.description,
        "labels": dict(model.labels),
        "owner": model.owner,
        "create_time": iso_utc(model.create_time),
        "update_time": iso_utc(model.update_time),
        "etag": model.etag,
    }


def alias_dict(alias: alias_pb2.Alias) -> dict[str, Any]:
    """An alias as plain JSON types (``version`` is the version number)."""
    number = alias.version.rsplit("/", 1)[-1]
    return {
        "alias": alias.name.rsplit("/", 1)[-1],
        "name": alias.name,
        "version": int(number) if number.isdigit() else number,
        "version_name": alias.version,
        "update_time": iso_utc(alias.update_time),
        "updated_by": alias.updated_by,
    }


def audit_dict(event: audit_event_pb2.AuditEvent) -> dict[str, Any]:
    """An audit event as plain JSON types."""
    return {
        "name": event.name,
        "event_time": iso_utc(event.event_time),
        "actor": event.actor,
        "method": event.method,
        "resource": event.resource,
        "before": json_format.MessageToDict(event.before) if event.HasField("before") else None,
        "after": json_format.MessageToDict(event.after) if event.HasField("after") else None,
        "request_id": event.request_id,
        "trace_id": event.trace_id,
        "denied_permission": event.denied_permission or None,
    }


def snapshot_dict(snapshot: SnapshotInfo) -> dict[str, Any]:
    """A cached snapshot as plain JSON types (``last_used`` in RFC 3339 UTC)."""
    return {
        "model": snapshot.model,
        "version": snapshot.version,
        "ref": snapshot.ref,
        "path": str(snapshot.path.absolute()),
        "files": snapshot.files,
        "bytes": snapshot.bytes,
        "last_used": iso_utc(snapshot.last_used),
    }


def usage_dict(usage: CacheUsage) -> dict[str, Any]:
    """Cache totals as plain JSON types."""
    return {
        "snapshots": usage.snapshots,
        "blobs": usage.blobs,
        "blob_bytes": usage.blob_bytes,
        "incomplete": usage.incomplete,
        "incomplete_bytes": usage.incomplete_bytes,
        "upload_records": usage.upload_records,
    }


def prune_dict(result: PruneResult) -> dict[str, Any]:
    """A prune result as plain JSON types."""
    return {
        "dry_run": result.dry_run,
        "busy": result.busy,
        "bytes_freed": result.bytes_freed,
        "blobs": result.blobs,
        "blob_bytes": result.blob_bytes,
        "incomplete": result.incomplete,
        "incomplete_bytes": result.incomplete_bytes,
        "locks": result.locks,
        "refs": result.refs,
        "deleted_blobs": list(result.deleted_blobs),
    }

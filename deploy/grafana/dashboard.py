"""Generates deploy/grafana/modelregistry-dashboard.json, the registry's Grafana dashboard.

Run ``python deploy/grafana/dashboard.py`` (or ``make dashboard``) after changing a panel here;
``--check`` exits 1 if the JSON file is not what this script makes (the tests run it). The
panels use only the metrics listed in deploy/docs/metrics.md, and tests/e2e/test_metrics.py
checks every metric name in every query against what a running server exports.

The dashboard takes its Prometheus data source and the scraped jobs and instances as
variables, so it imports unchanged into any Grafana (10 or later) that scrapes the registry.
Standard library only: nothing in deploy/ is imported by the server.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("modelregistry-dashboard.json")
UID = "modelregistry-overview"
SEL = 'job=~"$job", instance=~"$instance"'
DS = {"type": "prometheus", "uid": "${datasource}"}
# Statuses that mean the server failed the call (not the caller): UNKNOWN, DEADLINE_EXCEEDED
# is left out (watches end with it by design), INTERNAL, UNAVAILABLE, DATA_LOSS.
SERVER_ERRORS = "2|13|14|15"
Panel = dict[str, Any]


def _rpc(sel: str = "") -> str:
    return "{" + SEL + (", " + sel if sel else "") + "}"


def timeseries(title: str, unit: str, description: str, *targets: tuple[str, str]) -> Panel:
    """A time series panel of PromQL ``targets`` (expression, legend)."""
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10}},
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def stat(title: str, unit: str, description: str, expr: str) -> Panel:
    """A single-number panel."""
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        "targets": [{"refId": "A", "datasource": DS, "expr": expr, "legendFormat": title}],
    }


def row(title: str) -> Panel:
    """A row header."""
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def _quantile(q: float, by: str, sel: str = "") -> str:
    return (
        f"histogram_quantile({q}, sum by (le, {by}) "
        f"(rate(rpc_server_duration_milliseconds_bucket{_rpc(sel)}[$__rate_interval])))"
    )


def _sel(metric: str) -> str:
    """``metric`` on the chosen jobs and instances."""
    return metric + "{" + SEL + "}"


def _rate(metric: str, by: str = "") -> str:
    """Per-second rate of a counter, summed (``by`` labels kept)."""
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({metric}[$__rate_interval]))"


def _hourly(metric: str) -> str:
    """Increase of a counter over the hour before each point, summed."""
    return f"sum(increase({_sel(metric)}[1h]))"


def panels() -> list[Panel]:
    """Every panel, top to bottom."""
    count = "rpc_server_duration_milliseconds_count"
    calls = count + _rpc()
    failed = count + _rpc(f'rpc_grpc_status_code=~"{SERVER_ERRORS}"')
    not_ok = count + _rpc('rpc_grpc_status_code!="0"')
    unauthenticated = count + _rpc('rpc_grpc_status_code="16"')
    lookups = "modelregistry_resolve_cache_requests_total"
    hits = lookups + "{" + SEL + ', result="hit"}'
    waits = _sel("db_client_connection_wait_time_seconds_bucket")
    return [
        row("Overview"),
        stat("Calls per second", "reqps", "gRPC calls served (health checks excluded).",
             _rate(calls)),
        stat("Server errors", "percentunit",
             "Share of calls that ended UNKNOWN, INTERNAL, UNAVAILABLE or DATA_LOSS.",
             f"{_rate(failed)} / clamp_min({_rate(calls)}, 1e-9)"),
        stat("Resolve p99", "ms", "99th percentile of ResolveModelVersion, all replicas.",
             _quantile(0.99, "rpc_method", 'rpc_method="ResolveModelVersion"')),
        stat("Open streams", "short", "Uploads, downloads and watches open now.",
             f"sum({_sel('rpc_server_active_streams')})"),
        row("Calls"),
        timeseries("Calls per second by method", "reqps", "Every gRPC method, all statuses.",
                   (_rate(calls, "rpc_method"), "{{rpc_method}}")),
        timeseries("Failed calls by method and status", "reqps",
                   "Calls that did not end OK, by gRPC status code (5 NOT_FOUND, 7 "
                   "PERMISSION_DENIED, 8 RESOURCE_EXHAUSTED, 13 INTERNAL, 14 UNAVAILABLE, "
                   "16 UNAUTHENTICATED).",
                   (_rate(not_ok, "rpc_method, rpc_grpc_status_code"),
                    "{{rpc_method}} {{rpc_grpc_status_code}}")),
        timeseries("Latency p50 by method", "ms", "Median call duration (streams: whole stream).",
                   (_quantile(0.5, "rpc_method"), "{{rpc_method}}")),
        timeseries("Latency p99 by method", "ms", "99th percentile call duration.",
                   (_quantile(0.99, "rpc_method"), "{{rpc_method}}")),
        row("Artifacts"),
        timeseries("Blob bytes per second", "Bps",
                   "Received by Write streams, sent by Read streams and by HTTP file URLs "
                   "(presigned-URL downloads go straight to MinIO and are not here).",
                   (_rate(_sel("modelregistry_artifact_received_bytes_total")), "received"),
                   (_rate(_sel("modelregistry_artifact_sent_bytes_total")), "sent (gRPC Read)"),
                   (_rate(_sel("modelregistry_http_files_sent_bytes_total")),
                    "sent (HTTP file URLs)")),
        timeseries("Open streams and uploads", "short",
                   "Streams open by method, Write streams in progress, and the registry's "
                   "unfinished upload sessions (abandoned ones expire).",
                   (f"sum by (rpc_method) ({_sel('rpc_server_active_streams')})",
                    "{{rpc_method}}"),
                   (f"sum({_sel('modelregistry_artifact_uploads_active')})",
                    "uploads in progress"),
                   # Every replica reports the registry-wide count read from the database.
                   (f"max({_sel('modelregistry_artifact_upload_sessions_open')})",
                    "unfinished upload sessions")),
        timeseries("Download URLs per second", "reqps",
                   "Presigned URLs handed out (pulls from MinIO).",
                   (_rate(_sel("modelregistry_artifact_download_urls_total")), "URLs")),
        row("Metadata"),
        timeseries("Resolve cache hit ratio", "percentunit",
                   "Share of ResolveModelVersion lookups answered from memory.",
                   (f"{_rate(hits)} / clamp_min({_rate(_sel(lookups))}, 1e-9)", "hit ratio")),
        timeseries("Resolve cache entries", "short", "Answers cached, per replica.",
                   (_sel("modelregistry_resolve_cache_entries"), "{{instance}}")),
        row("Database"),
        timeseries("Pool connections", "short", "Used (lent to a call), idle, and the maximum.",
                   (f"sum by (state) ({_sel('db_client_connection_count')})", "{{state}}"),
                   (f"sum({_sel('db_client_connection_max')})", "max")),
        timeseries("Connection wait p99", "s", "How long calls waited for a pooled connection.",
                   (f"histogram_quantile(0.99, {_rate(waits, 'le')})", "p99")),
        row("Access, bounds and garbage collection"),
        timeseries("Refused calls per second", "reqps",
                   "PERMISSION_DENIED for want of a role, UNAUTHENTICATED, and "
                   "RESOURCE_EXHAUSTED by reason.",
                   (_rate(_sel("modelregistry_auth_denied_total")), "permission denied"),
                   (_rate(unauthenticated), "unauthenticated"),
                   (_rate(_sel("modelregistry_limits_refused_total"), "reason"), "{{reason}}")),
        timeseries("Garbage collection: bytes freed per hour", "bytes",
                   "Bytes of blobs garbage collection deleted in the hour before each point.",
                   (_hourly("modelregistry_gc_freed_bytes_total"), "bytes freed")),
        timeseries("Garbage collection: runs and blobs per hour", "short",
                   "Runs that deleted (scheduled or RunGarbageCollection), and blobs deleted.",
                   (_hourly("modelregistry_gc_runs_total"), "runs"),
                   (_hourly("modelregistry_gc_deleted_blobs_total"), "blobs deleted")),
    ]  # fmt: skip


def _layout(items: list[Panel]) -> list[Panel]:
    """Grid positions: rows full width, stats four to a line, graphs two to a line."""
    y = x = line_height = 0
    for panel_id, panel in enumerate(items, start=1):
        panel["id"] = panel_id
        width, height = {"row": (24, 1), "stat": (6, 4)}.get(panel["type"], (12, 8))
        if panel["type"] == "row" or x + width > 24:
            y, x, line_height = y + line_height, 0, 0
        panel["gridPos"] = {"h": height, "w": width, "x": x, "y": y}
        x, line_height = x + width, max(line_height, height)
    return items


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": name},
        "definition": query,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "refresh": 2,
        "sort": 1,
    }


def dashboard() -> dict[str, Any]:
    """The whole dashboard document."""
    return {
        "uid": UID,
        "title": "modelregistry",
        "description": "Calls, latency, artifact bytes, caches, database pool, refusals and GC "
        "of the modelregistry services (deploy/docs/metrics.md).",
        "tags": ["modelregistry", "grpc"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                },
                _variable("job", "Job", "label_values(target_info, job)"),
                _variable(
                    "instance", "Instance", 'label_values(target_info{job=~"$job"}, instance)'
                ),
            ]
        },
        "annotations": {"list": []},
        "panels": _layout(panels()),
    }


def render() -> str:
    """The JSON text written to ``OUTPUT``."""
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the dashboard, or with ``--check`` compare it with the file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python deploy/grafana/dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The telemetry flags: where traces go, which metrics exporters run, where Prometheus scrapes.

Part of the server configuration (``config.py`` reads them with every other flag, and
``MODELREGISTRY_<FLAG>`` in the environment). What the metrics are, and the dashboard and
alerts built on them: deploy/docs/metrics.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Exporter = Literal["none", "console", "otlp"]
EXPORTERS: tuple[Exporter, ...] = ("none", "console", "otlp")
MetricsExporter = Literal["prometheus", "otlp"]
METRICS_EXPORTERS: tuple[MetricsExporter, ...] = ("prometheus", "otlp")
# The port OpenTelemetry's Prometheus exporter uses by convention (and Prometheus's own list
# of default ports gives it); on loopback unless told otherwise, like every other port here.
DEFAULT_METRICS_LISTEN = "127.0.0.1:9464"


@dataclass(frozen=True)
class MetricsConfig:
    """Which metrics exporters run.

    Attributes:
        exporters: ``prometheus`` (a scrape endpoint on ``listen``) and/or ``otlp`` (pushed
            every ``OTEL_METRIC_EXPORT_INTERVAL`` ms, default 60000, to the collector named by
            the standard ``OTEL_EXPORTER_OTLP_*`` variables).
        listen: ``host:port`` of the ``/metrics`` endpoint (port 0: any free port); None
            without ``prometheus``.
    """

    exporters: frozenset[MetricsExporter]
    listen: str | None = None


def add_telemetry_flags(serve: argparse.ArgumentParser) -> None:
    """Add the tracing and metrics flags to the ``serve`` parser."""
    group = serve.add_argument_group("telemetry: traces and metrics (deploy/docs/metrics.md)")
    group.add_argument(
        "--otel-exporter", choices=list(EXPORTERS), help="trace exporter (default none)"
    )
    group.add_argument(
        "--metrics",
        metavar="EXPORTERS",
        help="metrics exporters, comma-separated: prometheus (a /metrics endpoint on "
        "--metrics-listen), otlp (pushed to OTEL_EXPORTER_OTLP_ENDPOINT), or none "
        "(default none: the per-call cost is in deploy/docs/metrics.md)",
    )
    group.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help=f"host:port of the Prometheus endpoint /metrics (default {DEFAULT_METRICS_LISTEN}); "
        "its own port, served with the same TLS as --listen, and an address other than "
        "loopback needs TLS or --insecure",
    )


def read_trace_exporter(get: Callable[[str], str | None], problems: list[str]) -> Exporter:
    """``--otel-exporter``, checked."""
    exporter = get("otel_exporter") or "none"
    if exporter not in EXPORTERS:
        problems.append(f"--otel-exporter must be one of {', '.join(EXPORTERS)}, not {exporter!r}")
        return "none"
    return exporter


def read_metrics_config(
    get: Callable[[str], str | None],
    problems: list[str],
    *,
    plaintext_ok: Callable[[str], bool],
) -> MetricsConfig | None:
    """The metrics settings, or None when metrics are off.

    Args:
        get: Reads a flag (or its ``MODELREGISTRY_`` variable).
        problems: Where invalid settings are reported.
        plaintext_ok: Whether a host may be served without TLS.
    """
    text = (get("metrics") or "none").strip().lower()
    names = {name.strip() for name in text.split(",") if name.strip()} - {"none"}
    unknown = sorted(names - set(METRICS_EXPORTERS))
    if unknown:
        problems.append(
            f"--metrics takes prometheus, otlp (comma-separated) or none, not {', '.join(unknown)}"
        )
    exporters = frozenset(n for n in METRICS_EXPORTERS if n in names)
    listen = get("metrics_listen")
    if "prometheus" not in exporters:
        if listen is not None:
            problems.append("--metrics-listen applies only with --metrics prometheus")
        return MetricsConfig(exporters) if exporters else None
    listen = (listen or DEFAULT_METRICS_LISTEN).strip()
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        problems.append(
            f"--metrics-listen must be host:port with a port from 0 to 65535, not {listen!r}"
        )
    elif not plaintext_ok(host):
        problems.append(
            f"--metrics-listen {host} is not a loopback address, so it will not be served in "
            "plaintext: give --tls-cert and --tls-key, or pass --insecure"
        )
    return MetricsConfig(exporters, listen)

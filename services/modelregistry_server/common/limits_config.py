"""The reliability flags: how often health is checked, and the bounds on what callers may hold.

Part of the server configuration (``config.py`` reads them with every other flag, and
``MODELREGISTRY_<FLAG>`` in the environment). Every bound has a default that suits a shared
registry; ``docs`` in README.md ("Limits") lists them with the counters that show them hit.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

# Presigned download URLs are bearer capabilities: whoever holds one can fetch the bytes until it
# expires, so their lifetime is short by default and capped.
DOWNLOAD_URL_MAX_TTL_S = 3600
Number = Callable[..., float]  # _Settings.number: (flag, default, low, high, what, whole=)
GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Limits:
    """Bounds and intervals (see the flags' help for each)."""

    health_check_interval_s: float = 1.0
    # Streams (uploads, downloads, watches) open at once: in the server, per principal.
    max_streams: int = 1000
    max_streams_per_principal: int = 64
    max_watch_streams_per_principal: int = 16
    # An upload or download stream that moves no message for this long is ended.
    stream_idle_timeout_s: float = 60.0
    # Unfinished upload sessions per principal, and the bytes they declared but did not write.
    max_upload_sessions_per_principal: int = 100
    max_unwritten_bytes_per_principal: int = 1024 * GIB
    # Free space the local-directory store keeps; a part that would eat into it is refused.
    disk_reserve_bytes: int = 1 * GIB
    # gRPC connection management (see the flags' help).
    keepalive_time_s: float = 60.0
    keepalive_timeout_s: float = 20.0
    max_connection_age_s: float = 1800.0
    max_connection_age_grace_s: float = 3600.0
    # HTTP/2 flow-control window per stream (0: gRPC's adaptive window, see the flag's help).
    stream_window_bytes: int = 2 * MIB
    # Retention and scheduled jobs (housekeeping): change events and request ids older than
    # their retention are deleted every housekeeping interval; garbage collection runs every
    # gc interval (an interval of 0 switches the job off). The alias history and the audit
    # log are kept for ever.
    event_retention_s: float = 30 * 86400.0
    request_id_retention_s: float = 86400.0
    housekeeping_interval_s: float = 3600.0
    gc_interval_s: float = 86400.0
    # Scan each version's files after its commit (metadata/app/scanning.py); off: no verdicts.
    scan_models: bool = True
    # Audit events are chained (the tamper-evident hash chain) within this long of their
    # commit, and soon after each append on the replica that made it (0: only on demand).
    audit_chain_interval_s: float = 1.0


def add_transfer_flags(serve: argparse.ArgumentParser) -> None:
    """Lifetimes and sizes: upload sessions and parts, download URLs."""
    serve.add_argument(
        "--upload-session-ttl",
        help="seconds an unfinished upload session lives before it is swept (default 72000, "
        "20 h: below MinIO's own 24 h expiry of stale multipart uploads)",
    )
    serve.add_argument(
        "--sweep-interval",
        help="seconds between sweeps of expired upload sessions (default 300; 0 disables)",
    )
    serve.add_argument(
        "--upload-part-size",
        help="MiB per stored part of an upload, 5 to 512 (default 16)",
    )
    serve.add_argument(
        "--upload-parts-in-flight",
        help="parts of one upload stored concurrently, 1 to 16 (default 2)",
    )
    serve.add_argument(
        "--no-direct-uploads",
        action="store_true",
        default=None,
        help="never offer clients a URL to PUT a blob straight to the S3/MinIO store; every "
        "byte then goes through Write (by default a blob of at most 5 GiB may go directly, the "
        "store checking its SHA-256: it needs the store reachable from clients, like download "
        "URLs)",
    )
    serve.add_argument(
        "--download-url-ttl",
        help="seconds a presigned download URL lives when the caller asks for no lifetime, "
        f"60 to {DOWNLOAD_URL_MAX_TTL_S} (default 900; a caller may ask for up to "
        f"{DOWNLOAD_URL_MAX_TTL_S})",
    )


def read_download_url_ttl(number: Number) -> int:
    """``--download-url-ttl``: whole seconds from 60 to ``DOWNLOAD_URL_MAX_TTL_S``."""
    limits = f"a whole number of seconds from 60 to {DOWNLOAD_URL_MAX_TTL_S}"
    return int(number("download_url_ttl", "900", 60, DOWNLOAD_URL_MAX_TTL_S, limits, whole=True))


def add_limits_flags(serve: argparse.ArgumentParser) -> None:
    """Add the transfer and reliability flags to the ``serve`` parser."""
    add_transfer_flags(serve)
    group = serve.add_argument_group("health and resource bounds")
    group.add_argument(
        "--health-check-interval",
        metavar="SECONDS",
        help="seconds between background probes of the database and the object store; a "
        "service whose dependency does not answer reports NOT_SERVING until it does "
        "(default 1; 0 disables the probes)",
    )
    _add_bound_flags(group)
    _add_retention_flags(serve.add_argument_group("retention and scheduled jobs"))
    serve.add_argument(
        "--scan-models",
        choices=["on", "off"],
        help="scan every committed version's files for code that runs on load, in the "
        "background, and store the verdict (default on)",
    )


def _add_retention_flags(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--event-retention",
        help="seconds change events (WatchModelEvents) are kept; older ones are deleted, and a "
        "watch resuming before them gets OUT_OF_RANGE (EVENT_ID_EXPIRED) (default 2592000, "
        "30 days; at least 3600)",
    )
    group.add_argument(
        "--request-id-retention",
        help="seconds a request_id is remembered for idempotent retries (default 86400: the "
        "24 hours the API promises, which is also the least allowed)",
    )
    group.add_argument(
        "--housekeeping-interval",
        help="seconds between deletions of change events and request ids past their retention, "
        "run by one replica at a time (default 3600; 0 disables)",
    )
    group.add_argument(
        "--gc-interval",
        help="seconds between scheduled garbage collections (RunGarbageCollection with its "
        "defaults), run by one replica at a time (default 86400; 0 disables)",
    )
    group.add_argument(
        "--audit-chain-interval",
        help="seconds between passes that add committed audit events to the tamper-evident "
        "hash chain, one replica at a time; a replica also chains its own events about 50 ms "
        "after each (default 1; 0 leaves chaining to VerifyAuditLog and ExportAuditLog)",
    )


def _add_bound_flags(group: argparse._ArgumentGroup) -> None:
    flags = {
        "--max-streams": "streams (uploads, downloads, watches) open at once in this server; "
        "more are refused with RESOURCE_EXHAUSTED (TOO_MANY_STREAMS) (default 1000)",
        "--max-streams-per-principal": "streams one principal may have open at once (default 64)",
        "--max-watch-streams-per-principal": "WatchModelEvents streams one principal may have "
        "open at once, TOO_MANY_WATCH_STREAMS beyond (default 16)",
        "--stream-idle-timeout": "seconds an upload or download stream may move no data before "
        "the server ends it (STREAM_IDLE); an upload stays resumable (default 60)",
        "--max-upload-sessions-per-principal": "unfinished upload sessions one principal may "
        "hold; more are refused with UPLOAD_SESSIONS_EXHAUSTED until some finish or expire "
        "(default 100)",
        "--max-unwritten-gib-per-principal": "GiB that one principal's unfinished upload "
        "sessions may declare but not yet have written (UPLOAD_BYTES_EXHAUSTED) (default 1024)",
        "--disk-reserve-mib": "MiB of free disk the local-directory blob store keeps free for "
        "everyone else: a session or part that would eat into it is refused with "
        "STORAGE_FULL (default 1024)",
        "--keepalive-time": "seconds between keepalive pings the server sends on an idle "
        "connection, to notice dead clients (default 60)",
        "--keepalive-timeout": "seconds the server waits for a keepalive answer before it "
        "closes the connection (default 20)",
        "--max-connection-age": "seconds after which the server asks a client to reconnect, so "
        "load spreads over new replicas (default 1800; 0 for never)",
        "--max-connection-age-grace": "seconds calls in flight may take to finish on a "
        "connection past its age (default 3600)",
        "--stream-window-mib": "MiB a client may send on one stream ahead of what the server "
        "has taken (HTTP/2 flow-control window; default 2). Bounds the memory of each upload "
        "beyond its part buffers; a stream moves at most this much per round trip (2 MiB per "
        "1 ms is 2 GB/s). 0 lets gRPC grow the window by itself (faster across long links, "
        "unbounded memory per upload)",
    }
    for flag, text in flags.items():
        unit = text.split(" ", 1)[0]
        metavar = {"seconds": "SECONDS", "GiB": "GIB", "MiB": "MIB"}.get(unit, "N")
        group.add_argument(flag, metavar=metavar, help=text)


def read_limits(
    number: Number,
    get: Callable[[str, str], str | None] | None = None,
    problems: list[str] | None = None,
) -> Limits:
    """The limits from the flags (problems are collected by ``number``, and in ``problems``)."""
    day = 86400.0
    scan = ((get("scan_models", "on") if get else None) or "on").strip().lower()
    if scan not in ("on", "off") and problems is not None:
        problems.append(f"--scan-models must be on or off, not {scan!r}")
    return Limits(
        scan_models=scan != "off",
        health_check_interval_s=number("health_check_interval", "1", 0, 60, "seconds from 0 to 60"),
        max_streams=int(number("max_streams", "1000", 1, 1e6, "a whole number", whole=True)),
        max_streams_per_principal=int(
            number("max_streams_per_principal", "64", 1, 1e6, "a whole number", whole=True)
        ),
        max_watch_streams_per_principal=int(
            number("max_watch_streams_per_principal", "16", 1, 1e6, "a whole number", whole=True)
        ),
        stream_idle_timeout_s=number("stream_idle_timeout", "60", 1, day, "seconds up to a day"),
        max_upload_sessions_per_principal=int(
            number("max_upload_sessions_per_principal", "100", 1, 1e7, "a whole number", whole=True)
        ),
        max_unwritten_bytes_per_principal=int(
            number("max_unwritten_gib_per_principal", "1024", 1, 1e7, "GiB, at least 1") * GIB
        ),
        disk_reserve_bytes=int(number("disk_reserve_mib", "1024", 0, 1e9, "MiB, 0 or more") * MIB),
        keepalive_time_s=number("keepalive_time", "60", 1, day, "seconds up to a day"),
        keepalive_timeout_s=number("keepalive_timeout", "20", 1, 3600, "seconds up to an hour"),
        max_connection_age_s=number("max_connection_age", "1800", 0, 30 * day, "seconds"),
        max_connection_age_grace_s=number(
            "max_connection_age_grace", "3600", 0, 30 * day, "seconds"
        ),
        stream_window_bytes=int(number("stream_window_mib", "2", 0, 1024, "MiB up to 1024") * MIB),
        event_retention_s=number(
            "event_retention", "2592000", 3600, 3650 * day, "seconds from 3600 to 10 years"
        ),
        request_id_retention_s=number(
            "request_id_retention", "86400", day, 30 * day, "seconds from 86400 to 30 days"
        ),
        housekeeping_interval_s=number(
            "housekeeping_interval", "3600", 0, 7 * day, "seconds up to 7 days"
        ),
        gc_interval_s=number("gc_interval", "86400", 0, 30 * day, "seconds up to 30 days"),
        audit_chain_interval_s=number(
            "audit_chain_interval", "1", 0, 3600, "seconds from 0 to 3600"
        ),
    )

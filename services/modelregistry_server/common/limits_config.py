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
Number = Callable[[str, str, float, float, str], float]


@dataclass(frozen=True)
class Limits:
    """Bounds and intervals (see the flags' help for each)."""

    health_check_interval_s: float = 1.0


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
        "--download-url-ttl",
        help="seconds a presigned download URL lives when the caller asks for no lifetime, "
        f"60 to {DOWNLOAD_URL_MAX_TTL_S} (default 900; a caller may ask for up to "
        f"{DOWNLOAD_URL_MAX_TTL_S})",
    )


def add_limits_flags(serve: argparse.ArgumentParser) -> None:
    """Add the transfer and reliability flags to the ``serve`` parser."""
    add_transfer_flags(serve)
    group = serve.add_argument_group("health and resource bounds")
    group.add_argument(
        "--health-check-interval",
        help="seconds between background probes of the database and the object store; a "
        "service whose dependency does not answer reports NOT_SERVING until it does "
        "(default 1; 0 disables the probes)",
    )


def read_limits(number: Number) -> Limits:
    """The limits from the flags (problems are collected by ``number``)."""
    return Limits(
        health_check_interval_s=number("health_check_interval", "1", 0, 60, "seconds from 0 to 60"),
    )

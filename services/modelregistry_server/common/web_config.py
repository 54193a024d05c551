"""The HTTP face's flags: where it listens and which browser origins may call it.

Part of the server configuration (``config.py`` reads them with every other flag, and
``MODELREGISTRY_<FLAG>`` in the environment). The HTTP port serves the JSON API, file URLs and
the web UI (``modelregistry_server/web``) with the same TLS options as the gRPC port.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

# On the embedded default (no --database-url) the UI is on by default, on loopback; a
# production server serves HTTP only when told where.
EMBEDDED_HTTP_LISTEN = "127.0.0.1:8080"


@dataclass(frozen=True)
class HttpConfig:
    """Where the HTTP face listens.

    Attributes:
        listen: ``host:port`` (port 0: any free port).
        cors_origins: Origins (``https://host:port``) whose pages may call the JSON API; empty
            means no cross-origin access at all.
    """

    listen: str
    cors_origins: frozenset[str] = field(default_factory=frozenset)


def add_http_flags(serve: argparse.ArgumentParser) -> None:
    """Add the HTTP face's flags to the ``serve`` parser."""
    group = serve.add_argument_group("HTTP: JSON API, file URLs and web UI")
    group.add_argument(
        "--http-listen",
        metavar="HOST:PORT",
        help=f"host:port of the HTTP port, or 'off' (default {EMBEDDED_HTTP_LISTEN} on the "
        "embedded default, off with --database-url); served with the same TLS as --listen, "
        "and an address other than loopback needs TLS or --insecure",
    )
    group.add_argument(
        "--http-cors-origins",
        metavar="ORIGINS",
        help="comma-separated origins (https://host:port) allowed to call the JSON API from a "
        "browser page (default: none, CORS off)",
    )


def read_http_config(
    get: Callable[[str], str | None],
    problems: list[str],
    *,
    embedded: bool,
    plaintext_ok: Callable[[str], bool],
) -> HttpConfig | None:
    """The HTTP face's settings, or None when it is off.

    Args:
        get: Reads a flag (or its ``MODELREGISTRY_`` variable).
        problems: Where invalid settings are reported.
        embedded: Whether the server runs on its embedded database (HTTP on by default).
        plaintext_ok: Whether a host may be served without TLS.
    """
    origins = _cors_origins(get("http_cors_origins") or "", problems)
    listen = get("http_listen") or (EMBEDDED_HTTP_LISTEN if embedded else "off")
    if listen.strip().lower() == "off":
        return None
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        problems.append(
            f"--http-listen must be host:port with a port from 0 to 65535, or off, not {listen!r}"
        )
        return None
    if not plaintext_ok(host):
        problems.append(
            f"--http-listen {host} is not a loopback address, so it will not be served in "
            "plaintext: give --tls-cert and --tls-key, or pass --insecure"
        )
    return HttpConfig(listen.strip(), origins)


def _cors_origins(value: str, problems: list[str]) -> frozenset[str]:
    origins = frozenset(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
    for origin in sorted(origins):
        if not origin.startswith(("http://", "https://")) or "*" in origin:
            problems.append(
                f"--http-cors-origins: {origin!r} is not an origin like https://ui.example:8443"
            )
    return origins

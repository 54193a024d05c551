"""Pieces of the composition root kept out of ``server.py`` (which is at its size limit).

The model scanner's wiring (issue 13, item 6), and how the log names the transport.
"""

from __future__ import annotations

from modelregistry_server.common.adapters.db import Database
from modelregistry_server.common.config import ServerConfig
from modelregistry_server.metadata.adapters.postgres.scans import PostgresScanStore
from modelregistry_server.metadata.app.resolve_cache import ResolveCache
from modelregistry_server.metadata.app.scan_ports import BlobReader
from modelregistry_server.metadata.app.scanning import ModelScanner

__all__ = ["ModelScanner", "build_scanner", "transport_security"]


def build_scanner(
    config: ServerConfig, database: Database, reader: BlobReader, cache: ResolveCache
) -> ModelScanner | None:
    """The started background scanner of committed versions, or None with --scan-models off.

    It starts at once: its reads wait for the artifact service to listen (this process's own
    port, bound only after the metadata service is built).
    """
    if not config.limits.scan_models:
        return None
    scanner = ModelScanner(PostgresScanStore(database), reader, on_scanned=cache.invalidate_model)
    scanner.start()
    return scanner


def transport_security(config: ServerConfig) -> str:
    """How the server's port is secured, for the start-up log line."""
    if config.tls is not None:
        return "mutual TLS" if config.tls.mutual else "TLS"
    return "plaintext, --insecure" if config.insecure else "plaintext"

"""``python -m modelregistry_server serve [all|metadata|artifacts]``."""

from __future__ import annotations

import asyncio
import sys

from modelregistry_server.common.adapters.embedded_postgres import EmbeddedPostgresError
from modelregistry_server.common.adapters.migrations import MigrationError
from modelregistry_server.common.config import ConfigError, load_config
from modelregistry_server.common.telemetry import configure_logging, configure_tracing


def main(argv: list[str] | None = None) -> int:
    """Parse the configuration, then serve until SIGTERM. Returns the process exit code."""
    try:
        config = load_config(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"modelregistry-server: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    configure_tracing(config.otel_exporter)
    # Imported after configuration so that a bad flag answers fast, without loading gRPC.
    from modelregistry_server.server import serve

    try:
        asyncio.run(serve(config))
    except (EmbeddedPostgresError, MigrationError, ConfigError, OSError) as exc:
        print(f"modelregistry-server: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

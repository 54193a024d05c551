"""``python -m modelregistry_server serve [all|metadata|artifacts]``: the process around the
server: configuration, signals and the exit code."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from modelregistry_server.common.adapters.allocator import tune_for_streaming
from modelregistry_server.common.adapters.embedded_postgres import EmbeddedPostgresError
from modelregistry_server.common.adapters.migrations import MigrationError
from modelregistry_server.common.config import ConfigError, ServerConfig, load_config
from modelregistry_server.common.secret_files import with_secret_files
from modelregistry_server.common.telemetry import configure_logging, configure_tracing

if TYPE_CHECKING:
    from modelregistry_server.server import RegistryServer

_log = logging.getLogger("modelregistry_server.server")


class ServerFailed(RuntimeError):
    """The server stopped because it could not go on serving (the message says why)."""


async def serve(config: ServerConfig, registry: RegistryServer) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully.

    Raises:
        ServerFailed: The server could not go on (its embedded PostgreSQL could not be
            restarted); it was stopped first.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await registry.start()
    stopping = asyncio.create_task(stop.wait())
    failing = asyncio.create_task(registry.failed.wait())
    await asyncio.wait([stopping, failing], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    failing.cancel()
    _log.info("shutting down: draining in-flight calls for up to %.1fs", config.shutdown_grace_s)
    await registry.stop()
    if registry.failure is not None:
        raise ServerFailed(registry.failure)
    _log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    """Parse the configuration, then serve until SIGTERM. Returns the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        # Secrets mounted as files (MODELREGISTRY_<SETTING>_FILE), for serve and migrate alike.
        environ = with_secret_files(os.environ)
    except ConfigError as exc:
        print(f"modelregistry-server: {exc}", file=sys.stderr)
        return 2
    if args[:1] == ["migrate"]:
        # Migrations only, then exit (a deployment's pre-upgrade step): see migrate.py.
        from modelregistry_server.migrate import main as migrate_main

        configure_logging("INFO")
        return migrate_main(args[1:], environ)
    try:
        config = load_config(args, environ)
    except ConfigError as exc:
        print(f"modelregistry-server: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    configure_tracing(config.otel_exporter)
    # `kill -USR1 <pid>`: every thread's stack to stderr (the log), for a server that hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # Before anything allocates the data path's buffers (see the function for the figures).
    tune_for_streaming()
    # Imported after configuration so that a bad flag answers fast, without loading gRPC.
    from modelregistry_server.server import RegistryServer

    try:
        asyncio.run(serve(config, RegistryServer(config)))
    except (EmbeddedPostgresError, MigrationError, ConfigError, OSError) as exc:
        print(f"modelregistry-server: cannot start: {exc}", file=sys.stderr)
        return 1
    except ServerFailed as exc:
        print(f"modelregistry-server: stopped: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``modelregistry`` command: push, pull and inspect models from a shell.

Errors are one plain sentence on stderr (``error: ...``) with an exit code scripts can rely on
(see ``modelregistry --help``); ``--debug`` adds the traceback. The console script calls
:func:`main`; ``python -m modelregistry.cli`` does the same.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import traceback
from collections.abc import Sequence

from modelregistry.cli._parser import UsageError, build_parser, default_url
from modelregistry.errors import EXIT_ERROR, EXIT_USAGE, RegistryError

__all__ = ["main"]

EXIT_INTERRUPTED = 130
SERVER_PROGRAM = "modelregistry-server"
# Global flags that take a value, to find the command word before argparse runs.
_VALUE_FLAGS = frozenset(
    {"--url", "--artifact-url", "--timeout", "--cache-dir", "--tls-ca", "--tls-cert", "--tls-key"}
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    serve_args = _serve_arguments(arguments)
    if serve_args is not None:
        return _serve(serve_args)

    parser = build_parser()
    args = parser.parse_args(arguments)
    debug: bool = args.debug
    try:
        return _run(args)
    except RegistryError as exc:
        return _fail(f"error: {_sentence(exc.message)}", exc.exit_code, debug)
    except UsageError as exc:
        return _fail(f"error: {_sentence(str(exc))}", EXIT_USAGE, debug)
    except KeyboardInterrupt:
        return _fail("error: interrupted", EXIT_INTERRUPTED, debug)
    except BrokenPipeError:
        # `modelregistry ls | head`: the reader left; not an error worth a message.
        _silence_stdout()
        return 0
    except Exception as exc:
        if isinstance(exc, OSError) and exc.strerror:
            where = f": {exc.filename}" if exc.filename else ""
            return _fail(f"error: {exc.strerror.lower()}{where}", EXIT_ERROR, debug)
        hint = "" if debug else " (run with --debug for the traceback)"
        message = f"error: unexpected {type(exc).__name__}: {_sentence(str(exc))}{hint}"
        return _fail(message, EXIT_ERROR, debug)


def _run(args: argparse.Namespace) -> int:
    # Imported here so that `--help` and `serve` do not load the commands, the cache (sqlite3)
    # or JSON rendering; the package itself (Client, gRPC) is loaded by any `modelregistry.*`.
    from modelregistry.cli._commands import COMMANDS, cmd_cache

    if args.command == "cache":
        # Local files only: no Client, so no server address is needed or checked. The root is
        # chosen as Client.cache chooses it (--cache-dir, else $MODELREGISTRY_CACHE, ...).
        from modelregistry.cache import Cache

        cache = Cache(args.cache_dir)
        try:
            code = cmd_cache(cache, args, sys.stdout)
        finally:
            cache.close()
    else:
        from modelregistry.client import Client

        command = COMMANDS[args.command]
        try:
            client = Client(
                default_url(args.url),
                timeout=args.timeout,
                cache_dir=args.cache_dir,
                tls_ca=args.tls_ca,
                tls_cert=args.tls_cert,
                tls_key=args.tls_key,
                token=getattr(args, "token", None),
                artifact_target=args.artifact_url,
            )
        except ValueError as exc:  # TLS options that contradict each other, a bad address list
            raise UsageError(str(exc)) from None
        with client:
            code = command(client, args, sys.stdout)
    sys.stdout.flush()
    return code


def _fail(message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(message, file=sys.stderr)
    return code


def _sentence(text: str) -> str:
    """Collapse a message onto one line: the CLI promises one plain sentence per error. The
    server wrote it, so its control characters (ESC, BEL, the 8-bit CSI) are shown escaped."""
    from modelregistry.cli._format import printable  # lazy: `--help` stays light

    return printable(" ".join(text.split())) or "no details"


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would raise BrokenPipeError again; point it at devnull.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _serve_arguments(argv: list[str]) -> list[str] | None:
    """The arguments after ``serve`` when that is the command, else None."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            return None
        if word in _VALUE_FLAGS:
            index += 2
            continue
        if word.startswith("-"):
            index += 1
            continue
        return argv[index + 1 :] if word == "serve" else None
    return None


def _serve(server_args: list[str]) -> int:
    """Replace this process by ``modelregistry-server serve ARGS`` (never imported here)."""
    # The same environment's bin folder first (a venv not on PATH), then PATH.
    program = shutil.which(SERVER_PROGRAM, path=os.path.dirname(sys.executable)) or shutil.which(
        SERVER_PROGRAM
    )
    if program is None:
        if any(arg in ("-h", "--help") for arg in server_args):
            build_parser().parse_args(["serve", "--help"])
        print(
            f"error: {SERVER_PROGRAM} is not installed; pip install modelregistry-server",
            file=sys.stderr,
        )
        return EXIT_ERROR
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(program, [program, "serve", *server_args])  # noqa: S606 - replaces this process

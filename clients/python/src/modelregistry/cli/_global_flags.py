"""The CLI's global flags: accepted before and after the command (``--url``, ``--token``,
TLS, ``--json``, ...)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from modelregistry._transport import (
    DEFAULT_TARGET,
    ENV_ARTIFACT_TARGET,
    ENV_TARGET,
    ENV_TLS_CA,
    ENV_TLS_CERT,
    ENV_TLS_KEY,
)

N = TypeVar("N", int, float)


def _positive(parse: Callable[[str], N], noun: str) -> Callable[[str], N]:
    """An argparse ``type`` that accepts only numbers above zero."""

    def convert(text: str) -> N:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return convert


positive_float = _positive(float, "a number")
positive_int = _positive(int, "an integer")


def _address_flags(group: argparse._ArgumentGroup, default: Callable[[object], object]) -> None:
    """``--url`` and ``--artifact-url``: where the services are."""
    group.add_argument(
        "--url",
        metavar="HOST:PORT",
        default=default(None),
        help=f"the registry server (default: ${ENV_TARGET} or {DEFAULT_TARGET}); several "
        "replicas as IP:PORT,IP:PORT or dns:///NAME:PORT, balanced round-robin over the "
        "healthy ones",
    )
    group.add_argument(
        "--artifact-url",
        metavar="HOST:PORT",
        default=default(None),
        help=f"the ArtifactService when it is served apart (`serve artifacts`); same forms "
        f"as --url (default: ${ENV_ARTIFACT_TARGET}, else --url)",
    )


def global_flags(*, suppress: bool) -> argparse.ArgumentParser:
    """Flags accepted both before and after the command.

    On the sub-commands the defaults are ``SUPPRESS`` so that a flag given before the command is
    not overwritten by the sub-command's default.
    """
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("global options")

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    _address_flags(group, default)
    group.add_argument(
        "--token",
        metavar="TOKEN",
        default=default(None),
        help="the bearer token (default: $MODELREGISTRY_TOKEN, else what `modelregistry "
        "login` saved for this server)",
    )
    group.add_argument(
        "--tls-ca",
        metavar="FILE",
        default=default(None),
        help=f"PEM CA certificates that signed the server's certificate; turns TLS on "
        f"(default: ${ENV_TLS_CA}; an https:// --url uses TLS with the system's CAs)",
    )
    group.add_argument(
        "--tls-cert",
        metavar="FILE",
        default=default(None),
        help=f"PEM client certificate for mutual TLS (default: ${ENV_TLS_CERT})",
    )
    group.add_argument(
        "--tls-key",
        metavar="FILE",
        default=default(None),
        help=f"PEM private key of --tls-cert (default: ${ENV_TLS_KEY})",
    )
    group.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=default(None),
        help="the local cache (default: $MODELREGISTRY_CACHE or ~/.cache/modelregistry)",
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        metavar="SECONDS",
        default=default(30.0),
        help="deadline of each call to the server (default: 30)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print machine-readable JSON on stdout instead of tables",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show the traceback of an error",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no progress bars or informational messages",
    )
    return parser

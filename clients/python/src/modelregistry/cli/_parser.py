"""The ``modelregistry`` command line: every command, flag, help text and example."""

from __future__ import annotations

import argparse
import os
import textwrap

from modelregistry import __version__
from modelregistry._refs import MAX_VERSION, parse_version_number
from modelregistry._transport import (
    DEFAULT_TARGET,
    ENV_TARGET,
)
from modelregistry.cli._global_flags import global_flags, positive_int

EXIT_CODES = """\
exit codes:
  0    success
  1    any other error (a bug or an unexpected server failure)
  2    usage error: a bad flag, reference, name, filter or value
  3    not found: the model, version or alias does not exist (or is not cached, offline)
  4    conflict: already exists, a concurrent change, a version not in the right state,
       or a symbolic link in the way of a file pull would write
  5    unavailable: the server cannot be reached or did not answer in time
  6    integrity: downloaded bytes do not match their recorded sha256, or the registry's
       answer breaks a rule pull checks (an unsafe manifest path, another model), or
       `audit verify` found the audit log's hash chain broken
  7    permission denied or unauthenticated
  130  interrupted (Ctrl-C)
"""

MAIN_EPILOG = (
    """\
references (REF) name a version: NAME (the newest READY version), NAME@ALIAS, NAME:3,
NAME/versions/3, models/NAME/versions/3, or the version uid.

examples:
  modelregistry push ./out --model fraud-detector --param lr=0.01 --metric auc=0.93 \\
      --alias staging
  modelregistry pull fraud-detector@production --dest ./weights
  modelregistry versions fraud-detector --filter 'metrics.auc > 0.9' --order-by 'metrics.auc desc'
  modelregistry --json show fraud-detector:3 | jq .files
  modelregistry cache ls                    # what the local cache holds (no server needed)

environment:
  MODELREGISTRY_URL      the server (default """
    + DEFAULT_TARGET
    + """), or replicas: IP:PORT,IP:PORT
  MODELREGISTRY_ARTIFACT_URL
                         the ArtifactService when served apart (default: the server)
  MODELREGISTRY_TOKEN    the bearer token (default: what `modelregistry login` saved)
  MODELREGISTRY_CACHE    the local cache directory (default ~/.cache/modelregistry)
  MODELREGISTRY_OFFLINE  1 = serve pulls of cached references without the server
  MODELREGISTRY_TLS_CA   PEM CA file: talk TLS, trusting the server certificates it signed
  MODELREGISTRY_TLS_CERT, MODELREGISTRY_TLS_KEY
                         client certificate and key, for a server that requires mutual TLS

"""
    + EXIT_CODES
)


class UsageError(Exception):
    """A flag value the CLI itself rejects (exit 2, like argparse).

    Defined here, with the parser that start-up loads anyway, so that :func:`main` can catch it
    without importing the command modules.
    """


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's line breaks (examples) and wraps the rest."""


def _version_number(text: str) -> int:
    """An argparse ``type`` for VERSION: what a reference's ``NAME:N`` accepts as ``N``."""
    number = parse_version_number(text.strip())
    if number is None:
        raise argparse.ArgumentTypeError(
            f"not a version number (1 to {MAX_VERSION}, ASCII digits): {text!r}"
        )
    return number


def _paragraph(text: str) -> str:
    """A long description wrapped by hand (the raw formatter keeps line breaks as given)."""
    return textwrap.fill(text, width=88)


def _example(*lines: str) -> str:
    return "example:\n" + "\n".join("  " + line for line in lines)


def _listing_flags(parser: argparse.ArgumentParser, noun: str, *, order_by_help: str) -> None:
    """``--filter``, ``--order-by`` and ``--limit``: what ``ls`` and ``versions`` pass to a list
    call of the SDK."""
    parser.add_argument("--filter", default="", metavar="EXPR", help=f"an AIP-160 filter on {noun}")
    parser.add_argument("--order-by", default="", metavar="EXPR", help=order_by_help)
    parser.add_argument("--limit", type=positive_int, metavar="N", help=f"at most N {noun}")


# The one function over the 80-line limit, on purpose: it is the CLI's table of commands, flags
# and help texts, read top to bottom like the --help it produces. Split into one function per
# command it would hide that table behind calls without making any part simpler.
def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (``prog`` is ``modelregistry``)."""
    common = global_flags(suppress=True)
    parser = argparse.ArgumentParser(
        prog="modelregistry",
        description="Push, pull and inspect models in a modelregistry server.",
        epilog=MAIN_EPILOG,
        formatter_class=_Formatter,
        parents=[global_flags(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str,
        help_text: str,
        example: str,
        description: str = "",
        under: argparse._SubParsersAction[argparse.ArgumentParser] = sub,
    ) -> argparse.ArgumentParser:
        """A command (or, ``under`` another command's sub-parsers, an action) with the common
        flags; ``description`` defaults to ``help_text`` as a sentence."""
        return under.add_parser(
            name,
            help=help_text,
            description=description or help_text[0].upper() + help_text[1:] + ".",
            epilog=example,
            formatter_class=_Formatter,
            parents=[common],
        )

    # push -------------------------------------------------------------------------------
    push = add(
        "push",
        "upload files or a directory as a new version of a model",
        _example(
            "modelregistry push ./out --model fraud-detector --param lr=0.01 --param epochs=3 \\",
            "    --metric auc=0.93 --label team=risk --alias staging",
        )
        + "\n\n"
        + textwrap.dedent(
            """\
            --param values are typed: an integer (3), else a float (0.01, 1e-3), else
            true/false (any case), else a string (adam). --metric values must be numbers.
            The model is created if it does not exist. Prints the new version (NAME:N).
            Lineage (git repository, commit, dirty flag) is recorded when PATH is inside a
            git checkout, unless --no-lineage."""
        ),
    )
    push.add_argument("paths", nargs="+", metavar="PATH", help="a directory or files to upload")
    push.add_argument("-m", "--model", required=True, help="the model to add a version to")
    push.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a training parameter"
    )
    push.add_argument(
        "--metric", action="append", default=[], metavar="KEY=NUMBER", help="an evaluation metric"
    )
    push.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="a label (string)"
    )
    described = push.add_mutually_exclusive_group()
    described.add_argument("--description", default="", metavar="TEXT", help="the model card")
    described.add_argument(
        "--description-file", metavar="FILE", help="read the model card (markdown) from FILE"
    )
    push.add_argument("--alias", metavar="ALIAS", help="point ALIAS at the new version")
    push.add_argument(
        "--no-lineage", action="store_true", help="do not record the git repository and commit"
    )
    push.add_argument(
        "--parallel", type=positive_int, default=4, metavar="N", help="parallel uploads (4)"
    )
    push.add_argument(
        "--no-direct-upload",
        action="store_true",
        help="send every byte through the registry's Write stream, even where it offers "
        "direct uploads to its object store (by default files up to 5 GiB go straight to "
        "S3/MinIO, which checks their SHA-256; a store this machine cannot reach falls back "
        "to Write by itself)",
    )

    # pull -------------------------------------------------------------------------------
    pull = add(
        "pull",
        "download a version into the local cache or a folder and print its path",
        _example(
            "modelregistry pull fraud-detector@production --dest ./weights \\",
            "    --include '*.safetensors'",
        ),
    )
    pull.add_argument("ref", metavar="REF", help="the version to download")
    pull.add_argument("--dest", metavar="DIR", help="a folder to put the files in (default: cache)")
    pull.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="only files matching GLOB (repeatable)",
    )
    pull.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip files matching GLOB (repeatable)",
    )
    pull.add_argument(
        "--parallel", type=positive_int, default=4, metavar="N", help="parallel downloads (4)"
    )

    # ls ---------------------------------------------------------------------------------
    ls = add(
        "ls",
        "list models",
        _example("modelregistry ls --filter 'labels.team = \"risk\"' --limit 20"),
    )
    _listing_flags(ls, "models", order_by_help="e.g. 'update_time desc' (default: name)")

    # show -------------------------------------------------------------------------------
    show = add(
        "show",
        "show one version: state, files, params, metrics, labels, lineage and aliases",
        _example("modelregistry show fraud-detector@production"),
    )
    show.add_argument("ref", metavar="REF", help="the version (a plain NAME is its newest READY)")
    show.add_argument(
        "--card", action="store_true", help="print only the model card (its markdown)"
    )

    # versions ---------------------------------------------------------------------------
    versions = add(
        "versions",
        "list the versions of a model",
        _example(
            "modelregistry versions fraud-detector \\",
            "    --filter 'state = READY AND metrics.auc > 0.9' \\",
            "    --order-by 'metrics.auc desc' --limit 5",
        ),
    )
    versions.add_argument("model", metavar="MODEL")
    _listing_flags(versions, "versions", order_by_help="e.g. 'metrics.auc desc' (default: newest)")

    # alias ------------------------------------------------------------------------------
    alias = add(
        "alias",
        "set, remove or list the aliases of a model",
        _example(
            "modelregistry alias set fraud-detector production 3",
            "modelregistry alias rm fraud-detector staging",
            "modelregistry alias ls fraud-detector",
        ),
    )
    alias_sub = alias.add_subparsers(dest="alias_command", metavar="ACTION", required=True)
    alias_set = add(
        "set",
        "point ALIAS at VERSION (creates or moves it)",
        _example("modelregistry alias set fraud-detector production 3"),
        description="Point ALIAS at VERSION (a READY version), creating or moving it.",
        under=alias_sub,
    )
    alias_set.add_argument("model", metavar="MODEL")
    alias_set.add_argument("alias", metavar="ALIAS")
    alias_set.add_argument("version", type=_version_number, metavar="VERSION", help="a number")
    alias_rm = add(
        "rm",
        "remove ALIAS",
        _example("modelregistry alias rm fraud-detector staging"),
        description="Remove ALIAS from MODEL (the version itself stays).",
        under=alias_sub,
    )
    alias_rm.add_argument("model", metavar="MODEL")
    alias_rm.add_argument("alias", metavar="ALIAS")
    alias_ls = add(
        "ls",
        "list the aliases of MODEL",
        _example("modelregistry alias ls fraud-detector"),
        description="List the aliases of MODEL and the versions they point at.",
        under=alias_sub,
    )
    alias_ls.add_argument("model", metavar="MODEL")

    # diff -------------------------------------------------------------------------------
    diff = add(
        "diff",
        "compare two versions: params, metrics and files",
        _example("modelregistry diff fraud-detector@production fraud-detector:4"),
    )
    diff.add_argument("ref_a", metavar="REF_A")
    diff.add_argument("ref_b", metavar="REF_B")

    # log --------------------------------------------------------------------------------
    log = add(
        "log",
        "show the audit log: who changed what (and which calls were refused), newest first",
        _example("modelregistry log fraud-detector --since 2025-01-01 --actor alice --limit 20")
        + "\n\nTimes are ISO 8601 (2025-01-31 or 2025-01-31T12:00:00Z); without a zone they are"
        "\nlocal time. --since is inclusive, --until exclusive.",
    )
    log.add_argument("model", nargs="?", default="", metavar="MODEL", help="only this model")
    log.add_argument("--actor", default="", metavar="ACTOR", help="only changes by ACTOR")
    log.add_argument("--since", metavar="TIME", help="only events at or after TIME")
    log.add_argument("--until", metavar="TIME", help="only events before TIME")
    log.add_argument("--limit", type=positive_int, default=50, metavar="N", help="(default 50)")
    log.add_argument("--reverse", action="store_true", help="oldest first instead of newest first")

    # gc ---------------------------------------------------------------------------------
    gc = add(
        "gc",
        "delete blobs no version references and expire abandoned pushes",
        _example("modelregistry gc --dry-run --grace-period 72h"),
    )
    gc.add_argument(
        "--dry-run", action="store_true", help="report what would be deleted, change nothing"
    )
    gc.add_argument(
        "--grace-period",
        metavar="DURATION",
        help="only blobs older than this, e.g. 48h, 2d, 1h30m (server default: 48h)",
    )

    # cache ------------------------------------------------------------------------------
    cache = add(
        "cache",
        "list, remove and prune the local cache of pulled versions (no server needed)",
        _example(
            "modelregistry cache ls",
            "modelregistry cache rm fraud-detector:3",
            "modelregistry cache prune --dry-run",
        )
        + "\n\n"
        + textwrap.dedent(
            """\
            The cache is --cache-dir, else $MODELREGISTRY_CACHE, else ~/.cache/modelregistry.
            Files are stored once by sha256 and each pulled version is a folder of links
            (a snapshot): `cache rm` removes snapshots, `cache prune` then deletes the files
            no snapshot links to."""
        ),
    )
    cache_sub = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    add(
        "ls",
        "list the cached versions and their size",
        _example("modelregistry cache ls", "modelregistry cache ls --json | jq '.total'"),
        description=_paragraph(
            "List the cached versions (snapshots): files, size on disk and when each was last "
            "pulled, then the cache's total. A file shared by versions counts in each, but "
            "takes space once: the total counts it once."
        ),
        under=cache_sub,
    )
    cache_rm = add(
        "rm",
        "remove the snapshot of a version, or of every version of a model",
        _example(
            "modelregistry cache rm fraud-detector:3",
            "modelregistry cache rm fraud-detector@production",
            "modelregistry cache rm fraud-detector && modelregistry cache prune",
        ),
        description=_paragraph(
            "Remove cached snapshots: NAME:N (or NAME/versions/N) one version, NAME every "
            "version of NAME, NAME@ALIAS the version ALIAS named when it was last pulled. "
            "Only the folders of links go; run `cache prune` to delete the files no other "
            "version uses."
        ),
        under=cache_sub,
    )
    cache_rm.add_argument("target", metavar="REF_OR_MODEL", help="NAME:N, NAME@ALIAS or NAME")
    cache_prune = add(
        "prune",
        "delete files no snapshot uses, abandoned downloads and stale records",
        _example(
            "modelregistry cache prune --dry-run",
            "modelregistry cache prune --incomplete-older-than 2h",
        ),
        description=_paragraph(
            "Delete cached files no snapshot links to, unfinished downloads older than "
            "--incomplete-older-than that no pull is writing, unused lock files, and the "
            "offline answers of references whose snapshot is gone. Unused files are kept "
            "while a pull is running (run prune again later). Prints the space freed."
        ),
        under=cache_sub,
    )
    cache_prune.add_argument(
        "--dry-run", action="store_true", help="report what would be deleted, change nothing"
    )
    cache_prune.add_argument(
        "--incomplete-older-than",
        default="24h",
        metavar="DURATION",
        help="only unfinished downloads last written before this, e.g. 2h, 3d (default: 24h)",
    )

    # login, logout, whoami, token --------------------------------------------------------
    from modelregistry.cli._access import add_access_commands

    add_access_commands(add, _example)
    from modelregistry.cli._governance import add_governance_commands

    add_governance_commands(add, _example)

    # audit ------------------------------------------------------------------------------
    from modelregistry.cli._audit import add_audit_commands

    add_audit_commands(add, _example)

    # serve ------------------------------------------------------------------------------
    serve = sub.add_parser(
        "serve",
        help="run the registry server (needs the modelregistry-server package)",
        description=(
            "Run `modelregistry-server serve ARGS...`. The server is a separate package: "
            "pip install modelregistry-server."
        ),
        epilog=_example(
            "modelregistry serve",
            "modelregistry serve --listen 0.0.0.0:50051 --tls-cert tls.crt --tls-key tls.key",
        ),
        formatter_class=_Formatter,
    )
    serve.add_argument("server_args", nargs=argparse.REMAINDER, metavar="ARGS")
    return parser


def default_url(url: str | None) -> str | None:
    """The ``--url`` flag, else ``$MODELREGISTRY_URL`` (the SDK applies the default)."""
    return url or os.environ.get(ENV_TARGET) or None

"""``audit verify`` and ``audit export``: the tamper-evident audit log from a shell.

The parser part (``add_audit_commands``) is called by ``build_parser``. ``verify`` exits 0 on
an intact chain (printing the head to keep) and 6 (integrity) naming the first bad event;
``export`` writes JSON Lines that ``modelregistry.audit.verify_export`` checks offline.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from google.protobuf import json_format

from modelregistry.audit import export_record
from modelregistry.cli import _format as fmt
from modelregistry.cli import _values as values
from modelregistry.cli._parser import UsageError
from modelregistry.client import Client
from modelregistry.errors import EXIT_INTEGRITY
from modelregistry.metadata.v1 import audit_chain_pb2

AddCommand = Callable[..., argparse.ArgumentParser]
_ANCHOR = re.compile(r"([1-9][0-9]{0,18}):([0-9a-f]{64})")


def add_audit_commands(add: AddCommand, example: Callable[..., str]) -> None:
    """Declare ``audit verify`` and ``audit export`` with ``build_parser``'s ``add``."""
    audit = add(
        "audit",
        "verify or export the tamper-evident audit log (registry admins)",
        example(
            "modelregistry audit verify",
            "modelregistry audit verify --anchor 1200:9f2c...e1",
            "modelregistry audit export --since 2025-01-01 --output audit.jsonl",
        ),
        description=textwrap.fill(
            "Every audit event is chained: its hash covers the hash before it and the event "
            "itself, so an edited, deleted or reordered event breaks the chain. `verify` has "
            "the server walk it; `export` writes it for a check outside the registry. Keep each "
            "head hash where the database's administrators cannot write.",
            width=88,
        ),
    )
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = add(
        "verify",
        "walk the hash chain: exit 0 and print the head, or exit 6 naming the first bad event",
        example("modelregistry audit verify --anchor 1200:9f2c...e1"),
        under=actions,
    )
    verify.add_argument(
        "--anchor",
        metavar="POSITION:HASH",
        help="a head printed by an earlier verify (kept outside the database): the chain must "
        "still hold that hash at that position",
    )
    export = add(
        "export",
        "write the audit log as JSON Lines with every field and the hashes",
        example(
            "modelregistry audit export --output audit.jsonl",
            "modelregistry audit export --since 2025-01-31T00:00:00Z | gzip > audit.jsonl.gz",
        )
        + "\n\nEach line holds the event's fields, chain_position, previous_hash and hash;"
        "\nmodelregistry.audit.verify_export(lines) recomputes the chain (README.md).",
        under=actions,
    )
    export.add_argument(
        "--since",
        metavar="TIME",
        help="start at the first event at or after TIME (ISO 8601; default: the first event)",
    )
    export.add_argument("--output", "-o", type=Path, metavar="FILE", help="default: stdout")


def cmd_audit(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``audit verify`` or ``audit export``."""
    if args.audit_command == "verify":
        return _verify(client, args, out)
    return _export(client, args, out)


def _verify(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    anchor = None
    if args.anchor:
        match = _ANCHOR.fullmatch(args.anchor.strip().lower())
        if match is None:
            raise UsageError("--anchor must be POSITION:HASH, as an earlier verify printed it")
        anchor = (int(match.group(1)), match.group(2))
    report = client.verify_audit_log(anchor=anchor)
    if args.json:
        out.write(fmt.json_text(_report_dict(report)) + "\n")
    elif report.intact:
        out.write(fmt.printable(_intact_text(report), keep="\n") + "\n")
    if report.intact:
        return 0
    problem = report.problem
    where = problem.audit_event or "no event (the end of the chain)"
    when = f" ({fmt.iso_utc(problem.event_time)})" if problem.HasField("event_time") else ""
    kind = audit_chain_pb2.AuditChainProblem.Kind.Name(problem.kind).removeprefix("KIND_")
    print(
        fmt.printable(
            f"error: the audit log's hash chain is broken ({kind.lower()}) at position "
            f"{problem.chain_position}: {where}{when}. {problem.description}"
        ),
        file=sys.stderr,
    )
    return EXIT_INTEGRITY


def _intact_text(report: audit_chain_pb2.VerifyAuditLogResponse) -> str:
    lines = [
        f"audit log intact: {report.event_count:,} events",
        f"head: position {report.head_chain_position}"
        + (f", {report.head_audit_event}" if report.head_audit_event else ""),
        f"head hash: {report.head_hash}",
        f"keep '{report.head_chain_position}:{report.head_hash}' where the database's "
        "administrators cannot write, and check it later with --anchor",
    ]
    if report.unchained_event_count:
        lines.append(f"{report.unchained_event_count} events committed meanwhile are not in it")
    return "\n".join(lines)


def _report_dict(report: audit_chain_pb2.VerifyAuditLogResponse) -> dict[str, Any]:
    return json_format.MessageToDict(
        report, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _export(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    try:
        start = values.parse_time(args.since) if args.since else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    target: TextIO = out if args.output is None else args.output.open("w", encoding="utf-8")
    count, last = 0, None
    try:
        for event in client.export_audit_log(start=start):
            # ASCII escapes: the same strings, and safe to show on a terminal.
            target.write(json.dumps(export_record(event), separators=(",", ":")) + "\n")
            count, last = count + 1, event
    finally:
        if target is not out:
            target.close()
    where = f" to {args.output}" if args.output is not None else ""
    summary = f"exported {count:,} audit events{where}"
    if last is not None:
        summary += f"; last: position {last.chain_position}, hash {last.hash}"
    print(fmt.printable(summary), file=sys.stderr)
    return 0


AUDIT_COMMANDS = {"audit": cmd_audit}

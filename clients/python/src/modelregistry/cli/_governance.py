"""``check report|list``, ``approve`` (and ``--withdraw``), ``protect``: promotion gates.

The parser part (``add_governance_commands``) is called by ``build_parser``; the commands run
with a ``Client`` like every other.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TextIO

from modelregistry._governance import check_status
from modelregistry._refs import parse_ref
from modelregistry.cli import _format as fmt
from modelregistry.cli._access import emit as _emit
from modelregistry.cli._parser import UsageError
from modelregistry.cli._values import parse_duration
from modelregistry.client import Client
from modelregistry.errors import InvalidArgumentError
from modelregistry.metadata.v1 import governance_pb2

AddCommand = Callable[..., argparse.ArgumentParser]


def add_governance_commands(add: AddCommand, example: Callable[..., str]) -> None:
    """Declare the governance commands with ``build_parser``'s ``add``."""
    check = add(
        "check",
        "report or list check results (CI) of a version",
        example(
            "modelregistry check report fraud:3 eval/accuracy PASSED --summary 'auc 0.93' "
            "--details-url https://ci.example/run/42 --metric auc=0.93",
            "modelregistry check list fraud:3",
        ),
        description=(
            "A check is a named result a CI job reports against a version (eval/accuracy, "
            "security/scan). The latest report per name counts for protected aliases; every "
            "report is kept. Reporting needs the reporter role (or maintainer/admin)."
        ),
    )
    actions = check.add_subparsers(dest="check_command", metavar="ACTION", required=True)
    report = add(
        "report",
        "report a check result against MODEL:VERSION",
        example("modelregistry check report fraud:3 load-test FAILED"),
        under=actions,
    )
    report.add_argument("version", metavar="MODEL:VERSION")
    report.add_argument("name", metavar="CHECK", help="e.g. eval/accuracy")
    report.add_argument(
        "status", metavar="STATUS", choices=("PENDING", "PASSED", "FAILED"),
        help="PENDING, PASSED or FAILED",
    )  # fmt: skip
    report.add_argument("--summary", default="", help="one line for people")
    report.add_argument(
        "--details-url", default="", metavar="URL", help="where the job's details are (http[s])"
    )
    report.add_argument(
        "--metric", action="append", default=[], metavar="KEY=VALUE", help="a figure (repeat)"
    )
    listing = add("list", "list the checks of MODEL:VERSION (latest per name)",
                  example("modelregistry check list fraud:3 --all"), under=actions)  # fmt: skip
    listing.add_argument("version", metavar="MODEL:VERSION")
    listing.add_argument("--all", action="store_true", help="every report, newest first")
    approve = add(
        "approve",
        "approve a version for an alias (a second person's judgement)",
        example(
            "modelregistry approve fraud:3 --for production --comment 'eval reviewed'",
            "modelregistry approve fraud:3 --for production --withdraw",
        ),
    )
    approve.add_argument("version", metavar="MODEL:VERSION")
    approve.add_argument("--for", dest="alias", required=True, metavar="ALIAS")
    approve.add_argument("--comment", default="", help="why")
    approve.add_argument("--withdraw", action="store_true", help="withdraw your approval")
    protect = add(
        "protect",
        "protect an alias of a model (or a prefix-*) with checks and approvals (admins)",
        example(
            "modelregistry protect fraud production --require-check eval/accuracy --approvals 1",
            "modelregistry protect 'team-a-*' production --after staging --rollback-window 3d",
            "modelregistry protect fraud production --remove",
        ),
    )
    protect.add_argument("scope", metavar="MODEL", help="a model id, or a prefix ending -*")
    protect.add_argument("alias", metavar="ALIAS")
    protect.add_argument("--require-check", action="append", default=[], metavar="CHECK")
    protect.add_argument("--approvals", type=int, default=0, help="approvals needed")
    protect.add_argument("--mover", action="append", default=[], metavar="PRINCIPAL",
                         help="who may move it (a principal or group:NAME; repeat)")  # fmt: skip
    protect.add_argument("--after", default="", metavar="ALIAS",
                         help="an alias the version must have held first")  # fmt: skip
    protect.add_argument(
        "--rollback-window",
        metavar="DURATION",
        help="moving back to a recent holder needs no gate (default 7d)",
    )
    protect.add_argument("--remove", action="store_true", help="remove the rule")


def _version(text: str) -> tuple[str, int]:
    """``(model, number)`` of ``MODEL:VERSION`` (or ``models/m/versions/n``)."""
    try:
        parsed = parse_ref(text)
    except InvalidArgumentError as exc:
        raise UsageError(str(exc)) from None
    if parsed.kind != "version":
        raise UsageError(f"{text!r} names no version number; use MODEL:VERSION, e.g. fraud:3")
    return parsed.model, int(parsed.value)


def _check_dict(check: governance_pb2.Check) -> dict[str, Any]:
    return {
        "name": check.name, "check": check.check_name, "status": check_status(check),
        "summary": check.summary, "details_url": check.details_url,
        "metrics": dict(check.metrics), "reporter": check.reporter,
        "report_time": check.report_time.ToJsonString() if check.HasField("report_time") else None,
    }  # fmt: skip


def cmd_check(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``check report|list``."""
    model, number = _version(args.version)
    if args.check_command == "report":
        metrics: dict[str, float] = {}
        for item in args.metric:
            key, _, value = item.partition("=")
            try:
                metrics[key] = float(value)
            except ValueError:
                raise UsageError(f"--metric {item!r}: expected KEY=NUMBER") from None
        check = client.report_check(
            model, number, args.name, args.status, summary=args.summary,
            details_url=args.details_url, metrics=metrics,
        )  # fmt: skip
        text = f"{model}:{number} {check.check_name}: {check_status(check)}"
        _emit(out, args, _check_dict(check), fmt.printable(text))
        return 0
    checks = client.list_checks(model, number, all_reports=args.all)
    rows = [
        (c.check_name, check_status(c), c.summary, c.reporter,
         fmt.local_time(c.report_time) if c.HasField("report_time") else "")
        for c in checks
    ]  # fmt: skip
    table = fmt.table(("CHECK", "STATUS", "SUMMARY", "REPORTER", "REPORTED"), rows)
    _emit(out, args, [_check_dict(c) for c in checks], table if checks else "no checks")
    return 0


def cmd_approve(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``approve MODEL:VERSION --for ALIAS``."""
    model, number = _version(args.version)
    if args.withdraw:
        client.withdraw_approval(model, number, args.alias)
        _emit(out, args, {"withdrawn": True}, f"withdrew your approval of {model}:{number}")
        return 0
    approval = client.approve(model, number, args.alias, comment=args.comment)
    data = {"name": approval.name, "alias": approval.alias, "approver": approval.approver,
            "comment": approval.comment}  # fmt: skip
    text = f"{approval.approver} approved {model}:{number} for {approval.alias}"
    _emit(out, args, data, fmt.printable(text))
    return 0


def cmd_protect(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    """``protect MODEL ALIAS``."""
    if args.remove:
        client.delete_protection_rule(args.scope, args.alias)
        _emit(out, args, {"removed": True}, f"{args.alias} of {args.scope} is unprotected")
        return 0
    try:
        window = None if args.rollback_window is None else parse_duration(args.rollback_window)
    except ValueError as exc:
        raise UsageError(f"--rollback-window: {exc}") from None
    rule = client.set_protection_rule(
        args.scope, args.alias, required_checks=args.require_check,
        required_approvals=args.approvals, movers=args.mover,
        required_previous_alias=args.after, rollback_window=window,
    )  # fmt: skip
    needs = ", ".join(rule.required_checks) or "no checks"
    text = f"{rule.name}: {needs}; {rule.required_approvals} approval(s)"
    data = {
        "name": rule.name,
        "required_checks": list(rule.required_checks),
        "required_approvals": rule.required_approvals,
    }
    _emit(out, args, data, fmt.printable(text))
    return 0


GOVERNANCE_COMMANDS = {"check": cmd_check, "approve": cmd_approve, "protect": cmd_protect}

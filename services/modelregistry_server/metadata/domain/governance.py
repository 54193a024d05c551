"""Promotion gates: check reports, approvals, and the protection rules of aliases.

A protected alias moves only to a version that satisfies its rule: the required checks'
latest reports are ``PASSED``, enough approvals from people other than the version's creator
and the caller (four eyes), the caller is one of the movers, and the version held the required
previous alias. The rule is evaluated inside the unit of work that moves the alias, so a report
or a withdrawal cannot race the move. Moving back to a version that held the alias within the
rollback window skips all of that: undoing a bad release must never wait for the gate that let
it through.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from modelregistry_server.metadata.domain.errors import FailedPrecondition, InvalidArgument, quoted
from modelregistry_server.metadata.domain.model import MODEL_ID_PATTERN, validate_model_id
from modelregistry_server.metadata.domain.version import KEY_PATTERN, validate_alias

CHECK_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_./-]{0,127}")
MAX_SUMMARY_BYTES = 1024
MAX_URL_BYTES = 2048
MAX_CHECK_METRICS = 100
MAX_CHECK_VERSIONS = 100  # versions of one ListChecks across versions
MAX_REQUIRED_CHECKS = 32
MAX_APPROVALS = 10
MAX_MOVERS = 64
MAX_COMMENT_BYTES = 1024
DEFAULT_ROLLBACK_WINDOW = timedelta(days=7)
MAX_ROLLBACK_WINDOW = timedelta(days=90)
RULE_PREFIX = "protectionRules/"
PROMOTION_BLOCKED = "PROMOTION_BLOCKED"


class CheckStatus(StrEnum):
    """A check's result."""

    PENDING = "PENDING"
    PASSED = "PASSED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class CheckReport:
    """One report of a check against a version."""

    model_id: str
    version: int
    check_name: str
    status: CheckStatus
    summary: str = ""
    details_url: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    reporter: str = ""
    report_time: datetime | None = None


def validate_check_versions(versions: Sequence[int]) -> None:
    """The version numbers of a ListChecks across versions: 1 to ``MAX_CHECK_VERSIONS``
    different positive numbers."""
    if not versions:
        raise InvalidArgument(
            "versions", "name the versions whose checks to list (models/{model}/versions/-)"
        )
    if len(versions) > MAX_CHECK_VERSIONS:
        raise InvalidArgument("versions", f"at most {MAX_CHECK_VERSIONS} versions at once")
    if min(versions) < 1:
        raise InvalidArgument("versions", "version numbers are positive")
    if len(set(versions)) != len(versions):
        raise InvalidArgument("versions", "lists a version twice")


def validate_check(report: CheckReport) -> None:
    """Check a report's caller-set fields."""
    if not CHECK_NAME_PATTERN.fullmatch(report.check_name):
        raise InvalidArgument(
            "check.check_name",
            f"{quoted(report.check_name)} must be 1 to 128 characters of letters, digits, '_', "
            "'.', '-' and '/', starting with a letter (e.g. 'eval/accuracy')",
        )
    if len(report.summary.encode()) > MAX_SUMMARY_BYTES:
        raise InvalidArgument("check.summary", f"is longer than {MAX_SUMMARY_BYTES} bytes")
    url = report.details_url
    if url and (len(url.encode()) > MAX_URL_BYTES or not url.startswith(("http://", "https://"))):
        raise InvalidArgument(
            "check.details_url", f"must be an http(s) URL of at most {MAX_URL_BYTES} bytes"
        )
    if len(report.metrics) > MAX_CHECK_METRICS:
        raise InvalidArgument("check.metrics", f"has more than {MAX_CHECK_METRICS} entries")
    for key, value in report.metrics.items():
        if not KEY_PATTERN.fullmatch(key) or not math.isfinite(value):
            raise InvalidArgument(
                "check.metrics", f"{quoted(key)}: keys as for version metrics, finite values"
            )


@dataclass(frozen=True)
class ProtectionRule:
    """How one alias of a model (or of a name prefix) is protected."""

    scope: str  # a model id, or a prefix ending in "-*"
    alias: str
    required_checks: tuple[str, ...] = ()
    required_approvals: int = 0
    movers: tuple[str, ...] = ()
    required_previous_alias: str = ""
    rollback_window: timedelta = DEFAULT_ROLLBACK_WINDOW
    update_time: datetime | None = None
    updated_by: str = ""

    @property
    def name(self) -> str:
        """``protectionRules/{scope}/aliases/{alias}``."""
        return rule_name(self.scope, self.alias)

    def covers(self, model_id: str) -> bool:
        """Whether the rule's scope includes ``model_id``."""
        if self.scope.endswith("*"):
            return model_id.startswith(self.scope[:-1])
        return model_id == self.scope


def rule_name(scope: str, alias: str) -> str:
    """The resource name of a rule."""
    return f"{RULE_PREFIX}{scope}/aliases/{alias}"


def parse_rule_name(name: str, field_name: str = "name") -> tuple[str, str]:
    """``(scope, alias)`` of ``protectionRules/{scope}/aliases/{alias}``."""
    parts = name.removeprefix(RULE_PREFIX).split("/") if name.startswith(RULE_PREFIX) else []
    if len(parts) != 3 or parts[1] != "aliases":
        raise InvalidArgument(
            field_name,
            f"{quoted(name)} is not a rule name; expected 'protectionRules/{{model or prefix-*}}/"
            "aliases/{alias}'",
        )
    scope, alias = parts[0], parts[2]
    if scope.endswith("-*"):
        if not MODEL_ID_PATTERN.fullmatch(scope[:-2]):
            raise InvalidArgument(field_name, f"the prefix of {quoted(scope)} is not a model id")
    else:
        validate_model_id(scope, field_name)
    return scope, validate_alias(alias, field_name)


def validate_rule(rule: ProtectionRule) -> None:
    """Check a rule's caller-set fields."""
    where = "protection_rule"
    if len(rule.required_checks) > MAX_REQUIRED_CHECKS:
        raise InvalidArgument(f"{where}.required_checks", f"at most {MAX_REQUIRED_CHECKS}")
    for check in rule.required_checks:
        if not CHECK_NAME_PATTERN.fullmatch(check):
            raise InvalidArgument(f"{where}.required_checks", f"{quoted(check)} is no check name")
    if not 0 <= rule.required_approvals <= MAX_APPROVALS:
        raise InvalidArgument(f"{where}.required_approvals", f"must be 0 to {MAX_APPROVALS}")
    if len(rule.movers) > MAX_MOVERS or any(not m or len(m) > 256 for m in rule.movers):
        raise InvalidArgument(
            f"{where}.movers", f"at most {MAX_MOVERS} principals of 1 to 256 characters"
        )
    if rule.required_previous_alias:
        validate_alias(rule.required_previous_alias, f"{where}.required_previous_alias")
    if not timedelta(0) <= rule.rollback_window <= MAX_ROLLBACK_WINDOW:
        raise InvalidArgument(
            f"{where}.rollback_window", f"must be 0 to {MAX_ROLLBACK_WINDOW.days} days"
        )


def rule_for(rules: Sequence[ProtectionRule], model_id: str) -> ProtectionRule | None:
    """The rule that applies to ``model_id``: its own, else the longest matching prefix."""
    own = [r for r in rules if r.scope == model_id]
    if own:
        return own[0]
    prefixes = [r for r in rules if r.scope.endswith("*") and r.covers(model_id)]
    return max(prefixes, key=lambda r: len(r.scope), default=None)


@dataclass(frozen=True)
class PromotionFacts:
    """What the gate looks at, read in the unit of work of the move."""

    creator: str
    caller: str
    caller_subjects: frozenset[str]  # the caller's name and "group:<g>" for its groups
    latest_checks: Mapping[str, CheckStatus]
    approvers: Collection[str]
    aliases_held: Collection[str]  # aliases the version pointed at some time (history)
    held_within_window: bool  # held this alias within the rule's rollback window
    scan_unsafe: bool = False


class Promotion(StrEnum):
    """How a move of a protected alias was let through."""

    GATED = "GATED"  # every requirement held
    ROLLBACK = "ROLLBACK"  # back to a recent holder: no gate


def evaluate(rule: ProtectionRule, facts: PromotionFacts) -> Promotion:
    """Let the move through, or raise ``PROMOTION_BLOCKED`` listing exactly what is missing.

    An ``UNSAFE`` scan verdict blocks even a rollback: a file that can run code on the servers
    loading it is never allowed to ship through a protected alias.
    """
    missing: dict[str, str] = {}
    if facts.scan_unsafe:
        missing["scan"] = "UNSAFE"
    elif facts.held_within_window and rule.rollback_window > timedelta(0):
        return Promotion.ROLLBACK
    failing = [c for c in rule.required_checks if facts.latest_checks.get(c) != CheckStatus.PASSED]
    if failing:
        missing["missing_checks"] = ",".join(failing)
    counted = {a for a in facts.approvers if a not in (facts.creator, facts.caller)}
    if len(counted) < rule.required_approvals:
        missing["approvals_needed"] = str(rule.required_approvals - len(counted))
    if rule.movers and not facts.caller_subjects & set(rule.movers):
        missing["not_a_mover"] = "true"
    previous = rule.required_previous_alias
    if previous and previous not in facts.aliases_held:
        missing["required_previous_alias"] = previous
    if missing:
        raise FailedPrecondition(
            f"the alias is protected ({rule.name}) and the version does not satisfy it: "
            + "; ".join(_explain(key, value) for key, value in missing.items()),
            reason=PROMOTION_BLOCKED,
            metadata=missing,
        )
    return Promotion.GATED


def _explain(key: str, value: str) -> str:
    return {
        "scan": "its files failed the scan (UNSAFE)",
        "missing_checks": f"checks not PASSED: {value}",
        "approvals_needed": (
            f"{value} more approval(s) needed from others than the version's creator and the caller"
        ),
        "not_a_mover": "the caller is not one of the rule's movers",
        "required_previous_alias": f"the version never held '{value}'",
    }[key]


def validate_comment(comment: str) -> str:
    """An approval's comment: at most 1024 bytes."""
    if len(comment.encode()) > MAX_COMMENT_BYTES:
        raise InvalidArgument("comment", f"is longer than {MAX_COMMENT_BYTES} bytes")
    return comment


@dataclass(frozen=True)
class Approval:
    """An approval of a version for an alias."""

    model_id: str
    version: int
    alias: str
    approver: str
    comment: str
    create_time: datetime

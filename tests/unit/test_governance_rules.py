"""The promotion gate's rule evaluation, the choice of rule, and the field checks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelregistry_server.metadata.domain.errors import FailedPrecondition, InvalidArgument
from modelregistry_server.metadata.domain.governance import (
    CheckReport,
    CheckStatus,
    Promotion,
    PromotionFacts,
    ProtectionRule,
    evaluate,
    parse_rule_name,
    rule_for,
    validate_check,
    validate_rule,
)

RULE = ProtectionRule("fraud", "production", ("eval/accuracy", "security/scan"), 2, (), "staging")


def _facts(**changes: object) -> PromotionFacts:
    base: dict[str, object] = {
        "creator": "alice",
        "caller": "carol",
        "caller_subjects": frozenset({"carol"}),
        "latest_checks": {"eval/accuracy": CheckStatus.PASSED, "security/scan": CheckStatus.PASSED},
        "approvers": ["bob", "dave"],
        "aliases_held": {"staging"},
        "held_within_window": False,
    }
    base.update(changes)
    return PromotionFacts(**base)  # type: ignore[arg-type]


def _missing(facts: PromotionFacts, rule: ProtectionRule = RULE) -> dict[str, str]:
    with pytest.raises(FailedPrecondition) as blocked:
        evaluate(rule, facts)
    assert blocked.value.reason == "PROMOTION_BLOCKED"
    return blocked.value.metadata


def test_a_version_meeting_every_requirement_passes() -> None:
    assert evaluate(RULE, _facts()) is Promotion.GATED


def test_each_missing_requirement_is_named() -> None:
    failed = {"eval/accuracy": CheckStatus.FAILED}
    assert _missing(_facts(latest_checks=failed)) == {
        "missing_checks": "eval/accuracy,security/scan"
    }
    # The creator's and the caller's approvals do not count (four eyes).
    assert _missing(_facts(approvers=["alice", "carol", "bob"])) == {"approvals_needed": "1"}
    assert _missing(_facts(aliases_held=set())) == {"required_previous_alias": "staging"}
    movers = ProtectionRule("fraud", "production", movers=("group:release",))
    assert _missing(_facts(), movers) == {"not_a_mover": "true"}
    assert evaluate(movers, _facts(caller_subjects=frozenset({"carol", "group:release"})))


def test_a_rollback_within_the_window_skips_the_gate_but_not_the_scan() -> None:
    bare = _facts(latest_checks={}, approvers=[], aliases_held=set(), held_within_window=True)
    assert evaluate(RULE, bare) is Promotion.ROLLBACK
    no_rollbacks = ProtectionRule(
        "fraud", "production", ("eval/accuracy",), rollback_window=timedelta(0)
    )
    assert "missing_checks" in _missing(bare, no_rollbacks)
    assert _missing(_facts(held_within_window=True, scan_unsafe=True)) == {"scan": "UNSAFE"}


def test_a_models_own_rule_wins_then_the_longest_prefix() -> None:
    rules = [
        ProtectionRule("team-*", "production"),
        ProtectionRule("team-a-*", "production", required_approvals=1),
        ProtectionRule("team-a-fraud", "production", required_approvals=2),
    ]
    assert rule_for(rules, "team-a-fraud") is rules[2]
    assert rule_for(rules, "team-a-churn") is rules[1]
    assert rule_for(rules, "team-b-x") is rules[0]
    assert rule_for(rules, "other") is None


def test_names_and_fields_are_checked() -> None:
    assert parse_rule_name("protectionRules/team-a-*/aliases/production") == (
        "team-a-*",
        "production",
    )
    for bad in (
        "protectionRules/Fraud/aliases/production",
        "rules/fraud/aliases/p",
        "protectionRules/x",
    ):
        with pytest.raises(InvalidArgument):
            parse_rule_name(bad)
    with pytest.raises(InvalidArgument):
        validate_rule(ProtectionRule("fraud", "production", required_approvals=11))
    with pytest.raises(InvalidArgument):
        validate_rule(ProtectionRule("fraud", "p", rollback_window=timedelta(days=91)))
    with pytest.raises(InvalidArgument):
        validate_check(CheckReport("m", 1, "eval accuracy", CheckStatus.PASSED))
    with pytest.raises(InvalidArgument):
        validate_check(CheckReport("m", 1, "eval", CheckStatus.PASSED, details_url="ftp://x"))

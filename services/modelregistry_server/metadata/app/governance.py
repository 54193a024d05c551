"""Governance use cases: report checks, set protection rules, approve versions; the gate that
``SetAlias`` runs inside its unit of work (``gate``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from modelregistry_server.common.kernel.audit import AuditEntry
from modelregistry_server.common.kernel.request_ids import validate_request_id
from modelregistry_server.metadata.app.ports import UnitOfWork, UnitOfWorkFactory
from modelregistry_server.metadata.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    not_found,
)
from modelregistry_server.metadata.domain.governance import (
    Approval,
    CheckReport,
    Promotion,
    PromotionFacts,
    ProtectionRule,
    evaluate,
    parse_rule_name,
    rule_for,
    validate_check,
    validate_check_versions,
    validate_comment,
    validate_rule,
)
from modelregistry_server.metadata.domain.model import parse_model_name, validate_model_id
from modelregistry_server.metadata.domain.scanning import Verdict
from modelregistry_server.metadata.domain.version import (
    ModelVersion,
    VersionState,
    parse_version_name,
    validate_alias,
    version_name,
)

Clock = Callable[[], datetime]
ALL_VERSIONS = "/versions/-"  # AIP-159: every version of the model


async def gate(
    uow: UnitOfWork,
    target: ModelVersion,
    alias: str,
    actor: str,
    subjects: frozenset[str],
    now: datetime,
) -> Promotion | None:
    """Judge a move of ``alias`` to ``target`` in ``uow``; None when the alias is unprotected.

    Raises:
        FailedPrecondition: ``PROMOTION_BLOCKED``, listing what is missing.
    """
    rule = rule_for(await uow.governance.rules(alias), target.model_id)
    if rule is None:
        return None
    model_id, number = target.model_id, target.version
    latest = await uow.governance.checks(model_id, number, every=False)
    approvals = await uow.governance.approvals(model_id, number)
    facts = PromotionFacts(
        creator=target.created_by,
        caller=actor,
        caller_subjects=subjects | {actor},
        latest_checks={c.check_name: c.status for c in latest},
        approvers=[a.approver for a in approvals if a.alias == alias],
        aliases_held=await uow.governance.aliases_held(model_id, number),
        held_within_window=await uow.governance.held_since(
            model_id, alias, number, now - rule.rollback_window
        ),
        scan_unsafe=target.scan_verdict == Verdict.UNSAFE,
    )
    return evaluate(rule, facts)


class GovernanceService:
    """Check reports, protection rules and approvals."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock = lambda: datetime.now(UTC)) -> None:
        self._uow = uow
        self._clock = clock

    async def report_check(
        self, parent: str, report: CheckReport, actor: str, request_id: str = ""
    ) -> CheckReport:
        """Record a check report against a version (not a DELETED one)."""
        model_id, number = parse_version_name(parent, "parent")
        validate_check(report)
        request = validate_request_id(request_id)
        resource = f"{version_name(model_id, number)}/checks/{report.check_name}"
        async with self._uow() as uow:
            await _live(uow, model_id, number)
            if not await uow.claim_request(request, "ReportCheck", resource):
                latest = await uow.governance.checks(model_id, number, every=False)
                return next(c for c in latest if c.check_name == report.check_name)
            stored = await uow.governance.add_check(
                CheckReport(
                    model_id, number, report.check_name, report.status, report.summary,
                    report.details_url, report.metrics, actor,
                )
            )  # fmt: skip
            await uow.audit(
                AuditEntry(
                    actor, "ReportCheck", resource, model_id, None,
                    {"status": stored.status.value, "summary": stored.summary,
                     "details_url": stored.details_url},
                    request,
                )
            )  # fmt: skip
            return stored

    async def list_checks(
        self, parent: str, every: bool, versions: Sequence[int] = ()
    ) -> list[CheckReport]:
        """The latest report per check name, or every report; with the parent
        ``models/{model}/versions/-``, the latest per check name of each of ``versions``."""
        if parent.endswith(ALL_VERSIONS):
            model_id = parse_model_name(parent.removesuffix(ALL_VERSIONS), "parent")
            validate_check_versions(versions)
            if every:
                raise InvalidArgument(
                    "all_reports", "is not allowed with the parent models/{model}/versions/-"
                )
            async with self._uow() as uow:
                return await uow.governance.latest_checks_of(model_id, versions)
        if versions:
            raise InvalidArgument(
                "versions", "is only allowed with the parent models/{model}/versions/-"
            )
        model_id, number = parse_version_name(parent, "parent")
        async with self._uow() as uow:
            await _live(uow, model_id, number)
            return await uow.governance.checks(model_id, number, every)

    async def set_rule(
        self, rule: ProtectionRule, actor: str, request_id: str = ""
    ) -> ProtectionRule:
        """Create or replace a rule (the caller is a registry admin: the rpc layer checks)."""
        validate_rule(rule)
        request = validate_request_id(request_id)
        async with self._uow() as uow:
            if not await uow.claim_request(request, "SetProtectionRule", rule.name):
                current = await uow.governance.get_rule(rule.scope, rule.alias)
                if current is not None:
                    return current
            before = await uow.governance.get_rule(rule.scope, rule.alias)
            stored = await uow.governance.put_rule(rule, actor)
            await uow.audit(
                AuditEntry(
                    actor, "SetProtectionRule", stored.name, _model_of(stored.scope),
                    None if before is None else _snapshot(before), _snapshot(stored), request,
                )
            )  # fmt: skip
            return stored

    async def list_rules(self) -> list[ProtectionRule]:
        """Every rule."""
        async with self._uow() as uow:
            return await uow.governance.rules()

    async def delete_rule(self, name: str, actor: str, request_id: str = "") -> None:
        """Delete a rule."""
        scope, alias = parse_rule_name(name)
        request = validate_request_id(request_id)
        async with self._uow() as uow:
            if not await uow.claim_request(request, "DeleteProtectionRule", name):
                return
            deleted = await uow.governance.delete_rule(scope, alias)
            if deleted is None:
                raise not_found(name)
            await uow.audit(
                AuditEntry(
                    actor, "DeleteProtectionRule", name, _model_of(scope), _snapshot(deleted),
                    None, request,
                )
            )  # fmt: skip

    async def approve(
        self, name: str, alias: str, comment: str, actor: str, request_id: str = ""
    ) -> Approval:
        """Approve a READY version for ``alias`` (four eyes are counted at the move)."""
        model_id, number = parse_version_name(name)
        validate_alias(alias)
        validate_comment(comment)
        request = validate_request_id(request_id)
        resource = f"{version_name(model_id, number)}/approvals/{alias}"
        async with self._uow() as uow:
            version = await _live(uow, model_id, number)
            if version.created_by == actor:
                raise FailedPrecondition(
                    f"{version_name(model_id, number)} was created by {actor}, who cannot "
                    "approve it: approvals are a second person's (four eyes)",
                    reason="SELF_APPROVAL",
                )
            await uow.claim_request(request, "ApproveModelVersion", resource)
            stored = await uow.governance.approve(
                Approval(model_id, number, alias, actor, comment, self._clock())
            )
            await uow.audit(
                AuditEntry(
                    actor, "ApproveModelVersion", resource, model_id, None,
                    {"alias": alias, "comment": comment}, request,
                )
            )  # fmt: skip
            return stored

    async def withdraw(self, name: str, alias: str, actor: str, request_id: str = "") -> None:
        """Withdraw the caller's approval."""
        model_id, number = parse_version_name(name)
        validate_alias(alias)
        request = validate_request_id(request_id)
        resource = f"{version_name(model_id, number)}/approvals/{alias}"
        async with self._uow() as uow:
            if not await uow.claim_request(request, "WithdrawApproval", resource):
                return
            if not await uow.governance.withdraw(model_id, number, alias, actor):
                raise not_found(f"{resource} by {actor}")
            await uow.audit(
                AuditEntry(
                    actor, "WithdrawApproval", resource, model_id, {"alias": alias}, None,
                    request,
                )
            )  # fmt: skip

    async def list_approvals(self, parent: str) -> list[Approval]:
        """The approvals in force of a version."""
        model_id, number = parse_version_name(parent, "parent")
        async with self._uow() as uow:
            await _live(uow, model_id, number)
            return await uow.governance.approvals(model_id, number)


async def _live(uow: UnitOfWork, model_id: str, number: int) -> ModelVersion:
    version = await uow.versions.lock(model_id, number)
    if version is None or version.state is VersionState.DELETED:
        raise not_found(version_name(model_id, number))
    return version


def _model_of(scope: str) -> str | None:
    """The model an audit event of a rule belongs to (None for a prefix rule: registry-wide)."""
    return None if scope.endswith("*") else validate_model_id(scope)


def _snapshot(rule: ProtectionRule) -> dict[str, object]:
    return {
        "required_checks": list(rule.required_checks),
        "required_approvals": rule.required_approvals,
        "movers": list(rule.movers),
        "required_previous_alias": rule.required_previous_alias,
        "rollback_window_s": int(rule.rollback_window.total_seconds()),
    }

"""The synchronous client's governance calls: checks, approvals and protection rules.

A mixin of :class:`~modelregistry.client.Client`. A CI job reports what it found with
:meth:`~GovernanceCalls.report_check`; a reviewer approves with
:meth:`~GovernanceCalls.approve`; an admin protects an alias with
:meth:`~GovernanceCalls.set_protection_rule`. A move of a protected alias that its rule does not
allow raises :class:`~modelregistry.errors.FailedPreconditionError` with reason
``PROMOTION_BLOCKED``; its ``metadata`` says what is missing (``missing_checks``,
``approvals_needed``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from modelregistry import _convert
from modelregistry.metadata.v1 import governance_pb2

if TYPE_CHECKING:
    from modelregistry._transport import AsyncTransport, Transport

CheckStatus = Literal["PENDING", "PASSED", "FAILED"]
_STATUS = {
    "PENDING": governance_pb2.Check.STATUS_PENDING,
    "PASSED": governance_pb2.Check.STATUS_PASSED,
    "FAILED": governance_pb2.Check.STATUS_FAILED,
}


def report_check_request(
    model: str, version: int, name: str, status: str, summary: str, details_url: str,
    metrics: Mapping[str, float] | None,
) -> governance_pb2.ReportCheckRequest:  # fmt: skip
    """The ``ReportCheck`` request (``ValueError`` for an unknown status)."""
    if status not in _STATUS:
        raise ValueError(f"status must be PENDING, PASSED or FAILED, not {status!r}")
    check = governance_pb2.Check(
        check_name=name, status=_STATUS[status], summary=summary, details_url=details_url,
        metrics=dict(metrics or {}),
    )  # fmt: skip
    return governance_pb2.ReportCheckRequest(
        parent=_convert.version_name(model, version), check=check
    )


def protection_rule_request(
    scope: str, alias: str, required_checks: Sequence[str], required_approvals: int,
    movers: Sequence[str], required_previous_alias: str, rollback_window: timedelta | None,
) -> governance_pb2.SetProtectionRuleRequest:  # fmt: skip
    """The ``SetProtectionRule`` request."""
    rule = governance_pb2.ProtectionRule(
        name=f"protectionRules/{scope}/aliases/{alias}", required_checks=list(required_checks),
        required_approvals=required_approvals, movers=list(movers),
        required_previous_alias=required_previous_alias,
    )  # fmt: skip
    if rollback_window is not None:
        rule.rollback_window.FromTimedelta(rollback_window)
    return governance_pb2.SetProtectionRuleRequest(protection_rule=rule)


def check_status(check: governance_pb2.Check) -> str:
    """``PENDING``, ``PASSED`` or ``FAILED``."""
    return governance_pb2.Check.Status.Name(check.status).removeprefix("STATUS_")


class GovernanceCalls:
    """Checks, approvals and protection rules (see the module docstring)."""

    def _governance_transport(self, operation: str) -> Transport:
        raise NotImplementedError  # the client provides it (its transport, unless offline)

    def report_check(
        self,
        model: str,
        version: int,
        name: str,
        status: CheckStatus,
        *,
        summary: str = "",
        details_url: str = "",
        metrics: Mapping[str, float] | None = None,
    ) -> governance_pb2.Check:
        """Report a check result against a version (needs the ``reporter`` role or more).

        The latest report per ``name`` is the one a protected alias looks at.
        """
        request = report_check_request(model, version, name, status, summary, details_url, metrics)
        t = self._governance_transport("report_check")
        return t.unary(t.metadata_stub.ReportCheck, request)

    def list_checks(
        self, model: str, version: int, *, all_reports: bool = False
    ) -> list[governance_pb2.Check]:
        """The latest report per check name, or every report (newest first)."""
        t = self._governance_transport("list_checks")
        request = governance_pb2.ListChecksRequest(
            parent=_convert.version_name(model, version), all_reports=all_reports
        )
        return list(t.unary(t.metadata_stub.ListChecks, request).checks)

    def approve(
        self, model: str, version: int, alias: str, *, comment: str = ""
    ) -> governance_pb2.Approval:
        """Approve a version for ``alias``; the version's creator cannot (``SELF_APPROVAL``)."""
        t = self._governance_transport("approve")
        request = governance_pb2.ApproveModelVersionRequest(
            name=_convert.version_name(model, version), alias=alias, comment=comment
        )
        return t.unary(t.metadata_stub.ApproveModelVersion, request)

    def withdraw_approval(self, model: str, version: int, alias: str) -> None:
        """Withdraw your approval of a version for ``alias``."""
        t = self._governance_transport("withdraw_approval")
        request = governance_pb2.WithdrawApprovalRequest(
            name=_convert.version_name(model, version), alias=alias
        )
        t.unary(t.metadata_stub.WithdrawApproval, request)

    def list_approvals(self, model: str, version: int) -> list[governance_pb2.Approval]:
        """The approvals in force of a version."""
        t = self._governance_transport("list_approvals")
        request = governance_pb2.ListApprovalsRequest(parent=_convert.version_name(model, version))
        return list(t.unary(t.metadata_stub.ListApprovals, request).approvals)

    def set_protection_rule(
        self,
        scope: str,
        alias: str,
        *,
        required_checks: Sequence[str] = (),
        required_approvals: int = 0,
        movers: Sequence[str] = (),
        required_previous_alias: str = "",
        rollback_window: timedelta | None = None,
    ) -> governance_pb2.ProtectionRule:
        """Protect ``alias`` of model ``scope`` (or of every model with prefix ``team-*``).

        Registry admins only. ``rollback_window`` defaults to 7 days on the server.
        """
        t = self._governance_transport("set_protection_rule")
        request = protection_rule_request(
            scope, alias, required_checks, required_approvals, movers,
            required_previous_alias, rollback_window,
        )  # fmt: skip
        return t.unary(t.metadata_stub.SetProtectionRule, request)

    def list_protection_rules(self) -> list[governance_pb2.ProtectionRule]:
        """Every protection rule."""
        t = self._governance_transport("list_protection_rules")
        request = governance_pb2.ListProtectionRulesRequest()
        return list(t.unary(t.metadata_stub.ListProtectionRules, request).protection_rules)

    def delete_protection_rule(self, scope: str, alias: str) -> None:
        """Remove the rule of ``alias`` of ``scope`` (registry admins only)."""
        t = self._governance_transport("delete_protection_rule")
        request = governance_pb2.DeleteProtectionRuleRequest(
            name=f"protectionRules/{scope}/aliases/{alias}"
        )
        t.unary(t.metadata_stub.DeleteProtectionRule, request)


class AsyncGovernanceCalls:
    """The ``async`` twin of :class:`GovernanceCalls` (same arguments, awaited)."""

    def _governance_transport(self, operation: str) -> AsyncTransport:
        raise NotImplementedError  # the async client provides it

    async def report_check(
        self, model: str, version: int, name: str, status: CheckStatus, *, summary: str = "",
        details_url: str = "", metrics: Mapping[str, float] | None = None,
    ) -> governance_pb2.Check:  # fmt: skip
        """See :meth:`GovernanceCalls.report_check`."""
        request = report_check_request(model, version, name, status, summary, details_url, metrics)
        t = self._governance_transport("report_check")
        return await t.unary(t.metadata_stub.ReportCheck, request)

    async def list_checks(
        self, model: str, version: int, *, all_reports: bool = False
    ) -> list[governance_pb2.Check]:
        """See :meth:`GovernanceCalls.list_checks`."""
        t = self._governance_transport("list_checks")
        request = governance_pb2.ListChecksRequest(
            parent=_convert.version_name(model, version), all_reports=all_reports
        )
        return list((await t.unary(t.metadata_stub.ListChecks, request)).checks)

    async def approve(
        self, model: str, version: int, alias: str, *, comment: str = ""
    ) -> governance_pb2.Approval:
        """See :meth:`GovernanceCalls.approve`."""
        t = self._governance_transport("approve")
        request = governance_pb2.ApproveModelVersionRequest(
            name=_convert.version_name(model, version), alias=alias, comment=comment
        )
        return await t.unary(t.metadata_stub.ApproveModelVersion, request)

    async def withdraw_approval(self, model: str, version: int, alias: str) -> None:
        """See :meth:`GovernanceCalls.withdraw_approval`."""
        t = self._governance_transport("withdraw_approval")
        request = governance_pb2.WithdrawApprovalRequest(
            name=_convert.version_name(model, version), alias=alias
        )
        await t.unary(t.metadata_stub.WithdrawApproval, request)

    async def list_approvals(self, model: str, version: int) -> list[governance_pb2.Approval]:
        """See :meth:`GovernanceCalls.list_approvals`."""
        t = self._governance_transport("list_approvals")
        request = governance_pb2.ListApprovalsRequest(parent=_convert.version_name(model, version))
        return list((await t.unary(t.metadata_stub.ListApprovals, request)).approvals)

    async def set_protection_rule(
        self, scope: str, alias: str, *, required_checks: Sequence[str] = (),
        required_approvals: int = 0, movers: Sequence[str] = (),
        required_previous_alias: str = "", rollback_window: timedelta | None = None,
    ) -> governance_pb2.ProtectionRule:  # fmt: skip
        """See :meth:`GovernanceCalls.set_protection_rule`."""
        t = self._governance_transport("set_protection_rule")
        request = protection_rule_request(
            scope, alias, required_checks, required_approvals, movers,
            required_previous_alias, rollback_window,
        )  # fmt: skip
        return await t.unary(t.metadata_stub.SetProtectionRule, request)

    async def list_protection_rules(self) -> list[governance_pb2.ProtectionRule]:
        """See :meth:`GovernanceCalls.list_protection_rules`."""
        t = self._governance_transport("list_protection_rules")
        request = governance_pb2.ListProtectionRulesRequest()
        return list((await t.unary(t.metadata_stub.ListProtectionRules, request)).protection_rules)

    async def delete_protection_rule(self, scope: str, alias: str) -> None:
        """See :meth:`GovernanceCalls.delete_protection_rule`."""
        t = self._governance_transport("delete_protection_rule")
        request = governance_pb2.DeleteProtectionRuleRequest(
            name=f"protectionRules/{scope}/aliases/{alias}"
        )
        await t.unary(t.metadata_stub.DeleteProtectionRule, request)

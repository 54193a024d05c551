"""The governance RPCs of MetadataService (checks, protection rules, approvals), as a mixin of
``MetadataServicer``: translation only, the rules live in ``metadata/app/governance.py``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import empty_pb2

from modelregistry.metadata.v1 import governance_pb2
from modelregistry_server.common.rpc.handlers import unary_errors
from modelregistry_server.common.rpc.proto_time import request_duration, timestamp
from modelregistry_server.common.rpc.status import to_status
from modelregistry_server.metadata.app.governance import GovernanceService
from modelregistry_server.metadata.domain.errors import InvalidArgument
from modelregistry_server.metadata.domain.governance import (
    DEFAULT_ROLLBACK_WINDOW,
    Approval,
    CheckReport,
    CheckStatus,
    ProtectionRule,
    parse_rule_name,
)
from modelregistry_server.metadata.domain.version import version_name

_Context = grpc.aio.ServicerContext[Any, Any]
_STATUS_TO_PROTO = {
    CheckStatus.PENDING: governance_pb2.Check.STATUS_PENDING,
    CheckStatus.PASSED: governance_pb2.Check.STATUS_PASSED,
    CheckStatus.FAILED: governance_pb2.Check.STATUS_FAILED,
}
_STATUS_FROM_PROTO = {number: status for status, number in _STATUS_TO_PROTO.items()}


class GovernanceRpc:
    """ReportCheck, ListChecks, protection rules and approvals."""

    _governance: GovernanceService

    def _caller(self, context: _Context) -> str:
        raise NotImplementedError  # MetadataServicer provides it

    @unary_errors(to_status)
    async def ReportCheck(  # noqa: N802
        self, request: governance_pb2.ReportCheckRequest, context: _Context
    ) -> governance_pb2.Check:
        """See the proto."""
        check = request.check
        status = _STATUS_FROM_PROTO.get(check.status)
        if status is None:
            raise InvalidArgument("check.status", "must be PENDING, PASSED or FAILED")
        report = CheckReport(
            "", 0, check.check_name, status, check.summary, check.details_url,
            dict(check.metrics),
        )  # fmt: skip
        stored = await self._governance.report_check(
            request.parent, report, self._caller(context), request.request_id
        )
        return check_to_proto(stored)

    @unary_errors(to_status)
    async def ListChecks(  # noqa: N802
        self, request: governance_pb2.ListChecksRequest, context: _Context
    ) -> governance_pb2.ListChecksResponse:
        """See the proto."""
        checks = await self._governance.list_checks(
            request.parent, request.all_reports, list(request.versions)
        )
        return governance_pb2.ListChecksResponse(checks=[check_to_proto(c) for c in checks])

    @unary_errors(to_status)
    async def SetProtectionRule(  # noqa: N802
        self, request: governance_pb2.SetProtectionRuleRequest, context: _Context
    ) -> governance_pb2.ProtectionRule:
        """See the proto."""
        wire = request.protection_rule
        scope, alias = parse_rule_name(wire.name, "protection_rule.name")
        window = request_duration(wire, "rollback_window")
        rule = ProtectionRule(
            scope, alias, tuple(wire.required_checks), wire.required_approvals,
            tuple(wire.movers), wire.required_previous_alias,
            DEFAULT_ROLLBACK_WINDOW if window is None else window,
        )  # fmt: skip
        stored = await self._governance.set_rule(rule, self._caller(context), request.request_id)
        return rule_to_proto(stored)

    @unary_errors(to_status)
    async def ListProtectionRules(  # noqa: N802
        self, request: governance_pb2.ListProtectionRulesRequest, context: _Context
    ) -> governance_pb2.ListProtectionRulesResponse:
        """See the proto."""
        rules = await self._governance.list_rules()
        return governance_pb2.ListProtectionRulesResponse(
            protection_rules=[rule_to_proto(r) for r in rules]
        )

    @unary_errors(to_status)
    async def DeleteProtectionRule(  # noqa: N802
        self, request: governance_pb2.DeleteProtectionRuleRequest, context: _Context
    ) -> empty_pb2.Empty:
        """See the proto."""
        await self._governance.delete_rule(request.name, self._caller(context), request.request_id)
        return empty_pb2.Empty()

    @unary_errors(to_status)
    async def ApproveModelVersion(  # noqa: N802
        self, request: governance_pb2.ApproveModelVersionRequest, context: _Context
    ) -> governance_pb2.Approval:
        """See the proto."""
        approval = await self._governance.approve(
            request.name, request.alias, request.comment, self._caller(context),
            request.request_id,
        )  # fmt: skip
        return approval_to_proto(approval)

    @unary_errors(to_status)
    async def WithdrawApproval(  # noqa: N802
        self, request: governance_pb2.WithdrawApprovalRequest, context: _Context
    ) -> empty_pb2.Empty:
        """See the proto."""
        await self._governance.withdraw(
            request.name, request.alias, self._caller(context), request.request_id
        )
        return empty_pb2.Empty()

    @unary_errors(to_status)
    async def ListApprovals(  # noqa: N802
        self, request: governance_pb2.ListApprovalsRequest, context: _Context
    ) -> governance_pb2.ListApprovalsResponse:
        """See the proto."""
        approvals = await self._governance.list_approvals(request.parent)
        return governance_pb2.ListApprovalsResponse(
            approvals=[approval_to_proto(a) for a in approvals]
        )


def check_to_proto(report: CheckReport) -> governance_pb2.Check:
    """The wire form of a check report."""
    check = governance_pb2.Check(
        name=f"{version_name(report.model_id, report.version)}/checks/{report.check_name}",
        check_name=report.check_name,
        status=_STATUS_TO_PROTO[report.status],
        summary=report.summary,
        details_url=report.details_url,
        metrics=dict(report.metrics),
        reporter=report.reporter,
    )
    if report.report_time is not None:
        check.report_time.CopyFrom(timestamp(report.report_time))
    return check


def rule_to_proto(rule: ProtectionRule) -> governance_pb2.ProtectionRule:
    """The wire form of a protection rule."""
    wire = governance_pb2.ProtectionRule(
        name=rule.name,
        required_checks=rule.required_checks,
        required_approvals=rule.required_approvals,
        movers=rule.movers,
        required_previous_alias=rule.required_previous_alias,
        updated_by=rule.updated_by,
    )
    wire.rollback_window.FromTimedelta(rule.rollback_window or timedelta(0))
    if rule.update_time is not None:
        wire.update_time.CopyFrom(timestamp(rule.update_time))
    return wire


def approval_to_proto(approval: Approval) -> governance_pb2.Approval:
    """The wire form of an approval."""
    return governance_pb2.Approval(
        name=(
            f"{version_name(approval.model_id, approval.version)}/approvals/"
            f"{approval.alias}.{approval.approver}"
        ),
        alias=approval.alias,
        approver=approval.approver,
        comment=approval.comment,
        create_time=timestamp(approval.create_time),
    )

"""``GovernanceStore`` on one transaction's connection (queries in ``governance.sql``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelregistry_server.common.adapters.sql import load_queries
from modelregistry_server.metadata.domain.governance import (
    Approval,
    CheckReport,
    CheckStatus,
    ProtectionRule,
)

if TYPE_CHECKING:
    from modelregistry_server.common.adapters.db import Connection

QUERIES = load_queries(Path(__file__).parent / "governance.sql")


class PostgresGovernanceStore:
    """Check reports, protection rules and approvals."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add_check(self, report: CheckReport) -> CheckReport:
        """See the port."""
        row = await self._conn.fetchrow(
            QUERIES["insert_check"], report.model_id, report.version, report.check_name,
            report.status.value, report.summary, report.details_url,
            json.dumps(dict(report.metrics)), report.reporter,
        )  # fmt: skip
        assert row is not None  # INSERT … RETURNING
        return _check(row)

    async def checks(self, model_id: str, version: int, every: bool) -> list[CheckReport]:
        """See the port."""
        query = QUERIES["all_checks" if every else "latest_checks"]
        return [_check(row) for row in await self._conn.fetch(query, model_id, version)]

    async def latest_checks_of(self, model_id: str, versions: Sequence[int]) -> list[CheckReport]:
        """See the port."""
        rows = await self._conn.fetch(QUERIES["latest_checks_of"], model_id, list(versions))
        return [_check(row) for row in rows]

    async def put_rule(self, rule: ProtectionRule, actor: str) -> ProtectionRule:
        """See the port."""
        row = await self._conn.fetchrow(
            QUERIES["put_rule"], rule.scope, rule.alias, list(rule.required_checks),
            rule.required_approvals, list(rule.movers), rule.required_previous_alias,
            int(rule.rollback_window.total_seconds()), actor,
        )  # fmt: skip
        assert row is not None
        return _rule(row)

    async def get_rule(self, scope: str, alias: str) -> ProtectionRule | None:
        """See the port."""
        row = await self._conn.fetchrow(QUERIES["get_rule"], scope, alias)
        return None if row is None else _rule(row)

    async def rules(self, alias: str | None = None) -> list[ProtectionRule]:
        """See the port."""
        if alias is None:
            rows = await self._conn.fetch(QUERIES["list_rules"])
        else:
            rows = await self._conn.fetch(QUERIES["rules_for_alias"], alias)
        return [_rule(row) for row in rows]

    async def delete_rule(self, scope: str, alias: str) -> ProtectionRule | None:
        """See the port."""
        row = await self._conn.fetchrow(QUERIES["delete_rule"], scope, alias)
        return None if row is None else _rule(row)

    async def approve(self, approval: Approval) -> Approval:
        """See the port."""
        row = await self._conn.fetchrow(
            QUERIES["put_approval"], approval.model_id, approval.version, approval.alias,
            approval.approver, approval.comment,
        )  # fmt: skip
        assert row is not None
        return _approval(row)

    async def withdraw(self, model_id: str, version: int, alias: str, approver: str) -> bool:
        """See the port."""
        row = await self._conn.fetchrow(
            QUERIES["delete_approval"], model_id, version, alias, approver
        )
        return row is not None

    async def approvals(self, model_id: str, version: int) -> list[Approval]:
        """See the port."""
        rows = await self._conn.fetch(QUERIES["approvals_of"], model_id, version)
        return [_approval(row) for row in rows]

    async def aliases_held(self, model_id: str, version: int) -> set[str]:
        """See the port."""
        rows = await self._conn.fetch(QUERIES["aliases_held"], model_id, version)
        return {row["alias"] for row in rows}

    async def held_since(self, model_id: str, alias: str, version: int, since: datetime) -> bool:
        """See the port."""
        held = await self._conn.fetchval(QUERIES["held_since"], model_id, alias, version, since)
        return bool(held)


def _check(row: Any) -> CheckReport:
    return CheckReport(
        model_id=row["model_id"],
        version=row["version"],
        check_name=row["check_name"],
        status=CheckStatus(row["status"]),
        summary=row["summary"],
        details_url=row["details_url"],
        metrics=json.loads(row["metrics"]) if isinstance(row["metrics"], str) else row["metrics"],
        reporter=row["reporter"],
        report_time=row["report_time"],
    )


def _rule(row: Any) -> ProtectionRule:
    return ProtectionRule(
        scope=row["scope"],
        alias=row["alias"],
        required_checks=tuple(row["required_checks"]),
        required_approvals=row["required_approvals"],
        movers=tuple(row["movers"]),
        required_previous_alias=row["required_previous_alias"],
        rollback_window=timedelta(seconds=row["rollback_window_s"]),
        update_time=row["update_time"],
        updated_by=row["updated_by"],
    )


def _approval(row: Any) -> Approval:
    return Approval(
        model_id=row["model_id"],
        version=row["version"],
        alias=row["alias"],
        approver=row["approver"],
        comment=row["comment"],
        create_time=row["create_time"],
    )

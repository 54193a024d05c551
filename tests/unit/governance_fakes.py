"""An in-memory ``GovernanceStore`` over the fake registry's state (tests/unit/fakes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from modelregistry_server.metadata.domain.governance import Approval, CheckReport, ProtectionRule

if TYPE_CHECKING:
    from tests.unit.fakes import InMemoryRegistry


class InMemoryGovernance:
    """Reports, rules and approvals in ``registry.state.governance`` (rolled back with it)."""

    def __init__(self, registry: InMemoryRegistry) -> None:
        self._r = registry

    @property
    def _g(self) -> dict[str, list[object]]:
        return self._r.state.governance

    async def add_check(self, report: CheckReport) -> CheckReport:
        now, _ = self._r.tick()
        stored = CheckReport(
            report.model_id, report.version, report.check_name, report.status, report.summary,
            report.details_url, report.metrics, report.reporter, now,
        )  # fmt: skip
        self._g.setdefault("checks", []).append(stored)
        return stored

    async def checks(self, model_id: str, version: int, every: bool) -> list[CheckReport]:
        mine = [
            c
            for c in self._g.get("checks", [])
            if isinstance(c, CheckReport) and (c.model_id, c.version) == (model_id, version)
        ]
        if every:
            return mine[::-1]
        latest: dict[str, CheckReport] = {c.check_name: c for c in mine}
        return [latest[name] for name in sorted(latest)]

    async def latest_checks_of(self, model_id: str, versions: Sequence[int]) -> list[CheckReport]:
        # The fake keeps no versions: every asked version counts as live.
        return [c for v in sorted(set(versions)) for c in await self.checks(model_id, v, False)]

    async def put_rule(self, rule: ProtectionRule, actor: str) -> ProtectionRule:
        await self.delete_rule(rule.scope, rule.alias)
        now, _ = self._r.tick()
        stored = ProtectionRule(
            rule.scope, rule.alias, rule.required_checks, rule.required_approvals, rule.movers,
            rule.required_previous_alias, rule.rollback_window, now, actor,
        )  # fmt: skip
        self._g.setdefault("rules", []).append(stored)
        return stored

    async def get_rule(self, scope: str, alias: str) -> ProtectionRule | None:
        return next((r for r in await self.rules() if (r.scope, r.alias) == (scope, alias)), None)

    async def rules(self, alias: str | None = None) -> list[ProtectionRule]:
        rules = [r for r in self._g.get("rules", []) if isinstance(r, ProtectionRule)]
        return [r for r in rules if alias is None or r.alias == alias]

    async def delete_rule(self, scope: str, alias: str) -> ProtectionRule | None:
        found = await self.get_rule(scope, alias)
        if found is not None:
            self._g["rules"] = [r for r in self._g["rules"] if r is not found]
        return found

    async def approve(self, approval: Approval) -> Approval:
        await self.withdraw(approval.model_id, approval.version, approval.alias, approval.approver)
        self._g.setdefault("approvals", []).append(approval)
        return approval

    async def withdraw(self, model_id: str, version: int, alias: str, approver: str) -> bool:
        key = (model_id, version, alias, approver)
        kept = [
            a
            for a in self._g.get("approvals", [])
            if not (isinstance(a, Approval) and (a.model_id, a.version, a.alias, a.approver) == key)
        ]
        removed = len(kept) != len(self._g.get("approvals", []))
        self._g["approvals"] = kept
        return removed

    async def approvals(self, model_id: str, version: int) -> list[Approval]:
        return [
            a
            for a in self._g.get("approvals", [])
            if isinstance(a, Approval) and (a.model_id, a.version) == (model_id, version)
        ]

    async def aliases_held(self, model_id: str, version: int) -> set[str]:
        return {a for m, a, v in self._r.state.alias_history if (m, v) == (model_id, version)}

    async def held_since(self, model_id: str, alias: str, version: int, since: datetime) -> bool:
        # The fake keeps no times in its history: any past holder counts as recent.
        history = [v for m, a, v in self._r.state.alias_history if (m, a) == (model_id, alias)]
        return version in history

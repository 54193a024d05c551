"""A real promotion gate, walked over gRPC against PostgreSQL with four principals.

Alice (maintainer) pushes and moves, Bob (maintainer) approves, the CI job (reporter) reports
checks, the admin sets the rule. ``production`` of model ``fraud`` needs ``eval/accuracy``
PASSED and one approval from someone other than the creator and the mover.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from modelregistry._governance import check_status
from modelregistry.access.v1 import access_service_pb2_grpc
from modelregistry.metadata.v1 import governance_pb2 as gov
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import metadata_service_pb2_grpc, model_pb2
from tests.conftest import RunningRegistry
from tests.support.artifacts import sha256_hex, upload
from tests.support.auth import ADMIN_TOKEN, authenticated_channel, create_token, grant
from tests.support.rpc import error_info

if TYPE_CHECKING:
    from modelregistry.artifact.v1.artifact_service_pb2_grpc import ArtifactServiceAsyncStub
    from modelregistry.metadata.v1.metadata_service_pb2_grpc import MetadataServiceAsyncStub

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MODEL = "models/fraud"
PASSED, FAILED = gov.Check.STATUS_PASSED, gov.Check.STATUS_FAILED


class _As:
    """Stubs that call as one principal."""

    def __init__(self, registry: RunningRegistry, secret: str) -> None:
        from modelregistry.artifact.v1 import artifact_service_pb2_grpc

        self.channel = authenticated_channel(registry.target, secret)
        self.metadata: MetadataServiceAsyncStub = metadata_service_pb2_grpc.MetadataServiceStub(
            self.channel
        )
        self.artifacts: ArtifactServiceAsyncStub = artifact_service_pb2_grpc.ArtifactServiceStub(
            self.channel
        )

    async def push(self, data: bytes) -> str:
        """A READY version of ``fraud`` holding ``data``; returns its name."""
        from modelregistry.metadata.v1 import model_version_pb2

        version = await self.metadata.CreateModelVersion(ms.CreateModelVersionRequest(parent=MODEL))
        await upload(self.artifacts, data, version.name)
        files = [
            model_version_pb2.ManifestFile(
                path="w.bin", sha256=sha256_hex(data), size_bytes=len(data)
            )
        ]
        ready = await self.metadata.CommitModelVersion(
            ms.CommitModelVersionRequest(name=version.name, files=files)
        )
        return ready.name

    async def move(self, version: str) -> None:
        await self.metadata.SetAlias(
            ms.SetAliasRequest(model=MODEL, alias="production", version=version)
        )

    async def report(self, version: str, status: int) -> None:
        check = gov.Check(check_name="eval/accuracy", status=status, summary="auc 0.93")  # type: ignore[arg-type]
        await self.metadata.ReportCheck(gov.ReportCheckRequest(parent=version, check=check))

    async def approve(self, version: str) -> None:
        await self.metadata.ApproveModelVersion(
            gov.ApproveModelVersionRequest(name=version, alias="production", comment="looks good")
        )


async def _blocked(call: object) -> dict[str, str]:
    """Await ``call``; it must be PROMOTION_BLOCKED; return what it says is missing."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(refused.value)
    assert info.reason == "PROMOTION_BLOCKED", refused.value.details()
    return dict(info.metadata)


async def test_a_protected_alias_walks_its_gate(registry: RunningRegistry) -> None:
    secrets = {}
    for name in ("alice", "bob", "ci"):
        secrets[name] = await create_token(registry.target, name, role=None)
    access = access_service_pb2_grpc.AccessServiceStub(registry.channel)
    await grant(access, "alice", "maintainer", "fraud")
    await grant(access, "bob", "maintainer", "fraud")
    await grant(access, "ci", "reporter", "fraud")
    await registry.metadata.CreateModel(
        ms.CreateModelRequest(model_id="fraud", model=model_pb2.Model())
    )
    rule = gov.ProtectionRule(
        name="protectionRules/fraud/aliases/production",
        required_checks=["eval/accuracy"],
        required_approvals=1,
    )
    await registry.metadata.SetProtectionRule(gov.SetProtectionRuleRequest(protection_rule=rule))
    alice, bob, ci = (_As(registry, secrets[n]) for n in ("alice", "bob", "ci"))
    try:
        v1 = await alice.push(b"weights one")
        missing = await _blocked(alice.move(v1))
        assert missing == {"missing_checks": "eval/accuracy", "approvals_needed": "1"}

        # The CI principal reports, and cannot move the alias itself.
        await ci.report(v1, PASSED)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await ci.move(v1)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert await _blocked(alice.move(v1)) == {"approvals_needed": "1"}

        # Four eyes: the creator's approval is refused; a second person's counts.
        with pytest.raises(grpc.aio.AioRpcError) as own:
            await alice.approve(v1)
        assert error_info(own.value).reason == "SELF_APPROVAL"
        await bob.approve(v1)
        await alice.move(v1)

        # A newer version whose check FAILED is blocked, approvals or not.
        v2 = await alice.push(b"weights two")
        await ci.report(v2, FAILED)
        await bob.approve(v2)
        assert await _blocked(alice.move(v2)) == {"missing_checks": "eval/accuracy"}
        # A report of PASSED after that counts (the latest report wins); then it moves.
        await ci.report(v2, PASSED)
        await alice.move(v2)

        # A FAILED report after the approval blocks a version again.
        v3 = await alice.push(b"weights three")
        await ci.report(v3, PASSED)
        await bob.approve(v3)
        await ci.report(v3, FAILED)
        assert await _blocked(alice.move(v3)) == {"missing_checks": "eval/accuracy"}

        # Rolling back to v1, which held production within the window: no checks, no approvals.
        await bob.metadata.WithdrawApproval(
            gov.WithdrawApprovalRequest(name=v1, alias="production")
        )
        await alice.move(v1)
        resolved = await registry.metadata.ResolveModelVersion(
            ms.ResolveModelVersionRequest(ref="fraud@production")
        )
        assert resolved.name == v1
        audit = await registry.metadata.ListAuditEvents(ms.ListAuditEventsRequest(model=MODEL))
        moves = [
            e for e in audit.audit_events if e.method == "SetAlias" and not e.denied_permission
        ]
        promotions = sorted(str(e.after["promotion"]) for e in moves)
        assert promotions == ["GATED", "GATED", "ROLLBACK"]
    finally:
        for principal in (alice, bob, ci):
            await principal.channel.close(None)


async def test_the_sdk_governance_calls_sync_and_async(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    from modelregistry import Client
    from modelregistry.aio import AsyncClient

    bob = await create_token(registry.target, "bob", role="maintainer")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")

    def sync_side() -> None:
        with Client(registry.target, token=ADMIN_TOKEN, cache_dir=tmp_path / "c") as admin:
            admin.push(folder, model="fraud")
            admin.set_protection_rule("fraud", "production", required_checks=["eval"])
            admin.report_check("fraud", 1, "eval", "FAILED", summary="auc 0.5")
            admin.report_check("fraud", 1, "eval", "PASSED", metrics={"auc": 0.93})
            assert [check_status(c) for c in admin.list_checks("fraud", 1)] == ["PASSED"]
            reports = admin.list_checks("fraud", 1, all_reports=True)
            assert [check_status(c) for c in reports] == ["PASSED", "FAILED"]

    await asyncio.to_thread(sync_side)
    async with AsyncClient(registry.target, token=bob, cache_dir=tmp_path / "b") as client:
        approval = await client.approve("fraud", 1, "production", comment="ok")
        assert (approval.approver, approval.comment) == ("bob", "ok")
        assert [a.approver for a in await client.list_approvals("fraud", 1)] == ["bob"]
        await client.withdraw_approval("fraud", 1, "production")
        assert await client.list_approvals("fraud", 1) == []
        rules = await client.list_protection_rules()
        assert [r.name for r in rules] == ["protectionRules/fraud/aliases/production"]
        await client.set_alias("fraud", "production", 1)  # eval PASSED, no approvals needed


async def test_movers_can_name_a_role(registry: RunningRegistry, tmp_path: Path) -> None:
    from modelregistry import Client
    from modelregistry.errors import FailedPreconditionError

    alice = await create_token(registry.target, "alice", role="maintainer")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")

    def walk() -> None:
        with Client(registry.target, token=ADMIN_TOKEN, cache_dir=tmp_path / "a") as admin:
            admin.push(folder, model="fraud")
            admin.set_protection_rule("fraud", "production", movers=["role:admin"])
            with Client(registry.target, token=alice, cache_dir=tmp_path / "b") as maintainer:
                with pytest.raises(FailedPreconditionError) as blocked:
                    maintainer.set_alias("fraud", "production", 1)
                assert blocked.value.metadata == {"not_a_mover": "true"}
            admin.set_alias("fraud", "production", 1)  # the admin holds role:admin on fraud

    await asyncio.to_thread(walk)

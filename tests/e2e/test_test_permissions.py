"""TestPermissions: which actions the caller may take on a model (what the UI's buttons ask)."""

from __future__ import annotations

import grpc
import pytest

from modelregistry.access.v1 import access_service_pb2 as acc
from modelregistry.access.v1 import access_service_pb2_grpc, role_binding_pb2
from tests.conftest import RunningRegistry
from tests.support.auth import bearer

T = 10
ASKED = ["models.read", "aliases.write", "versions.approve", "registry.admin"]


async def _token_for(registry: RunningRegistry, principal: str, role: str, scope: str) -> str:
    stub = access_service_pb2_grpc.AccessServiceStub(registry.channel)
    made = await stub.CreateAccessToken(
        acc.CreateAccessTokenRequest(principal=principal), timeout=T
    )
    await stub.CreateRoleBinding(
        acc.CreateRoleBindingRequest(
            role_binding=role_binding_pb2.RoleBinding(subject=principal, role=role, scope=scope)
        ),
        timeout=T,
    )
    return str(made.secret)


async def test_a_viewer_holds_read_only_on_its_model(registry: RunningRegistry) -> None:
    secret = await _token_for(registry, "vera", "viewer", "fraud")
    stub = access_service_pb2_grpc.AccessServiceStub(registry.channel)
    own = await stub.TestPermissions(
        acc.TestPermissionsRequest(resource="models/fraud", permissions=ASKED),
        metadata=bearer(secret),
        timeout=T,
    )
    other = await stub.TestPermissions(
        acc.TestPermissionsRequest(resource="models/churn", permissions=ASKED),
        metadata=bearer(secret),
        timeout=T,
    )
    assert list(own.permissions) == ["models.read"]
    assert list(other.permissions) == []


async def test_the_admin_holds_every_permission_asked(registry: RunningRegistry) -> None:
    stub = access_service_pb2_grpc.AccessServiceStub(registry.channel)
    answer = await stub.TestPermissions(
        acc.TestPermissionsRequest(resource="models/fraud", permissions=ASKED), timeout=T
    )
    registry_wide = await stub.TestPermissions(
        acc.TestPermissionsRequest(permissions=["registry.admin"]), timeout=T
    )
    assert list(answer.permissions) == ASKED
    assert list(registry_wide.permissions) == ["registry.admin"]


@pytest.mark.parametrize(
    ("resource", "permissions", "field"),
    [
        ("models/fraud", ["models.fly"], "permissions"),
        ("models/fraud", [], "permissions"),
        ("tokens/x", ["models.read"], "resource"),
        ("models/fraud", ["models.read"] * 33, "permissions"),
    ],
)
async def test_bad_questions_are_invalid_arguments(
    registry: RunningRegistry, resource: str, permissions: list[str], field: str
) -> None:
    stub = access_service_pb2_grpc.AccessServiceStub(registry.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.TestPermissions(
            acc.TestPermissionsRequest(resource=resource, permissions=permissions), timeout=T
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")

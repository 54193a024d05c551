"""Changes to who may do what, and calls refused for want of a permission, are audit events."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import json_format

from modelregistry.access.v1 import access_service_pb2 as access_pb
from modelregistry.access.v1 import access_service_pb2_grpc, role_binding_pb2
from modelregistry.metadata.v1 import audit_event_pb2, model_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from tests.conftest import RunningRegistry
from tests.support.auth import authenticated_channel, bearer, create_token

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def _registry_wide_events(registry: RunningRegistry) -> list[audit_event_pb2.AuditEvent]:
    page = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(page_size=1000, order_by="event_time asc")
    )
    return [e for e in page.audit_events if not e.resource.startswith("models/")]


async def test_token_and_binding_changes_are_recorded_by_the_admin_who_made_them(
    registry: RunningRegistry,
) -> None:
    async with authenticated_channel(registry.target) as channel:
        stub = access_service_pb2_grpc.AccessServiceStub(channel)
        created = await stub.CreateAccessToken(
            access_pb.CreateAccessTokenRequest(principal="ci", description="pipeline")
        )
        token = created.access_token.name
        await stub.RevokeAccessToken(access_pb.RevokeAccessTokenRequest(name=token))
        await stub.RevokeAccessToken(access_pb.RevokeAccessTokenRequest(name=token))  # no-op
        wanted = role_binding_pb2.RoleBinding(subject="ci", role="writer", scope="team-a-*")
        binding = await stub.CreateRoleBinding(
            access_pb.CreateRoleBindingRequest(role_binding=wanted)
        )
        await stub.CreateRoleBinding(access_pb.CreateRoleBindingRequest(role_binding=wanted))
        await stub.DeleteRoleBinding(access_pb.DeleteRoleBindingRequest(name=binding.name))

    events = [e for e in await _registry_wide_events(registry) if e.actor == "admin"]
    assert [(e.method, e.resource) for e in events] == [
        ("CreateAccessToken", token),
        ("RevokeAccessToken", token),
        ("CreateRoleBinding", binding.name),
        ("DeleteRoleBinding", binding.name),
    ]
    create, revoke, grant, delete = (json_format.MessageToDict(e) for e in events)
    assert create["after"]["principal"] == "ci"
    assert "before" not in create
    assert "revokeTime" not in revoke["before"]
    assert "revoke_time" not in revoke["before"]
    assert revoke["after"]["revoke_time"].endswith("Z")
    assert grant["after"] | {"create_time": ""} == {
        "name": binding.name, "subject": "ci", "role": "writer", "scope": "team-a-*",
        "created_by": "admin", "create_time": "",
    }  # fmt: skip
    assert delete["before"]["name"] == binding.name
    assert "after" not in delete
    # The secret, and the hash the server keeps of it, are never in the log.
    dumped = json.dumps([json_format.MessageToDict(e) for e in events])
    assert created.secret not in dumped
    # mr1_<id>_<secret part>; the secret part may itself hold "_" (URL-safe base64).
    assert created.secret.split("_", 2)[2] not in dumped
    assert "sha256" not in dumped


async def test_a_refused_call_is_recorded_once_with_the_missing_permission(
    registry: RunningRegistry,
) -> None:
    await registry.metadata.CreateModel(
        ms.CreateModelRequest(model_id="fraud", model=model_pb2.Model())
    )
    viewer = await create_token(registry.target, "intern", "viewer", "fraud")
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await registry.metadata.DeleteModel(
                ms.DeleteModelRequest(name="models/fraud", force=True), metadata=bearer(viewer)
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await registry.server.denied_calls.flush()
    assert registry.server.denied_calls.count >= 5

    # The viewer of the model sees that someone tried; the model is still there.
    page = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(model="models/fraud"), metadata=bearer(viewer)
    )
    refusals = [e for e in page.audit_events if e.denied_permission]
    assert [(e.actor, e.method, e.resource, e.denied_permission) for e in refusals] == [
        ("intern", "DeleteModel", "models/fraud", "models.delete")
    ]
    assert not refusals[0].HasField("before")
    assert not refusals[0].HasField("after")
    await registry.metadata.GetModel(ms.GetModelRequest(name="models/fraud"))


async def test_registry_wide_records_are_only_for_those_who_may_read_everything(
    registry: RunningRegistry,
) -> None:
    await create_token(registry.target, "ci", "writer", "team-a-*")  # audited: by admin
    writer = await create_token(registry.target, "team-a-bot", "writer", "team-a-*")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await registry.metadata.RunGarbageCollection(
            ms.RunGarbageCollectionRequest(), metadata=bearer(writer)
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await registry.server.denied_calls.flush()

    everything = await _registry_wide_events(registry)
    assert ("team-a-bot", "RunGarbageCollection", "registry.admin") in {
        (e.actor, e.method, e.denied_permission) for e in everything
    }
    assert {"CreateAccessToken", "CreateRoleBinding"} <= {e.method for e in everything}
    mine = await registry.metadata.ListAuditEvents(
        ms.ListAuditEventsRequest(page_size=1000), metadata=bearer(writer)
    )
    assert list(mine.audit_events) == []

"""A service bound to the ``impersonator`` role may name the user it acts for; nobody else."""

from __future__ import annotations

import pytest

from modelregistry.access.v1 import access_service_pb2_grpc
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2
from tests.conftest import RunningRegistry
from tests.support.auth import authenticated_channel, bearer, create_token, grant

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def test_an_impersonator_records_both_names_and_others_only_their_own(
    registry: RunningRegistry,
) -> None:
    service = await create_token(registry.target, "serving-gateway", "writer", "*")
    plain = await create_token(registry.target, "notebook", "writer", "*")
    async with authenticated_channel(registry.target) as channel:
        await grant(
            access_service_pb2_grpc.AccessServiceStub(channel),
            "serving-gateway", "impersonator", "*",
        )  # fmt: skip
    for model, secret in (("by-gateway", service), ("by-notebook", plain)):
        await registry.metadata.CreateModel(
            ms.CreateModelRequest(model_id=model, model=model_pb2.Model()),
            metadata=(*bearer(secret), ("x-modelregistry-actor", "alice")),
        )
    actors = {}
    for model in ("by-gateway", "by-notebook"):
        page = await registry.metadata.ListAuditEvents(
            ms.ListAuditEventsRequest(model=f"models/{model}")
        )
        actors[model] = [e.actor for e in page.audit_events]
    assert actors == {"by-gateway": ["alice via serving-gateway"], "by-notebook": ["notebook"]}

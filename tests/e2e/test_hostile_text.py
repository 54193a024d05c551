"""Control characters and undecodable bytes, sent to a real server: refused, nothing stored."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from modelregistry.access.v1 import access_service_pb2 as acc
from modelregistry.access.v1 import access_service_pb2_grpc
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2
from tests.conftest import RunningRegistry
from tests.support.rpc import error_info

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def _refused(call: object, field: str) -> None:
    assert isinstance(call, grpc.aio.AioRpcError)
    assert call.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(call)
    assert info.reason == "FIELD_INVALID"
    assert info.metadata["field"] == field
    assert "control character" in (call.details() or "")


@pytest.mark.parametrize("text", ["prod\x1b[2J", "a\x00b", "line\nbreak", "csi\x9b"])
async def test_a_label_with_a_control_character_is_refused_and_not_stored(
    registry: RunningRegistry, text: str
) -> None:
    request = ms.CreateModelRequest(model_id="m", model=model_pb2.Model(labels={"stage": text}))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await registry.metadata.CreateModel(request)
    await _refused(refused.value, "model.labels['stage']")
    listed = await registry.metadata.ListModels(ms.ListModelsRequest())
    assert list(listed.models) == []


async def test_an_update_with_a_control_character_leaves_the_model_as_it_was(
    registry: RunningRegistry,
) -> None:
    created = await registry.metadata.CreateModel(
        ms.CreateModelRequest(model_id="m", model=model_pb2.Model(description="first\nline"))
    )
    assert created.description == "first\nline"  # line breaks are text, not control
    update = ms.UpdateModelRequest(
        model=model_pb2.Model(name="models/m", description="ring\x07"),
        update_mask=field_mask_pb2.FieldMask(paths=["description"]),
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await registry.metadata.UpdateModel(update)
    await _refused(refused.value, "model.description")
    after = await registry.metadata.GetModel(ms.GetModelRequest(name="models/m"))
    assert after.description == "first\nline"
    assert after.etag == created.etag


async def test_access_service_text_is_checked_too(registry: RunningRegistry) -> None:
    stub = access_service_pb2_grpc.AccessServiceStub(registry.channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateAccessToken(
            acc.CreateAccessTokenRequest(principal="ci\x1b]0;pwned\x07", description="x")
        )
    await _refused(refused.value, "principal")

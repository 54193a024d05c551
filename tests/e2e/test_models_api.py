"""Models CRUD over a real gRPC channel, against a real PostgreSQL."""

from __future__ import annotations

import base64

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2
from tests.conftest import RunningRegistry
from tests.support.rpc import error_info

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def create(
    registry: RunningRegistry, model_id: str, description: str = "", owner: str = ""
) -> model_pb2.Model:
    return await registry.metadata.CreateModel(
        ms.CreateModelRequest(
            model_id=model_id, model=model_pb2.Model(description=description, owner=owner)
        )
    )


async def test_listing_120_models_in_pages_of_50_yields_each_once(
    registry: RunningRegistry,
) -> None:
    for i in range(120):
        await create(registry, f"model-{i:03d}")
    seen: list[str] = []
    pages = 0
    token = ""
    while True:
        response = await registry.metadata.ListModels(
            ms.ListModelsRequest(page_size=50, page_token=token)
        )
        seen += [m.name for m in response.models]
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert pages == 3
    assert len(seen) == 120
    assert sorted(seen) == sorted(set(seen)) == [f"models/model-{i:03d}" for i in range(120)]


async def test_listing_by_create_time_desc_pages_in_that_order(registry: RunningRegistry) -> None:
    for i in range(7):
        await create(registry, f"m{i}")
    names: list[str] = []
    token = ""
    while True:
        response = await registry.metadata.ListModels(
            ms.ListModelsRequest(page_size=3, page_token=token, order_by="create_time desc")
        )
        names += [m.name for m in response.models]
        token = response.next_page_token
        if not token:
            break
    assert names == [f"models/m{i}" for i in reversed(range(7))]


async def test_tampered_page_token_is_invalid_argument(registry: RunningRegistry) -> None:
    for i in range(3):
        await create(registry, f"m{i}")
    first = await registry.metadata.ListModels(ms.ListModelsRequest(page_size=1))
    raw = bytearray(base64.urlsafe_b64decode(first.next_page_token + "=="))
    raw[len(raw) // 2] ^= 0x40
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.ListModels(ms.ListModelsRequest(page_size=1, page_token=tampered))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (info.value.details() or "")
    assert error_info(info.value).reason == "PAGE_TOKEN_INVALID"


async def test_duplicate_name_is_already_exists(registry: RunningRegistry) -> None:
    await create(registry, "dup")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create(registry, "dup")
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    detail = error_info(info.value)
    assert (detail.domain, detail.reason) == ("modelregistry", "MODEL_ALREADY_EXISTS")


async def test_invalid_name_is_invalid_argument_with_the_rule(registry: RunningRegistry) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await create(registry, "Not_A_Valid_Name")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details() or ""
    assert "model_id" in details
    assert "lowercase letters, digits and hyphens" in details
    detail = error_info(info.value)
    assert detail.reason == "FIELD_INVALID"
    meta = detail.metadata
    assert meta["field"] == "model_id"
    assert "DNS label" in meta["rule"]
    status = rpc_status.from_call(info.value)  # type: ignore[arg-type]
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    assert bad_request.field_violations[0].field == "model_id"


async def test_update_with_stale_etag_is_aborted(registry: RunningRegistry) -> None:
    created = await create(registry, "etag-model", description="v1")
    mask = field_mask_pb2.FieldMask(paths=["description"])
    updated = await registry.metadata.UpdateModel(
        ms.UpdateModelRequest(
            model=model_pb2.Model(name=created.name, description="v2", etag=created.etag),
            update_mask=mask,
        )
    )
    assert updated.description == "v2"
    assert updated.etag != created.etag
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.UpdateModel(
            ms.UpdateModelRequest(
                model=model_pb2.Model(name=created.name, description="v3", etag=created.etag),
                update_mask=mask,
            )
        )
    assert info.value.code() == grpc.StatusCode.ABORTED
    current = await registry.metadata.GetModel(ms.GetModelRequest(name=created.name))
    assert current.description == "v2"


async def test_deleted_model_is_not_found(registry: RunningRegistry) -> None:
    created = await create(registry, "gone")
    await registry.metadata.DeleteModel(ms.DeleteModelRequest(name=created.name))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.GetModel(ms.GetModelRequest(name=created.name))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await registry.metadata.DeleteModel(ms.DeleteModelRequest(name=created.name))
    assert again.value.code() == grpc.StatusCode.NOT_FOUND


async def test_create_replayed_with_same_request_id_returns_the_original(
    registry: RunningRegistry,
) -> None:
    request = ms.CreateModelRequest(
        model_id="idem",
        model=model_pb2.Model(owner="ml"),
        request_id="3f2b8c1e-6a4d-4e0b-9b57-0d3c2a1f9e88",
    )
    first = await registry.metadata.CreateModel(request)
    second = await registry.metadata.CreateModel(request)
    assert second.uid == first.uid
    delete = ms.DeleteModelRequest(
        name=first.name, request_id="5b7e0a52-2f0c-4c9a-8a55-3c1d7e6f4b21"
    )
    await registry.metadata.DeleteModel(delete)
    await registry.metadata.DeleteModel(delete)  # a replayed delete succeeds, changes nothing
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.GetModel(ms.GetModelRequest(name=first.name))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND

"""Unit tests of the Model use cases against the in-memory repository."""

from __future__ import annotations

import pytest

from modelregistry_server.common.kernel.page_token import PageTokenCodec
from modelregistry_server.common.kernel.paging import Paginator, coerce_page_size
from modelregistry_server.metadata.app.models import ModelService
from modelregistry_server.metadata.domain.errors import (
    AlreadyExists,
    EtagMismatch,
    InvalidArgument,
    NotFound,
)
from modelregistry_server.metadata.domain.model import ModelDraft
from tests.unit.fakes import InMemoryModelRepository, InMemoryRegistry

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def service() -> ModelService:
    registry = InMemoryRegistry()
    return ModelService(
        registry.uow, InMemoryModelRepository(registry), Paginator(PageTokenCodec(b"k" * 32))
    )


async def test_create_then_get_returns_the_model(service: ModelService) -> None:
    created = await service.create_model("fraud", ModelDraft(description="d", labels={"team": "x"}))
    fetched = await service.get_model("models/fraud")
    assert fetched == created
    assert fetched.name == "models/fraud"
    assert fetched.labels == {"team": "x"}


@pytest.mark.parametrize("bad", ["", "Upper", "1starts-with-digit", "ends-", "a" * 64, "has_us"])
async def test_invalid_model_id_names_the_rule(service: ModelService, bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        await service.create_model(bad, ModelDraft())
    assert info.value.field == "model_id"
    assert "lowercase letters, digits and hyphens" in info.value.rule


async def test_duplicate_create_is_already_exists(service: ModelService) -> None:
    await service.create_model("m", ModelDraft())
    with pytest.raises(AlreadyExists):
        await service.create_model("m", ModelDraft())


async def test_list_pages_cover_every_model_once(service: ModelService) -> None:
    for i in range(23):
        await service.create_model(f"m{i:02d}", ModelDraft())
    seen: list[str] = []
    token = ""
    while True:
        page = await service.list_models(5, token, order_by="create_time desc")
        seen += [m.model_id for m in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"m{i:02d}" for i in reversed(range(23))]


async def test_page_token_from_other_order_is_rejected(service: ModelService) -> None:
    for i in range(3):
        await service.create_model(f"m{i}", ModelDraft())
    page = await service.list_models(1, "")
    with pytest.raises(InvalidArgument) as info:
        await service.list_models(1, page.next_page_token, order_by="create_time")
    assert info.value.reason == "PAGE_TOKEN_INVALID"


async def test_bad_order_by_is_invalid_argument(service: ModelService) -> None:
    with pytest.raises(InvalidArgument, match="order_by"):
        await service.list_models(10, "", order_by="owner")


async def test_malformed_filter_names_the_position(service: ModelService) -> None:
    with pytest.raises(InvalidArgument) as info:
        await service.list_models(10, "", filter_='owner = "a" AND (name = ')
    assert info.value.reason == "FILTER_INVALID"
    assert "position" in info.value.rule


def test_page_size_rules() -> None:
    assert coerce_page_size(0) == 50
    assert coerce_page_size(5000) == 1000
    assert coerce_page_size(7) == 7
    with pytest.raises(InvalidArgument):
        coerce_page_size(-1)


async def test_update_with_stale_etag_is_rejected(service: ModelService) -> None:
    created = await service.create_model("m", ModelDraft(description="one"))
    await service.update_model("models/m", ModelDraft(description="two"), ["description"])
    with pytest.raises(EtagMismatch):
        await service.update_model(
            "models/m", ModelDraft(description="three"), ["description"], created.etag
        )
    assert (await service.get_model("models/m")).description == "two"


async def test_update_mask_limits_the_change(service: ModelService) -> None:
    await service.create_model("m", ModelDraft(description="keep", owner="a"))
    updated = await service.update_model("models/m", ModelDraft(owner="b"), ["owner"])
    assert (updated.description, updated.owner) == ("keep", "b")


async def test_update_of_output_only_field_is_rejected(service: ModelService) -> None:
    await service.create_model("m", ModelDraft())
    with pytest.raises(InvalidArgument, match="update_mask"):
        await service.update_model("models/m", ModelDraft(), ["uid"])


async def test_delete_then_get_is_not_found(service: ModelService) -> None:
    await service.create_model("m", ModelDraft())
    await service.delete_model("models/m")
    with pytest.raises(NotFound):
        await service.get_model("models/m")


async def test_bad_label_key_is_rejected(service: ModelService) -> None:
    with pytest.raises(InvalidArgument, match=r"model\.labels"):
        await service.create_model("m", ModelDraft(labels={"Bad Key": "v"}))


async def test_request_id_must_be_a_uuid(service: ModelService) -> None:
    with pytest.raises(InvalidArgument, match="request_id"):
        await service.create_model("m", ModelDraft(), request_id="retry-1")


async def test_not_found_reason_names_the_resource_kind(service: ModelService) -> None:
    with pytest.raises(NotFound) as info:
        await service.get_model("models/nope")
    assert info.value.reason == "MODEL_NOT_FOUND"

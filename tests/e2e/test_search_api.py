"""filter and order_by on ListModels / ListModelVersions over real gRPC and PostgreSQL."""

from __future__ import annotations

import grpc
import pytest

from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2, model_version_pb2
from tests.conftest import RunningRegistry
from tests.support.artifacts import sha256_hex, upload
from tests.support.metadata import new_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WEIGHTS = model_version_pb2.ManifestFile(path="w.bin", sha256=sha256_hex(b"w"), size_bytes=1)


async def list_all(
    registry: RunningRegistry, filter_: str, order_by: str = "", page_size: int = 3
) -> list[str]:
    names: list[str] = []
    token = ""
    while True:
        page = await registry.metadata.ListModelVersions(
            ms.ListModelVersionsRequest(
                parent="models/-", filter=filter_, order_by=order_by, page_size=page_size,
                page_token=token,
            )
        )  # fmt: skip
        names += [v.name for v in page.model_versions]
        token = page.next_page_token
        if not token:
            return names


@pytest.fixture
async def catalogue(registry: RunningRegistry) -> RunningRegistry:
    """Two models; versions with metrics, labels and params; one alias."""
    specs = {
        "vision": [(0.91, "cv", 32), (0.95, "cv", 64), (0.88, "cv", 16), (0.97, "cv", 128)],
        "text": [(0.80, "nlp", 8), (0.85, "nlp", 8), (0.99, "nlp", 4)],
    }
    for model_id, rows in specs.items():
        await new_model(registry, model_id)
        for i, (accuracy, team, batch) in enumerate(rows):
            version = await registry.metadata.CreateModelVersion(
                ms.CreateModelVersionRequest(
                    parent=f"models/{model_id}",
                    model_version=model_version_pb2.ModelVersion(
                        metrics={"accuracy": accuracy},
                        labels={"team": team},
                        params={"batch": model_version_pb2.ParamValue(int_value=batch)},
                    ),
                )
            )
            if i % 2 == 0:  # even ones become READY (a version holds at least one file)
                await upload(registry.artifacts, b"w", version.name)
                await registry.metadata.CommitModelVersion(
                    ms.CommitModelVersionRequest(name=version.name, files=[WEIGHTS])
                )
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(
            model="models/vision", alias="production", version="models/vision/versions/3"
        )
    )
    return registry


async def test_or_parentheses_and_metrics_across_pages(catalogue: RunningRegistry) -> None:
    got = await list_all(
        catalogue,
        '(labels.team = "cv" OR name = "text") AND metrics.accuracy >= 0.9',
        order_by="metrics.accuracy desc",
    )
    assert got == [
        "models/text/versions/3",  # 0.99
        "models/vision/versions/4",  # 0.97
        "models/vision/versions/2",  # 0.95
        "models/vision/versions/1",  # 0.91
    ]


async def test_state_alias_params_and_not(catalogue: RunningRegistry) -> None:
    assert await list_all(catalogue, 'state = READY AND name = "vision"') == [
        "models/vision/versions/3",
        "models/vision/versions/1",
    ]
    assert await list_all(catalogue, 'alias = "production"') == ["models/vision/versions/3"]
    assert await list_all(catalogue, "params.batch > 32 AND NOT metrics.accuracy < 0.96") == [
        "models/vision/versions/4"
    ]


async def test_malformed_filter_is_invalid_argument_with_position(
    catalogue: RunningRegistry,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await list_all(catalogue, 'metrics.accuracy > 0.5 AND (state = "READY"')
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "position" in (info.value.details() or "")


async def test_sql_in_a_value_matches_nothing_and_breaks_nothing(
    catalogue: RunningRegistry,
) -> None:
    injection = "' OR 1=1 --"
    assert await list_all(catalogue, f'name = "{injection}"') == []
    drop = "x'; DROP TABLE metadata.models; --"
    assert await list_all(catalogue, f'labels.team = "{drop}"') == []
    assert len(await list_all(catalogue, "")) == 7


async def test_list_models_filters_by_label(registry: RunningRegistry) -> None:
    for model_id, team in (("a", "cv"), ("b", "nlp"), ("c", "cv")):
        await registry.metadata.CreateModel(
            ms.CreateModelRequest(model_id=model_id, model=model_pb2.Model(labels={"team": team}))
        )
    page = await registry.metadata.ListModels(
        ms.ListModelsRequest(filter='labels.team = "cv"', page_size=1)
    )
    names = [m.name for m in page.models]
    while page.next_page_token:
        page = await registry.metadata.ListModels(
            ms.ListModelsRequest(
                filter='labels.team = "cv"', page_size=1, page_token=page.next_page_token
            )
        )
        names += [m.name for m in page.models]
    assert names == ["models/a", "models/c"]

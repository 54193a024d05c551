"""Bad input is a clear error over real gRPC and PostgreSQL: colliding or empty manifests, the
alias cap (also when creations race), megabyte-long ids; and the largest version the caps allow
round-trips within the 4 MiB message limit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest

from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_pb2, model_version_pb2
from modelregistry_server.metadata.domain import version as rules
from tests.conftest import RunningRegistry
from tests.support.artifacts import sha256_hex, upload
from tests.support.metadata import new_model, new_version, push
from tests.support.rpc import error_info
from tests.support.worst_version import (
    MODEL,
    draft_to_proto,
    key,
    manifest_to_proto,
    worst_draft,
    worst_manifest,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
HUGE = "A" * (1024 * 1024)


async def _commit(registry: RunningRegistry, paths: list[str]) -> grpc.aio.AioRpcError:
    version = await new_version(registry, "m")
    await upload(registry.artifacts, b"w", version.name)
    files = [
        model_version_pb2.ManifestFile(path=path, sha256=sha256_hex(b"w"), size_bytes=1)
        for path in paths
    ]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.CommitModelVersion(
            ms.CommitModelVersionRequest(name=version.name, files=files)
        )
    return info.value


@pytest.mark.parametrize(
    ("paths", "field", "rule"),
    [
        (["w.bin", "Model.bin", "model.bin"], "files[2].path", "collides with 'Model.bin'"),
        (["caf\u00e9", "cafe\u0301"], "files[1].path", "collides with"),
        (["A", "a/b"], "files", "'A' is a file and also a folder of 'a/b'"),
        ([], "files", "is empty"),
    ],
    ids=["case", "normalisation", "case-folded folder", "empty"],
)
async def test_colliding_and_empty_manifests_are_refused_naming_the_field(
    registry: RunningRegistry, paths: list[str], field: str, rule: str
) -> None:
    await new_model(registry, "m")
    error = await _commit(registry, paths)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(error)
    assert info.reason == "MANIFEST_INVALID"
    assert info.metadata["field"] == field
    assert rule in (error.details() or "")


async def test_a_model_holds_at_most_100_aliases_even_when_creations_race(
    registry: RunningRegistry,
) -> None:
    await new_model(registry, "m")
    version = await push(registry, "m", {"w": b"w"})

    async def set_alias(alias: str) -> str:
        try:
            await registry.metadata.SetAlias(
                ms.SetAliasRequest(model="models/m", alias=alias, version=version.name)
            )
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name} {error_info(error).reason} {error_info(error).metadata}"
        return "OK"

    for i in range(rules.MAX_ALIASES - 3):
        assert await set_alias(f"a{i}") == "OK"
    outcomes = await asyncio.gather(*(set_alias(f"race-{i}") for i in range(8)))
    assert outcomes.count("OK") == 3, outcomes
    refused = [o for o in outcomes if o != "OK"]
    assert all(o.startswith("INVALID_ARGUMENT FIELD_INVALID") for o in refused), refused
    assert all("'field': 'alias'" in o for o in refused), refused
    page = await registry.metadata.ListAliases(
        ms.ListAliasesRequest(parent="models/m", page_size=1000)
    )
    assert len(page.aliases) == rules.MAX_ALIASES
    assert await set_alias("a0") == "OK"  # moving an existing alias still works


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ("create model", "model_id"),
        ("label key", "model.labels"),
        ("get model", "name"),
        ("resolve", "ref"),
        ("alias", "alias"),
    ],
)
async def test_a_megabyte_long_input_comes_back_as_a_short_error(
    registry: RunningRegistry, call: str, field: str
) -> None:
    await new_model(registry, "m")
    metadata = registry.metadata
    requests: dict[str, Callable[[], Awaitable[object]]] = {
        "create model": lambda: metadata.CreateModel(
            ms.CreateModelRequest(model_id=HUGE, model=model_pb2.Model())
        ),
        "label key": lambda: metadata.CreateModel(
            ms.CreateModelRequest(model_id="x", model=model_pb2.Model(labels={HUGE: "v"}))
        ),
        "get model": lambda: metadata.GetModel(ms.GetModelRequest(name="models/" + HUGE)),
        "resolve": lambda: metadata.ResolveModelVersion(ms.ResolveModelVersionRequest(ref=HUGE)),
        "alias": lambda: metadata.SetAlias(
            ms.SetAliasRequest(model="models/m", alias=HUGE, version="models/m/versions/1")
        ),
    }
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await requests[call]()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = info.value.details() or ""
    assert len(message.encode()) < 1024, message[:300]
    assert message.startswith(f"{field}: ")
    assert "(1048576 characters)" in message
    assert error_info(info.value).metadata["field"] == field


async def test_the_largest_version_the_caps_allow_round_trips(registry: RunningRegistry) -> None:
    await new_model(registry, MODEL)
    created = await registry.metadata.CreateModelVersion(
        ms.CreateModelVersionRequest(
            parent=f"models/{MODEL}", model_version=draft_to_proto(worst_draft())
        )
    )
    await upload(registry.artifacts, b"w", created.name)
    # Every path holds one uploaded blob: the manifest is at its caps without 10,000 uploads.
    files = manifest_to_proto(worst_manifest((sha256_hex(b"w"), 1)))
    await registry.metadata.CommitModelVersion(
        ms.CommitModelVersionRequest(name=created.name, files=files)
    )
    for i in range(rules.MAX_ALIASES):
        await registry.metadata.SetAlias(
            ms.SetAliasRequest(model=f"models/{MODEL}", alias=key("a", i, 63), version=created.name)
        )
    resolved = await registry.metadata.ResolveModelVersion(
        ms.ResolveModelVersionRequest(ref=f"{MODEL}:1")
    )
    assert len(resolved.files) == rules.MAX_FILES
    assert len(resolved.aliases) == rules.MAX_ALIASES
    assert resolved.params == created.params
    assert resolved.signature == created.signature
    assert resolved.ByteSize() > 3 * 1024 * 1024  # near the worst case the unit test measures
    got = await registry.metadata.GetModelVersion(ms.GetModelVersionRequest(name=created.name))
    assert got == resolved

"""Versions, two-phase commit, references and aliases over real gRPC (PostgreSQL + MinIO)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_version_pb2
from tests.conftest import RunningRegistry
from tests.support.artifacts import sha256_hex, upload
from tests.support.metadata import new_model, new_version, push
from tests.support.rpc import error_info

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
READY = model_version_pb2.MODEL_VERSION_STATE_READY
PENDING = model_version_pb2.MODEL_VERSION_STATE_PENDING


async def test_fifty_concurrent_creates_get_numbers_1_to_50_over_ten_rounds(
    registry: RunningRegistry,
) -> None:
    for round_ in range(10):
        model_id = f"race-{round_}"
        await new_model(registry, model_id)
        created = await asyncio.gather(*(new_version(registry, model_id) for _ in range(50)))
        assert sorted(v.version for v in created) == list(range(1, 51)), f"round {round_}"
        assert all(v.state == PENDING for v in created)


async def test_push_commit_and_resolve_by_every_reference_form(
    s3_registry: RunningRegistry,
) -> None:
    await new_model(s3_registry, "resnet")
    files = {"weights/model.safetensors": os.urandom(3 * 1024 * 1024), "config.json": b"{}"}
    version = await push(s3_registry, "resnet", files)
    assert version.state == READY
    assert version.name == "models/resnet/versions/1"
    assert {f.path for f in version.files} == set(files)
    await s3_registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/resnet", alias="production", version=version.name)
    )
    refs = ["resnet", "models/resnet", "resnet@production", "resnet:1", "resnet/versions/1",
            "models/resnet/versions/1", version.uid]  # fmt: skip
    for ref in refs:
        resolved = await s3_registry.metadata.ResolveModelVersion(
            ms.ResolveModelVersionRequest(ref=ref)
        )
        assert resolved.name == version.name, ref
        assert {f.sha256 for f in resolved.files} == {sha256_hex(d) for d in files.values()}
        assert resolved.aliases == ["production"]


async def test_commit_with_missing_blob_is_rejected_and_stays_pending(
    s3_registry: RunningRegistry,
) -> None:
    await new_model(s3_registry, "m")
    version = await new_version(s3_registry, "m")
    present = b"present"
    await upload(s3_registry.artifacts, present)
    manifest = [
        model_version_pb2.ManifestFile(path="a.bin", sha256=sha256_hex(present), size_bytes=7),
        model_version_pb2.ManifestFile(path="b.bin", sha256=sha256_hex(b"never"), size_bytes=5),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s3_registry.metadata.CommitModelVersion(
            ms.CommitModelVersionRequest(name=version.name, files=manifest)
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "b.bin" in (info.value.details() or "")
    assert "a.bin" not in (info.value.details() or "")
    again = await s3_registry.metadata.GetModelVersion(ms.GetModelVersionRequest(name=version.name))
    assert again.state == PENDING
    with pytest.raises(grpc.aio.AioRpcError) as nothing_ready:
        await s3_registry.metadata.ResolveModelVersion(ms.ResolveModelVersionRequest(ref="m"))
    assert nothing_ready.value.code() == grpc.StatusCode.NOT_FOUND


async def test_replayed_commit_returns_the_same_version(registry: RunningRegistry) -> None:
    await new_model(registry, "m")
    version = await new_version(registry, "m")
    data = b"weights"
    await upload(registry.artifacts, data)
    request = ms.CommitModelVersionRequest(
        name=version.name,
        files=[
            model_version_pb2.ManifestFile(path="w", sha256=sha256_hex(data), size_bytes=len(data))
        ],
        request_id="7d9c1a2b-3e4f-4a5b-8c6d-9e0f1a2b3c4d",
    )
    first = await registry.metadata.CommitModelVersion(request)
    second = await registry.metadata.CommitModelVersion(request)
    assert first.state == second.state == READY
    assert (second.uid, second.etag) == (first.uid, first.etag)


@pytest.mark.parametrize(
    "path", ["../etc/passwd", "/abs", "a/../b", "a//b", "nul\x00byte", "x" * 1025, "C:/w"]
)
async def test_bad_manifest_paths_are_rejected(registry: RunningRegistry, path: str) -> None:
    await new_model(registry, "m")
    version = await new_version(registry, "m")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.CommitModelVersion(
            ms.CommitModelVersionRequest(
                name=version.name,
                files=[model_version_pb2.ManifestFile(path=path, sha256="0" * 64, size_bytes=1)],
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_alias_history_answers_which_version_held_it_when(
    registry: RunningRegistry,
) -> None:
    await new_model(registry, "m")
    versions = [await push(registry, "m", {"w": os.urandom(64)}) for _ in range(3)]
    times = []
    for version in versions:
        await registry.metadata.SetAlias(
            ms.SetAliasRequest(model="models/m", alias="production", version=version.name)
        )
        times.append(datetime.now(UTC))
        await asyncio.sleep(0.05)
    for moment, expected in zip(times, versions, strict=True):
        at = timestamp_pb2.Timestamp()
        at.FromDatetime(moment)
        resolved = await registry.metadata.ResolveModelVersion(
            ms.ResolveModelVersionRequest(ref="m@production", as_of_time=at)
        )
        assert resolved.name == expected.name
    before = timestamp_pb2.Timestamp()
    before.FromDatetime(datetime(2000, 1, 1, tzinfo=UTC))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.ResolveModelVersion(
            ms.ResolveModelVersionRequest(ref="m@production", as_of_time=before)
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_set_alias_compare_and_set_conflict_is_aborted_and_moves_nothing(
    registry: RunningRegistry,
) -> None:
    await new_model(registry, "m")
    first, second, third = [await push(registry, "m", {"w": os.urandom(32)}) for _ in range(3)]
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="production", version=first.name)
    )
    # Someone else moves it to `second`; a caller who still believes it is at `first` loses.
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(
            model="models/m", alias="production", version=second.name, expected_version=first.name
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.SetAlias(
            ms.SetAliasRequest(
                model="models/m",
                alias="production",
                version=third.name,
                expected_version=first.name,
            )
        )
    assert info.value.code() == grpc.StatusCode.ABORTED
    assert error_info(info.value).reason == "ALIAS_VERSION_MISMATCH"
    assert "points at models/m/versions/2, not the expected models/m/versions/1" in (
        info.value.details() or ""
    )
    resolved = await registry.metadata.ResolveModelVersion(
        ms.ResolveModelVersionRequest(ref="m@production")
    )
    assert resolved.name == second.name


async def test_alias_points_at_ready_versions_only(registry: RunningRegistry) -> None:
    await new_model(registry, "m")
    pending = await new_version(registry, "m")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.SetAlias(
            ms.SetAliasRequest(model="models/m", alias="staging", version=pending.name)
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_ready_version_is_immutable_except_labels_and_description(
    registry: RunningRegistry,
) -> None:
    await new_model(registry, "m")
    ready = await push(registry, "m", {"w": b"x"})
    ok = await registry.metadata.UpdateModelVersion(
        ms.UpdateModelVersionRequest(
            model_version=model_version_pb2.ModelVersion(name=ready.name, description="card"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        )
    )
    assert ok.description == "card"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.UpdateModelVersion(
            ms.UpdateModelVersionRequest(
                model_version=model_version_pb2.ModelVersion(name=ready.name, framework="torch"),
                update_mask=field_mask_pb2.FieldMask(paths=["framework"]),
            )
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_soft_delete_removes_aliases_and_hides_the_version(registry: RunningRegistry) -> None:
    await new_model(registry, "m")
    ready = await push(registry, "m", {"w": b"y"})
    await registry.metadata.SetAlias(
        ms.SetAliasRequest(model="models/m", alias="production", version=ready.name)
    )
    deleted = await registry.metadata.DeleteModelVersion(
        ms.DeleteModelVersionRequest(name=ready.name)
    )
    assert deleted.state == model_version_pb2.MODEL_VERSION_STATE_DELETED
    assert list(deleted.aliases) == []
    for ref in ("m", "m@production", "m:1"):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await registry.metadata.ResolveModelVersion(ms.ResolveModelVersionRequest(ref=ref))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND, ref
    listed = await registry.metadata.ListModelVersions(
        ms.ListModelVersionsRequest(parent="models/m")
    )
    assert list(listed.model_versions) == []


async def test_model_with_versions_needs_force_to_delete(registry: RunningRegistry) -> None:
    await new_model(registry, "m")
    await new_version(registry, "m")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await registry.metadata.DeleteModel(ms.DeleteModelRequest(name="models/m"))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await registry.metadata.DeleteModel(ms.DeleteModelRequest(name="models/m", force=True))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await registry.metadata.GetModel(ms.GetModelRequest(name="models/m"))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_params_metrics_lineage_round_trip(registry: RunningRegistry) -> None:
    await new_model(registry, "m")
    created = await new_version(
        registry,
        "m",
        params={
            "lr": model_version_pb2.ParamValue(double_value=0.001),
            "epochs": model_version_pb2.ParamValue(int_value=10),
            "optimizer": model_version_pb2.ParamValue(string_value="adam"),
            "amp": model_version_pb2.ParamValue(bool_value=True),
        },
        metrics={"accuracy": 0.93},
        lineage=model_version_pb2.Lineage(
            source=model_version_pb2.SourceCode(repo_url="git@x:y.git", commit="abc", dirty=True)
        ),
        framework="pytorch",
    )
    fetched = await registry.metadata.GetModelVersion(ms.GetModelVersionRequest(name=created.name))
    assert fetched.params["lr"].double_value == 0.001
    assert fetched.params["epochs"].int_value == 10
    assert fetched.params["optimizer"].string_value == "adam"
    assert fetched.params["amp"].bool_value is True
    assert fetched.metrics["accuracy"] == pytest.approx(0.93)
    assert fetched.lineage.source.commit == "abc"
    assert fetched.lineage.source.dirty is True
    assert fetched.created_by == "admin"  # the principal of the test registry's admin token

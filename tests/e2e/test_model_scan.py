"""Model files scanned after their commit, over gRPC against PostgreSQL (issue 13, item 6).

Each case pushes one file the test builds, waits for the version's verdict (the scan runs in
the background after CommitModelVersion answers), then the filter and the promotion gate
read it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from modelregistry.metadata.v1 import governance_pb2 as gov
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import model_event_pb2, model_pb2, model_version_pb2
from tests.conftest import RunningRegistry
from tests.support.artifacts import sha256_hex, upload
from tests.support.rpc import error_info
from tests.unit.scanning_files import (
    os_system_pickle,
    safetensors_file,
    tensor,
    torch_state_dict_pickle,
    torch_zip,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MODEL = "models/scanned"
V = model_version_pb2
CASES: dict[str, tuple[str, bytes, int]] = {
    "pickle": ("model.pkl", os_system_pickle(), V.SCAN_VERDICT_UNSAFE),
    "torch_zip": ("model.pt", torch_zip(os_system_pickle()), V.SCAN_VERDICT_UNSAFE),
    "truncated": (
        "model.safetensors",
        safetensors_file({"a": tensor("F32", [4], 0, 16)}, 16)[:-8],
        V.SCAN_VERDICT_UNSAFE,
    ),
    "overlap": (
        "model.safetensors",
        safetensors_file({"a": tensor("F32", [4], 0, 16), "b": tensor("F32", [4], 8, 24)}, 24),
        V.SCAN_VERDICT_UNSAFE,
    ),
    "valid": (
        "model.safetensors",
        safetensors_file({"a": tensor("F32", [4], 0, 16)}, 16),
        V.SCAN_VERDICT_SAFE,
    ),
    "torch_ok": ("model.pt", torch_zip(torch_state_dict_pickle()), V.SCAN_VERDICT_SAFE),
}


async def _push(registry: RunningRegistry, path: str, data: bytes) -> str:
    stub = registry.metadata
    version = await stub.CreateModelVersion(ms.CreateModelVersionRequest(parent=MODEL))
    await upload(registry.artifacts, data, version.name)
    files = [V.ManifestFile(path=path, sha256=sha256_hex(data), size_bytes=len(data))]
    ready = await stub.CommitModelVersion(
        ms.CommitModelVersionRequest(name=version.name, files=files)
    )
    return ready.name


async def _verdict(registry: RunningRegistry, name: str) -> V.ModelVersion:
    for _ in range(400):
        version = await registry.metadata.GetModelVersion(ms.GetModelVersionRequest(name=name))
        if version.scan_verdict != V.SCAN_VERDICT_UNSPECIFIED:
            return version
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} was never scanned")


async def test_versions_are_scanned_filtered_and_gated(registry: RunningRegistry) -> None:
    stub = registry.metadata
    await stub.CreateModel(ms.CreateModelRequest(model_id="scanned", model=model_pb2.Model()))
    names = {case: await _push(registry, path, data) for case, (path, data, _) in CASES.items()}

    for case, name in names.items():
        version = await _verdict(registry, name)
        assert version.scan_verdict == CASES[case][2], (case, version.file_scans)
        assert version.HasField("scan_time")
        (file_scan,) = version.file_scans
        assert file_scan.path == CASES[case][0]
        if CASES[case][2] == V.SCAN_VERDICT_UNSAFE:
            assert file_scan.findings, case
    pickle_scan = (await _verdict(registry, names["pickle"])).file_scans[0]
    assert pickle_scan.scanner == "pickle"
    assert any("os.system" in f or "posix.system" in f for f in pickle_scan.findings)

    unsafe = await stub.ListModelVersions(
        ms.ListModelVersionsRequest(parent=MODEL, filter='scan = "UNSAFE"')
    )
    expected = {
        names[c] for c, (_, _, verdict) in CASES.items() if verdict == V.SCAN_VERDICT_UNSAFE
    }
    assert {v.name for v in unsafe.model_versions} == expected
    safe = await stub.ListModelVersions(
        ms.ListModelVersionsRequest(parent=MODEL, filter="scan = SCAN_VERDICT_SAFE")
    )
    assert {v.name for v in safe.model_versions} == {names["valid"], names["torch_ok"]}

    # The gate: an UNSAFE version cannot become production; the SAFE one can.
    rule = gov.ProtectionRule(name="protectionRules/scanned/aliases/production")
    await stub.SetProtectionRule(gov.SetProtectionRuleRequest(protection_rule=rule))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.SetAlias(
            ms.SetAliasRequest(model=MODEL, alias="production", version=names["pickle"])
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(refused.value)
    assert info.reason == "PROMOTION_BLOCKED"
    assert info.metadata["scan"] == "UNSAFE"
    await stub.SetAlias(ms.SetAliasRequest(model=MODEL, alias="production", version=names["valid"]))
    resolved = await stub.ResolveModelVersion(
        ms.ResolveModelVersionRequest(ref="scanned@production")
    )
    assert resolved.name == names["valid"]
    assert resolved.scan_verdict == V.SCAN_VERDICT_SAFE
    # An unprotected alias may still point at it (the verdict is there to be seen).
    await stub.SetAlias(
        ms.SetAliasRequest(model=MODEL, alias="quarantine", version=names["pickle"])
    )


async def test_a_watcher_hears_the_verdict(registry: RunningRegistry) -> None:
    stub = registry.metadata
    await stub.CreateModel(ms.CreateModelRequest(model_id="scanned", model=model_pb2.Model()))
    watch: Any = stub.WatchModelEvents(ms.WatchModelEventsRequest(model=MODEL), timeout=60)
    await watch.initial_metadata()
    path, data, expected = CASES["valid"]
    name = await _push(registry, path, data)
    kinds = []
    async for event in watch:
        kinds.append(model_event_pb2.ModelEventType.Name(event.type))
        if event.type == model_event_pb2.MODEL_EVENT_TYPE_VERSION_SCANNED:
            assert event.model_version == name
            break
    watch.cancel()
    assert kinds == ["MODEL_EVENT_TYPE_VERSION_READY", "MODEL_EVENT_TYPE_VERSION_SCANNED"]
    version = await stub.GetModelVersion(ms.GetModelVersionRequest(name=name))
    assert version.scan_verdict == expected

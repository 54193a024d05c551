"""ListChecks across versions (parent ``models/{model}/versions/-`` with ``versions``): one call
answers what one call per version would, against a real server and PostgreSQL."""

from __future__ import annotations

import grpc
import pytest

from modelregistry.metadata.v1 import governance_pb2 as gov
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from tests.conftest import RunningRegistry
from tests.support.auth import bearer, create_token
from tests.support.metadata import new_model, push

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PASSED, FAILED, PENDING = gov.Check.STATUS_PASSED, gov.Check.STATUS_FAILED, gov.Check.STATUS_PENDING


async def _report(registry: RunningRegistry, version: int, name: str, status: int) -> None:
    await registry.metadata.ReportCheck(
        gov.ReportCheckRequest(
            parent=f"models/m/versions/{version}",
            check=gov.Check(check_name=name, status=status),  # type: ignore[arg-type]
        )
    )


async def test_one_call_answers_for_many_versions(registry: RunningRegistry) -> None:
    await new_model(registry, "m")
    await new_model(registry, "other")
    for number in range(1, 5):
        await push(registry, "m", {"w.bin": b"w%d" % number})
    await push(registry, "other", {"w.bin": b"o"})
    await _report(registry, 1, "eval/b", FAILED)
    await _report(registry, 1, "eval/b", PASSED)  # the latest report wins
    await _report(registry, 1, "eval/a", PENDING)
    await _report(registry, 3, "eval/a", FAILED)
    await _report(registry, 4, "eval/a", PASSED)
    await registry.metadata.ReportCheck(
        gov.ReportCheckRequest(
            parent="models/other/versions/1", check=gov.Check(check_name="x", status=PASSED)
        )
    )
    await registry.metadata.DeleteModelVersion(
        ms.DeleteModelVersionRequest(name="models/m/versions/4")
    )

    asked = [3, 1, 2, 4, 99]
    batch = await registry.metadata.ListChecks(
        gov.ListChecksRequest(parent="models/m/versions/-", versions=asked)
    )
    one_by_one = []
    for number in sorted(asked[:3]):
        single = await registry.metadata.ListChecks(
            gov.ListChecksRequest(parent=f"models/m/versions/{number}")
        )
        one_by_one += list(single.checks)
    assert list(batch.checks) == one_by_one
    assert [c.name for c in batch.checks] == [
        "models/m/versions/1/checks/eval/a",
        "models/m/versions/1/checks/eval/b",
        "models/m/versions/3/checks/eval/a",
    ]  # by version, then name; the DELETED v4, the missing v99 and the other model: none
    assert [c.status for c in batch.checks] == [PENDING, PASSED, FAILED]


@pytest.mark.parametrize(
    ("parent", "versions", "all_reports", "field"),
    [
        ("models/m/versions/-", [], False, "versions"),
        ("models/m/versions/-", list(range(1, 102)), False, "versions"),
        ("models/m/versions/-", [1, 1], False, "versions"),
        ("models/m/versions/-", [0], False, "versions"),
        ("models/m/versions/-", [1], True, "all_reports"),
        ("models/m/versions/1", [1], False, "versions"),
        ("models/M/versions/-", [1], False, "parent"),
    ],
)
async def test_bad_requests_are_invalid_arguments(
    registry: RunningRegistry, parent: str, versions: list[int], all_reports: bool, field: str
) -> None:
    await new_model(registry, "m")
    request = gov.ListChecksRequest(parent=parent, versions=versions, all_reports=all_reports)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await registry.metadata.ListChecks(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (refused.value.details() or "")


async def test_the_model_must_be_readable(registry: RunningRegistry) -> None:
    await new_model(registry, "m")
    await push(registry, "m", {"w.bin": b"w"})
    secret = await create_token(registry.target, "olga", role="viewer", scope="other")
    request = gov.ListChecksRequest(parent="models/m/versions/-", versions=[1])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await registry.metadata.ListChecks(request, metadata=bearer(secret))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

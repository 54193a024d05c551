"""One principal's unfinished upload sessions are bounded in number and in unwritten bytes."""

from __future__ import annotations

import hashlib

import pytest

from modelregistry_server.artifacts.app.uploads import UploadService
from modelregistry_server.artifacts.domain.upload import (
    UPLOAD_BYTES_EXHAUSTED,
    UPLOAD_SESSIONS_EXHAUSTED,
    UploadQuota,
)
from modelregistry_server.common.kernel.errors import ResourceExhausted
from tests.unit.artifact_fakes import InMemoryBlobIndex, InMemoryBlobStore, InMemoryUploadSessions

pytestmark = pytest.mark.timeout(10)


def _digest(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def _service(quota: UploadQuota) -> UploadService:
    return UploadService(
        InMemoryUploadSessions(), InMemoryBlobIndex(), InMemoryBlobStore(), quota=quota
    )


async def test_sessions_past_the_count_are_refused_for_that_principal_only() -> None:
    service = _service(UploadQuota(max_sessions=2, max_unwritten_bytes=10**9))
    for i in range(2):
        await service.create_session(_digest(i), 10, owner="ana")
    with pytest.raises(ResourceExhausted) as refused:
        await service.create_session(_digest(2), 10, owner="ana")
    assert refused.value.reason == UPLOAD_SESSIONS_EXHAUSTED
    assert "--max-upload-sessions-per-principal" in refused.value.message
    await service.create_session(_digest(3), 10, owner="bob")
    # The registry's own sessions (no owner) are not counted.
    await service.create_session(_digest(4), 10, owner=None)


async def test_declared_but_unwritten_bytes_are_bounded() -> None:
    service = _service(UploadQuota(max_sessions=100, max_unwritten_bytes=1000))
    await service.create_session(_digest(0), 600, owner="ana")
    with pytest.raises(ResourceExhausted) as refused:
        await service.create_session(_digest(1), 401, owner="ana")
    assert refused.value.reason == UPLOAD_BYTES_EXHAUSTED
    await service.create_session(_digest(2), 400, owner="ana")


async def test_a_retried_create_is_not_counted_again() -> None:
    service = _service(UploadQuota(max_sessions=1, max_unwritten_bytes=10**9))
    request_id = "6f1c1d1e-1d9b-4a5e-8f00-5a0e6b7c8d9e"
    first = await service.create_session(_digest(0), 10, request_id, owner="ana")
    again = await service.create_session(_digest(0), 10, request_id, owner="ana")
    assert again.session_id == first.session_id

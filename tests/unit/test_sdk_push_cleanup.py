"""A push that fails cleans up its PENDING version, but never one whose commit succeeded.

A real :class:`Transport` (its retries and error translation) over fake stubs that commit and
then lose the reply, fail to commit, or cannot be read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from modelregistry import _push as _push_engine
from modelregistry._options import PushOptions
from modelregistry._transport import RetryPolicy, Transport
from modelregistry.artifact.v1 import artifact_service_pb2
from modelregistry.cache import Cache
from modelregistry.errors import DeadlineExceededError, InternalError, PermissionDeniedError
from modelregistry.metadata.v1 import alias_pb2, model_pb2, model_version_pb2
from tests.unit.test_sdk_retry import FakeRpcError

pytestmark = pytest.mark.timeout(10)


class _FakeRegistry:
    """The metadata and artifact calls of a push, on one PENDING version, with scripted faults.

    ``commit_then`` is raised after the commit took effect (its reply is lost); ``commit_fails``
    instead of it. ``get_fails`` are raised by ``GetModelVersion`` in turn.
    """

    def __init__(self) -> None:
        self.version = model_version_pb2.ModelVersion()
        self.commits = 0
        self.commit_then: list[BaseException] = []
        self.commit_fails: list[BaseException] = []
        self.get_fails: list[BaseException] = []
        # The lost commit of ``manifest`` lands between the read and the delete.
        self.land_before_delete = False
        self.manifest: list[model_version_pb2.ManifestFile] = []
        self.deletes: list[str] = []
        self.aliases: list[tuple[str, str]] = []

    def GetModel(self, request: Any, **_: Any) -> Any:  # noqa: N802 - the stubs' names
        return model_pb2.Model(name=request.name)

    def CreateModelVersion(self, request: Any, **_: Any) -> Any:  # noqa: N802
        self.version = model_version_pb2.ModelVersion(
            name=f"{request.parent}/versions/1",
            version=1,
            state=model_version_pb2.MODEL_VERSION_STATE_PENDING,
            etag="etag-pending",
        )
        return self.version

    def FindMissingBlobs(self, request: Any, **_: Any) -> Any:  # noqa: N802
        return artifact_service_pb2.FindMissingBlobsResponse()  # the store has every blob

    def _commit(self, files: Iterable[model_version_pb2.ManifestFile]) -> None:
        self.version.state = model_version_pb2.MODEL_VERSION_STATE_READY
        self.version.etag = "etag-ready"
        del self.version.files[:]
        self.version.files.extend(files)

    def CommitModelVersion(self, request: Any, **_: Any) -> Any:  # noqa: N802
        self.commits += 1
        if self.commit_fails:
            raise self.commit_fails.pop(0)
        if self.version.state == model_version_pb2.MODEL_VERSION_STATE_PENDING:
            self._commit(request.files)
        if self.commit_then:
            raise self.commit_then.pop(0)
        return self.version

    def GetModelVersion(self, request: Any, **_: Any) -> Any:  # noqa: N802
        if self.get_fails:
            raise self.get_fails.pop(0)
        answer = model_version_pb2.ModelVersion()
        answer.CopyFrom(self.version)
        return answer

    def DeleteModelVersion(self, request: Any, **_: Any) -> Any:  # noqa: N802
        self.deletes.append(request.etag)
        if self.land_before_delete:
            self._commit(self.manifest)
        if request.etag != self.version.etag:
            raise FakeRpcError(grpc.StatusCode.ABORTED, "stale etag", "ETAG_MISMATCH")
        self.version.state = model_version_pb2.MODEL_VERSION_STATE_DELETED
        return self.version

    def SetAlias(self, request: Any, **_: Any) -> Any:  # noqa: N802
        self.aliases.append((request.alias, request.version))
        return alias_pb2.Alias()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[_FakeRegistry, Transport]]:
    fake = _FakeRegistry()
    transport = Transport(
        "127.0.0.1:1", retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.0), token="t"
    )
    transport._sleep = lambda _: None
    transport.metadata_stub = fake  # type: ignore[assignment]
    transport.artifact_stub = fake  # type: ignore[assignment]
    yield fake, transport
    transport.close()


def _push(tmp_path: Path, transport: Transport, alias: str | None = None) -> Any:
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / "w.bin").write_bytes(b"weights")
    options = PushOptions(model="m", lineage=False, alias=alias)
    return _push_engine.push_model(transport, Cache(tmp_path / "cache"), tmp_path / "out", options)


def _deadline() -> FakeRpcError:
    return FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")


def _dropped() -> FakeRpcError:
    return FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Socket closed")


@pytest.mark.parametrize("lost_reply", [[_deadline()], [_dropped(), _dropped(), _dropped()]])
def test_a_commit_whose_reply_was_lost_is_a_successful_push(
    tmp_path: Path, registry: tuple[_FakeRegistry, Transport], lost_reply: list[BaseException]
) -> None:
    fake, transport = registry
    fake.commit_then = list(lost_reply)
    version = _push(tmp_path, transport, alias="staging")
    assert version.state == model_version_pb2.MODEL_VERSION_STATE_READY
    assert version.name == "models/m/versions/1"
    assert [(f.path, f.size_bytes) for f in version.files] == [("w.bin", 7)]
    assert fake.deletes == []  # never deleted
    assert fake.version.state == model_version_pb2.MODEL_VERSION_STATE_READY
    # The push went on as a success: the alias was set.
    assert fake.aliases == [("staging", "models/m/versions/1")]


def test_a_commit_that_failed_deletes_the_still_pending_version(
    tmp_path: Path, registry: tuple[_FakeRegistry, Transport]
) -> None:
    fake, transport = registry
    fake.commit_fails = [FakeRpcError(grpc.StatusCode.INTERNAL, "boom")]
    with pytest.raises(InternalError) as info:
        _push(tmp_path, transport)
    assert info.value.message == "boom"
    assert fake.deletes == ["etag-pending"]  # only the version as it was read
    assert fake.version.state == model_version_pb2.MODEL_VERSION_STATE_DELETED


def test_a_version_whose_state_cannot_be_read_is_left_pending_and_the_error_says_so(
    tmp_path: Path, registry: tuple[_FakeRegistry, Transport]
) -> None:
    fake, transport = registry
    fake.commit_fails = [_deadline()]
    fake.get_fails = [_dropped() for _ in range(3)]
    with pytest.raises(DeadlineExceededError) as info:
        _push(tmp_path, transport)
    assert fake.deletes == []
    assert fake.version.state == model_version_pb2.MODEL_VERSION_STATE_PENDING
    assert "models/m/versions/1 was left PENDING" in str(info.value)
    assert "expires abandoned PENDING versions" in info.value.message


def test_a_commit_landing_between_the_read_and_the_delete_is_kept(
    tmp_path: Path, registry: tuple[_FakeRegistry, Transport]
) -> None:
    fake, transport = registry
    fake.commit_fails = [_deadline()]  # the server is still committing when we give up
    fake.land_before_delete = True
    fake.manifest = [
        model_version_pb2.ManifestFile(
            path="w.bin", sha256=hashlib.sha256(b"weights").hexdigest(), size_bytes=7
        )
    ]
    version = _push(tmp_path, transport)
    assert fake.deletes == ["etag-pending"]  # refused: the etag had changed
    assert version.state == model_version_pb2.MODEL_VERSION_STATE_READY
    assert fake.version.state == model_version_pb2.MODEL_VERSION_STATE_READY


def test_an_interrupted_push_is_not_reported_as_a_success_nor_deleted_once_ready(
    tmp_path: Path, registry: tuple[_FakeRegistry, Transport]
) -> None:
    fake, transport = registry
    fake.commit_then = [KeyboardInterrupt()]
    with pytest.raises(KeyboardInterrupt) as info:
        _push(tmp_path, transport)
    assert fake.deletes == []
    assert fake.version.state == model_version_pb2.MODEL_VERSION_STATE_READY
    assert "models/m/versions/1 is READY nevertheless" in " ".join(info.value.__notes__)


def test_a_failed_upload_deletes_the_pending_version(
    tmp_path: Path, registry: tuple[_FakeRegistry, Transport]
) -> None:
    fake, transport = registry

    def find_missing(request: Any, **_: Any) -> Any:
        raise FakeRpcError(grpc.StatusCode.PERMISSION_DENIED, "no", "PERMISSION_DENIED")

    fake.FindMissingBlobs = find_missing  # type: ignore[method-assign]
    with pytest.raises(PermissionDeniedError):
        _push(tmp_path, transport)
    assert fake.commits == 0
    assert fake.deletes == ["etag-pending"]

"""Push/pull building blocks without a server: files, lineage, cache, verification, resume."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from modelregistry import _pull
from modelregistry._files import collect_files, media_type
from modelregistry._lineage import detect_git_source
from modelregistry._options import PullOptions
from modelregistry.artifact.v1 import artifact_service_pb2
from modelregistry.cache import Cache, ref_key
from modelregistry.errors import (
    FailedPreconditionError,
    IntegrityError,
    InvalidArgumentError,
    NotCachedError,
    ResourceExhaustedError,
)
from modelregistry.metadata.v1 import model_version_pb2
from tests.unit.test_sdk_retry import FakeRpcError


def test_collect_files_walks_nested_folders_in_posix_order(tmp_path: Path) -> None:
    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / "b" / "c" / "w x.bin").write_bytes(b"1")
    (tmp_path / "a.txt").write_bytes(b"")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    files = collect_files([tmp_path])
    assert [(f.path, f.size) for f in files] == [("a.txt", 0), ("b/c/w x.bin", 1)]


def test_collect_files_rejects_missing_paths_and_name_clashes(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        collect_files([tmp_path / "nope"])
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "x" / "f").write_text("1")
    (tmp_path / "y" / "f").write_text("2")
    with pytest.raises(InvalidArgumentError, match="two files"):
        collect_files([tmp_path / "x" / "f", tmp_path / "y" / "f"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidArgumentError, match="nothing to push"):
        collect_files([tmp_path / "empty"])


def test_media_types_cover_model_formats() -> None:
    assert media_type("w/model.safetensors") == "application/vnd.safetensors"
    assert media_type("config.json") == "application/json"
    assert media_type("README") == ""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


def test_lineage_names_the_commit_strips_credentials_and_sees_dirt(tmp_path: Path) -> None:
    assert detect_git_source(tmp_path) is None
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.invalid")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "train.py").write_text("print(1)\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-q", "-m", "init")
    _git(tmp_path, "remote", "add", "origin", "https://user:secret@git.example.invalid/org/repo")
    source = detect_git_source(tmp_path)
    assert source is not None
    assert source.repo_url == "https://git.example.invalid/org/repo"
    assert len(source.commit) == 40
    assert source.dirty is False
    (tmp_path / "train.py").write_text("print(2)\n")
    dirty = detect_git_source(tmp_path)
    assert dirty is not None
    assert dirty.dirty is True


@pytest.mark.parametrize(
    ("ref", "key"),
    [
        ("m", ("m", "latest")),
        ("models/m", ("m", "latest")),
        ("m@production", ("m", "%40production")),
        ("m:3", ("m", "%3A3")),
        ("m/versions/3", ("m", "%3A3")),
        ("models/m/versions/3", ("m", "%3A3")),
        ("0b5a4cde-1111-4222-8333-444455556666", ("_uid", "0b5a4cde-1111-4222-8333-444455556666")),
    ],
)
def test_ref_keys_normalise_spellings(ref: str, key: tuple[str, str]) -> None:
    assert ref_key(ref) == key


def test_saved_refs_answer_every_spelling_of_the_version(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    version = model_version_pb2.ModelVersion(
        name="models/m/versions/3", version=3, uid="0b5a4cde-1111-4222-8333-444455556666"
    )
    cache.save_ref("m@production", version)
    for ref in ("m@production", "m:3", "models/m/versions/3", version.uid):
        loaded = cache.load_ref(ref)
        assert loaded is not None
        assert loaded.name == version.name
    assert cache.load_ref("m@staging") is None


def test_digests_are_remembered_until_the_file_changes(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    stat = path.stat()
    assert cache.digests.known(path, stat) is None
    cache.digests.remember(path, stat, "d" * 64)
    assert cache.digests.known(path, stat) == "d" * 64
    path.write_bytes(b"abcd")
    assert cache.digests.known(path, path.stat()) is None
    cache.close()


def test_the_upload_journal_resumes_only_a_session_for_the_same_size(tmp_path: Path) -> None:
    journal = Cache(tmp_path).uploads
    sha = "a" * 64
    assert journal.session(sha, 3) is None
    journal.save(sha, "sessions/s1", 3)
    assert journal.session(sha, 3) == "sessions/s1"
    assert journal.session(sha, 4) is None  # another file with that name: start over
    assert journal.count() == 1
    journal.drop(sha)
    journal.drop(sha)  # dropping twice is fine
    assert journal.session(sha, 3) is None
    assert journal.count() == 0
    (tmp_path / "uploads" / f"{sha}.json").write_text("{not json")
    assert journal.session(sha, 3) is None  # a torn record is no record


def test_select_files_applies_allow_then_ignore_globs() -> None:
    files = [
        model_version_pb2.ManifestFile(path=p)
        for p in ("config.json", "w/a.safetensors", "w/b.safetensors", "w/optimizer.pt")
    ]
    chosen = _pull.select_files(files, ["*.safetensors", "*.json"], "w/b*")
    assert [f.path for f in chosen] == ["config.json", "w/a.safetensors"]
    assert len(_pull.select_files(files, None, None)) == 4


class _FakeArtifacts:
    """Serves one blob through ``Read`` (no presigned URLs), optionally corrupted."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read_offsets: list[int] = []

    def GenerateDownloadUrl(self, request: Any) -> Any:  # noqa: N802 - the stub's name
        raise FailedPreconditionError("no URLs here", reason="DOWNLOAD_URL_UNSUPPORTED")

    def Read(self, request: Any, **_: Any) -> Iterator[Any]:  # noqa: N802
        self.read_offsets.append(request.read_offset)
        for start in range(request.read_offset, len(self.data), 7):
            yield artifact_service_pb2.ReadResponse(data=self.data[start : start + 7])


class _FakeMetadata:
    def __init__(self, version: model_version_pb2.ModelVersion) -> None:
        self.version = version

    def ResolveModelVersion(self, request: Any) -> Any:  # noqa: N802
        return self.version


class _FakeTransport:
    target = "fake"
    metadata = ()

    def __init__(self, data: bytes, version: model_version_pb2.ModelVersion) -> None:
        self.artifact_stub = _FakeArtifacts(data)
        self.metadata_stub = _FakeMetadata(version)

    def unary(self, method: Any, request: Any, **_: Any) -> Any:
        return method(request)


def _version_of(content: bytes) -> model_version_pb2.ModelVersion:
    digest = hashlib.sha256(content).hexdigest()
    return model_version_pb2.ModelVersion(
        name="models/m/versions/1",
        version=1,
        files=[
            model_version_pb2.ManifestFile(path="w.bin", sha256=digest, size_bytes=len(content))
        ],
    )


def test_corrupted_bytes_are_rejected_and_never_enter_the_cache(tmp_path: Path) -> None:
    content = os.urandom(100)
    version = _version_of(content)
    transport = _FakeTransport(b"X" + content[1:], version)
    cache = Cache(tmp_path)
    with pytest.raises(IntegrityError, match="expected 100 bytes"):
        _pull.pull_model(transport, cache, "m:1")  # type: ignore[arg-type]
    digest = version.files[0].sha256
    assert not cache.blob_path(digest).exists()
    assert not cache.incomplete_path(digest).exists()


def test_a_partial_download_resumes_from_its_offset(tmp_path: Path) -> None:
    content = os.urandom(100)
    version = _version_of(content)
    transport = _FakeTransport(content, version)
    cache = Cache(tmp_path)
    digest = version.files[0].sha256
    cache.incomplete_path(digest).parent.mkdir(parents=True)
    cache.incomplete_path(digest).write_bytes(content[:42])
    snapshot = _pull.pull_model(transport, cache, "m:1")  # type: ignore[arg-type]
    assert transport.artifact_stub.read_offsets == [42]
    assert (snapshot / "w.bin").read_bytes() == content
    # Offline, the same ref is answered from the cache without the transport.
    assert _pull.pull_model(None, cache, "m:1", offline=True) == snapshot
    with pytest.raises(NotCachedError):
        _pull.pull_model(None, cache, "m@production", offline=True)


class _Pauses(list[float]):
    """Stands in for the ``time`` module of ``_pull``: records each pause instead of sleeping."""

    def sleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.mark.parametrize(("hint", "pause"), [(None, 1.0), (0.1, 1.0), (3.0, 3.0)])
def test_a_read_refused_by_the_registrys_stream_limit_is_retried_after_the_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hint: float | None, pause: float
) -> None:
    pauses = _Pauses()
    monkeypatch.setattr(_pull, "time", pauses)
    content = os.urandom(100)
    transport = _FakeTransport(content, _version_of(content))
    serve = transport.artifact_stub.Read
    refusals = [
        FakeRpcError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "too many streams",
            "TOO_MANY_STREAMS",
            retry_delay_s=hint,
        )
    ]

    def read(request: Any, **kwargs: Any) -> Iterator[Any]:
        if refusals:
            raise refusals.pop()
        return serve(request, **kwargs)

    transport.artifact_stub.Read = read  # type: ignore[method-assign]
    snapshot = _pull.pull_model(transport, Cache(tmp_path), "m:1")  # type: ignore[arg-type]
    assert (snapshot / "w.bin").read_bytes() == content
    # The stream's own first pause is 1 s; a longer RetryInfo delay wins.
    assert pauses == [pause]


def test_a_read_over_the_message_size_limit_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = _Pauses()
    monkeypatch.setattr(_pull, "time", pauses)
    content = os.urandom(100)
    transport = _FakeTransport(content, _version_of(content))
    calls = []

    def read(request: Any, **_: Any) -> Iterator[Any]:
        calls.append(request.read_offset)
        raise FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max")

    transport.artifact_stub.Read = read  # type: ignore[method-assign]
    with pytest.raises(ResourceExhaustedError, match="larger than max"):
        _pull.pull_model(transport, Cache(tmp_path), "m:1")  # type: ignore[arg-type]
    assert calls == [0]
    assert pauses == []


class _UnreachableUrls(_FakeArtifacts):
    """Hands out a URL nothing listens on, as a server behind NAT would."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.urls = 0

    def GenerateDownloadUrl(self, request: Any) -> Any:  # noqa: N802
        self.urls += 1
        return artifact_service_pb2.GenerateDownloadUrlResponse(url="http://127.0.0.1:1/blob")


def test_an_unreachable_download_url_falls_back_to_read_for_every_blob(tmp_path: Path) -> None:
    first, second = os.urandom(50), os.urandom(60)
    version = _version_of(first)
    version.files.append(
        model_version_pb2.ManifestFile(
            path="x.bin", sha256=hashlib.sha256(second).hexdigest(), size_bytes=len(second)
        )
    )
    transport = _FakeTransport(b"", version)
    stub = _UnreachableUrls(b"")
    transport.artifact_stub = stub

    def read(request: Any, **_: Any) -> Iterator[Any]:
        data = first if request.sha256 == version.files[0].sha256 else second
        yield artifact_service_pb2.ReadResponse(data=data[request.read_offset :])

    stub.Read = read  # type: ignore[method-assign]
    snapshot = _pull.pull_model(transport, Cache(tmp_path), "m:1", PullOptions(parallelism=1))  # type: ignore[arg-type]
    assert (snapshot / "w.bin").read_bytes() == first
    assert (snapshot / "x.bin").read_bytes() == second
    assert stub.urls == 1  # the first failure switched URLs off for the rest of the pull


def test_writeback_starts_in_stretches_while_the_blob_downloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int, int]] = []

    def record(fd: int, offset: int, length: int, flags: int) -> int:
        assert os.fstat(fd).st_size >= offset + length  # flushed before it is handed over
        calls.append((offset, length, flags))
        return 0

    monkeypatch.setattr(_pull, "_WRITEBACK_BYTES", 64)
    monkeypatch.setattr(_pull, "_sync_file_range", record)
    content = os.urandom(300)
    version = _version_of(content)
    snapshot = _pull.pull_model(_FakeTransport(content, version), Cache(tmp_path), "m:1")  # type: ignore[arg-type]
    assert (snapshot / "w.bin").read_bytes() == content
    # Contiguous stretches of at least 64 bytes from the start, "write, don't wait" only.
    assert [offset for offset, _, _ in calls] == [0] + [
        sum(length for _, length, _ in calls[:i]) for i in range(1, len(calls))
    ]
    assert len(calls) == 4
    assert all(length >= 64 for _, length, _ in calls)
    assert {flags for _, _, flags in calls} == {_pull._SYNC_FILE_RANGE_WRITE}


def test_a_refused_writeback_call_is_dropped_and_the_pull_still_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def refuse(fd: int, offset: int, length: int, flags: int) -> int:
        calls.append(offset)
        return -1

    monkeypatch.setattr(_pull, "_WRITEBACK_BYTES", 64)
    monkeypatch.setattr(_pull, "_sync_file_range", refuse)
    content = os.urandom(300)
    version = _version_of(content)
    snapshot = _pull.pull_model(_FakeTransport(content, version), Cache(tmp_path), "m:1")  # type: ignore[arg-type]
    assert (snapshot / "w.bin").read_bytes() == content
    assert calls == [0]  # asked once, then left to the final fsync
    assert _pull._sync_file_range is None


@pytest.mark.skipif(os.uname().sysname != "Linux", reason="sync_file_range is Linux-only")
def test_the_real_sync_file_range_is_found_and_accepts_a_file(tmp_path: Path) -> None:
    assert _pull._sync_file_range is not None
    path = tmp_path / "f"
    path.write_bytes(b"x" * 8192)
    fd = os.open(path, os.O_RDWR)
    try:
        # Arguments past 32 bits check that the 64-bit offset types reached libc intact.
        assert _pull._sync_file_range(fd, 0, 1 << 40, _pull._SYNC_FILE_RANGE_WRITE) == 0
        assert _pull._sync_file_range(fd, -1, 10, _pull._SYNC_FILE_RANGE_WRITE) == -1
    finally:
        os.close(fd)

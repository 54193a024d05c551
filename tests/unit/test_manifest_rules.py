"""The SDK and the server refuse exactly the same manifests.

Both run over the shared tables in ``tests/support/manifest_paths.py``: a path one side accepts
and the other refuses fails here, whichever side changed. The server's rule is what a commit
must satisfy; the SDK's is what a pull insists on before writing a byte.
"""

from __future__ import annotations

import pytest

from modelregistry import _manifest
from modelregistry.errors import IntegrityError, InvalidResponseError
from modelregistry.metadata.v1 import model_version_pb2
from modelregistry_server.metadata.domain import version as server
from modelregistry_server.metadata.domain.errors import InvalidArgument
from tests.support.manifest_paths import (
    ACCEPTED_MANIFESTS,
    ACCEPTED_PATHS,
    COLLIDING_PATHS,
    EMPTY_MANIFEST,
    GOOD_SHA,
    REJECTED_MANIFESTS,
    REJECTED_PATHS,
    RejectedManifest,
    RejectedPath,
)

Entries = list[tuple[str, str, int]]


def _server_check(entries: Entries) -> None:
    server.validate_manifest([server.ManifestFile(p, sha, size) for p, sha, size in entries])


def _sdk_check(entries: Entries) -> None:
    files = [model_version_pb2.ManifestFile(path=p, sha256=s, size_bytes=n) for p, s, n in entries]
    _manifest.check_manifest(files, "models/m/versions/1")


@pytest.mark.parametrize("path", ACCEPTED_PATHS, ids=ascii)
def test_both_sides_accept_every_accepted_path(path: str) -> None:
    entries = [(path, GOOD_SHA, 1)]
    _server_check(entries)
    _sdk_check(entries)
    assert _manifest.path_problem(path) == ""


@pytest.mark.parametrize("case", REJECTED_PATHS, ids=lambda case: ascii(case.path)[:40])
def test_both_sides_refuse_every_rejected_path_for_the_same_rule(case: RejectedPath) -> None:
    entries = [("ok.bin", GOOD_SHA, 1), (case.path, GOOD_SHA, 1)]
    with pytest.raises(InvalidArgument) as on_server:
        _server_check(entries)
    assert on_server.value.reason == "MANIFEST_INVALID"
    assert case.rule in str(on_server.value)
    with pytest.raises(InvalidResponseError) as on_client:
        _sdk_check(entries)
    assert on_client.value.reason == "MANIFEST_INVALID"
    assert case.rule in on_client.value.message
    assert repr(case.path)[:60] in on_client.value.message  # names the bad path
    assert "nothing was written" in on_client.value.message
    assert _manifest.path_problem(case.path) == server._path_problem(case.path)


@pytest.mark.parametrize("case", REJECTED_MANIFESTS, ids=lambda case: case.name)
def test_both_sides_refuse_every_rejected_manifest(case: RejectedManifest) -> None:
    with pytest.raises(InvalidArgument) as on_server:
        _server_check(case.files)
    assert case.rule in str(on_server.value)
    with pytest.raises(InvalidResponseError) as on_client:
        _sdk_check(case.files)
    assert case.rule in on_client.value.message


@pytest.mark.parametrize("entries", ACCEPTED_MANIFESTS, ids=str)
def test_both_sides_accept_every_accepted_manifest(entries: Entries) -> None:
    _server_check(entries)
    _sdk_check(entries)


def test_the_server_commits_no_empty_manifest_but_the_sdk_pulls_one() -> None:
    with pytest.raises(InvalidArgument) as on_server:
        _server_check(EMPTY_MANIFEST)
    assert on_server.value.reason == "MANIFEST_INVALID"
    assert on_server.value.field == "files"
    assert "is empty" in on_server.value.rule
    _sdk_check(EMPTY_MANIFEST)  # a version committed before the rule: nothing to write


@pytest.mark.parametrize("pair", COLLIDING_PATHS, ids=ascii)
def test_both_sides_fold_colliding_paths_alike(pair: tuple[str, str]) -> None:
    first, second = pair
    assert server.fold_path(first) == server.fold_path(second)
    assert _manifest.fold_path(first) == server.fold_path(first)
    assert _manifest.fold_path(second) == server.fold_path(second)


def test_a_collision_names_both_paths_and_the_entry() -> None:
    with pytest.raises(InvalidArgument) as on_server:
        _server_check(
            [("w.bin", GOOD_SHA, 1), ("Model.bin", GOOD_SHA, 1), ("model.bin", GOOD_SHA, 1)]
        )
    assert on_server.value.field == "files[2].path"
    assert "'model.bin' collides with 'Model.bin'" in on_server.value.rule
    assert "case-insensitive" in on_server.value.rule


def test_both_sides_bound_the_number_of_files() -> None:
    at_limit = [(f"f{i}", GOOD_SHA, 1) for i in range(server.MAX_FILES)]
    _server_check(at_limit)
    _sdk_check(at_limit)
    over = [*at_limit, ("one-more", GOOD_SHA, 1)]
    with pytest.raises(InvalidArgument, match="at most 10000"):
        _server_check(over)
    with pytest.raises(InvalidResponseError, match="at most 10000"):
        _sdk_check(over)
    assert _manifest.MAX_FILES == server.MAX_FILES
    assert _manifest.MAX_PATH_BYTES == server.MAX_PATH_BYTES


def test_a_refused_answer_is_an_integrity_error_with_exit_code_6() -> None:
    error = InvalidResponseError("x", reason="MANIFEST_INVALID")
    assert isinstance(error, IntegrityError)
    assert error.exit_code == 6

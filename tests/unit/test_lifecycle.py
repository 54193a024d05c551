"""The version lifecycle and alias rules, as pure functions (no I/O at all)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from modelregistry_server.common.kernel.errors import Aborted, EtagMismatch, FailedPrecondition
from modelregistry_server.metadata.domain import lifecycle
from modelregistry_server.metadata.domain.errors import NotFound
from modelregistry_server.metadata.domain.model import Model
from modelregistry_server.metadata.domain.version import ModelVersion, VersionDraft, VersionState

_T = datetime(2026, 1, 1, tzinfo=UTC)
_PENDING = ModelVersion(
    "m", 3, "uid", VersionState.PENDING, VersionDraft(), (), (), "t", _T, _T, None, "e1"
)


def _in(state: VersionState) -> ModelVersion:
    return replace(_PENDING, state=state)


@pytest.mark.parametrize("state", list(VersionState))
def test_only_pending_versions_commit(state: VersionState) -> None:
    if state is VersionState.PENDING:
        lifecycle.check_commit(_in(state), "")
        return
    with pytest.raises(FailedPrecondition) as info:
        lifecycle.check_commit(_in(state), "")
    assert info.value.reason == "VERSION_NOT_PENDING"
    assert state.value in info.value.message


def test_a_stale_etag_is_checked_before_the_state() -> None:
    with pytest.raises(EtagMismatch) as info:
        lifecycle.check_commit(_in(VersionState.READY), "old")
    assert info.value.metadata["current_etag"] == "e1"


@pytest.mark.parametrize("state", [VersionState.READY, VersionState.ARCHIVED])
def test_ready_versions_change_only_labels_and_description(state: VersionState) -> None:
    lifecycle.check_update(_in(state), frozenset({"labels", "description"}), "")
    with pytest.raises(FailedPrecondition) as info:
        lifecycle.check_update(_in(state), frozenset({"labels", "params"}), "")
    assert info.value.reason == "VERSION_IMMUTABLE"
    assert "params" in info.value.message


def test_pending_versions_change_anything_and_deleted_ones_nothing() -> None:
    lifecycle.check_update(_PENDING, frozenset({"params", "metrics", "lineage"}), "e1")
    with pytest.raises(FailedPrecondition) as info:
        lifecycle.check_update(_in(VersionState.DELETED), frozenset({"labels"}), "")
    assert info.value.reason == "VERSION_DELETED"


def test_deleting_a_deleted_version_is_not_found() -> None:
    lifecycle.check_delete(_in(VersionState.FAILED), "")
    with pytest.raises(NotFound) as info:
        lifecycle.check_delete(_in(VersionState.DELETED), "")
    assert info.value.reason == "MODEL_VERSION_NOT_FOUND"


@pytest.mark.parametrize("state", list(VersionState))
def test_aliases_point_at_ready_versions_only(state: VersionState) -> None:
    if state is VersionState.READY:
        lifecycle.check_alias_target(_in(state))
        return
    expected = NotFound if state is VersionState.DELETED else FailedPrecondition
    with pytest.raises(expected):
        lifecycle.check_alias_target(_in(state))


def test_alias_compare_and_set() -> None:
    lifecycle.check_alias_expected("m", "prod", 2, None)  # no expectation: no check
    lifecycle.check_alias_expected("m", "prod", 2, 2)
    for current in (1, None):
        with pytest.raises(Aborted) as info:
            lifecycle.check_alias_expected("m", "prod", current, 2)
        assert info.value.reason == "ALIAS_VERSION_MISMATCH"
        assert info.value.code == "ABORTED"
        assert "not the expected models/m/versions/2" in info.value.message


def test_only_pending_versions_expire() -> None:
    assert [s for s in VersionState if lifecycle.can_expire(_in(s))] == [VersionState.PENDING]


def test_a_model_with_live_versions_needs_force() -> None:
    model = Model("m", "uid", "", {}, "", _T, _T, "e1")
    lifecycle.check_model_delete(model, 0, False, "")
    lifecycle.check_model_delete(model, 3, True, "e1")
    with pytest.raises(FailedPrecondition) as info:
        lifecycle.check_model_delete(model, 3, False, "")
    assert info.value.reason == "MODEL_HAS_VERSIONS"
    with pytest.raises(EtagMismatch):
        lifecycle.check_model_delete(model, 0, False, "old")

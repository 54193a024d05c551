"""The rules of a version's life and of alias moves, as pure functions.

    PENDING ──commit──▶ READY ──(archive)──▶ ARCHIVED
       │                  │
       ├──expire──▶ FAILED │
       └──────────delete──┴──▶ DELETED (aliases go with it)

A use case loads the current state inside its unit of work, asks the rule here, and only then
writes: the rule sees the row as it is locked, so no concurrent change slips in between.
Each function raises the error a client should see, or returns the state to write.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelregistry_server.metadata.domain.errors import (
    Aborted,
    EtagMismatch,
    FailedPrecondition,
    not_found,
)
from modelregistry_server.metadata.domain.model import MODEL_NAME_PREFIX, Model
from modelregistry_server.metadata.domain.version import (
    MUTABLE_WHEN_READY,
    ModelVersion,
    VersionState,
    version_name,
)

ALIAS_VERSION_MISMATCH = "ALIAS_VERSION_MISMATCH"


def check_etag(resource: str, expected: str, current: str) -> None:
    """An empty ``expected`` is an unconditional write; otherwise it must be ``current``."""
    if expected and expected != current:
        raise EtagMismatch(resource, expected, current)


def check_update(version: ModelVersion, fields: frozenset[str], expected_etag: str) -> None:
    """A PENDING version may change any field; READY and ARCHIVED only description and labels.

    Raises:
        EtagMismatch: ``expected_etag`` is stale.
        FailedPrecondition: ``VERSION_DELETED``, or ``VERSION_IMMUTABLE`` naming the fields.
    """
    check_etag(version.name, expected_etag, version.etag)
    if version.state is VersionState.DELETED:
        raise FailedPrecondition(f"{version.name} is deleted", reason="VERSION_DELETED")
    if version.state is not VersionState.PENDING and not fields <= MUTABLE_WHEN_READY:
        frozen = ", ".join(sorted(fields - MUTABLE_WHEN_READY))
        raise FailedPrecondition(
            f"{version.name} is {version.state.value} and immutable except description and "
            f"labels; cannot change {frozen}",
            reason="VERSION_IMMUTABLE",
        )


def check_commit(version: ModelVersion, expected_etag: str) -> None:
    """Only a PENDING version can be committed (PENDING → READY).

    Raises:
        EtagMismatch: ``expected_etag`` is stale.
        FailedPrecondition: ``VERSION_NOT_PENDING``.
    """
    check_etag(version.name, expected_etag, version.etag)
    if version.state is not VersionState.PENDING:
        raise FailedPrecondition(
            f"{version.name} is {version.state.value}; only a PENDING version can be committed",
            reason="VERSION_NOT_PENDING",
        )


def check_delete(version: ModelVersion, expected_etag: str) -> None:
    """Any version but a deleted one can be deleted; a deleted one is gone for the caller.

    Raises:
        EtagMismatch: ``expected_etag`` is stale.
        NotFound: The version is deleted already.
    """
    check_etag(version.name, expected_etag, version.etag)
    if version.state is VersionState.DELETED:
        raise not_found(version.name)


def can_expire(version: ModelVersion) -> bool:
    """Garbage collection moves only PENDING versions to FAILED."""
    return version.state is VersionState.PENDING


def check_alias_target(version: ModelVersion) -> None:
    """An alias points at a READY version only.

    Raises:
        NotFound: The version is deleted.
        FailedPrecondition: ``VERSION_NOT_READY``.
    """
    if version.state is VersionState.DELETED:
        raise not_found(version.name)
    if version.state is not VersionState.READY:
        raise FailedPrecondition(
            f"{version.name} is {version.state.value}; aliases point at READY versions only",
            reason="VERSION_NOT_READY",
        )


def alias_name(model_id: str, alias: str) -> str:
    """The resource name of an alias."""
    return f"{MODEL_NAME_PREFIX}{model_id}/aliases/{alias}"


def check_alias_expected(
    model_id: str, alias: str, current: int | None, expected: int | None
) -> None:
    """Compare-and-set: with ``expected``, the alias must point there now.

    Raises:
        Aborted: ``ALIAS_VERSION_MISMATCH``: someone moved the alias since the caller looked.
    """
    if expected is None or current == expected:
        return
    shown = "nothing" if current is None else version_name(model_id, current)
    raise Aborted(
        f"{alias_name(model_id, alias)} points at {shown}, not the expected "
        f"{version_name(model_id, expected)}; read it again and retry",
        reason=ALIAS_VERSION_MISMATCH,
        metadata={
            "resource": alias_name(model_id, alias),
            "current_version": "" if current is None else version_name(model_id, current),
        },
    )


def check_model_delete(model: Model, live_versions: int, force: bool, expected_etag: str) -> None:
    """A model with versions that are not deleted is deleted only with ``force``.

    Raises:
        EtagMismatch: ``expected_etag`` is stale.
        FailedPrecondition: ``MODEL_HAS_VERSIONS``.
    """
    if live_versions and not force:
        raise FailedPrecondition(
            f"{model.name} has {live_versions} version(s) that are not deleted; delete them "
            "first or pass force=true to delete the model with all its versions",
            reason="MODEL_HAS_VERSIONS",
        )
    check_etag(model.name, expected_etag, model.etag)


def version_summary(version: ModelVersion) -> dict[str, Any]:
    """What the audit log keeps of a version before and after a change."""
    return {
        "state": version.state.value,
        "description": version.draft.description,
        "labels": dict(version.draft.labels),
        "params": dict(version.draft.params),
        "metrics": dict(version.draft.metrics),
        "aliases": list(version.aliases),
        "files": len(version.files),
        "etag": version.etag,
    }


def model_summary(model: Model) -> dict[str, Any]:
    """What the audit log keeps of a model before and after a change."""
    return {
        "description": model.description,
        "labels": dict(model.labels),
        "owner": model.owner,
        "etag": model.etag,
    }


def missing_blobs_error(missing: Iterable[tuple[str, str, int]]) -> FailedPrecondition:
    """The error for a commit whose manifest names blobs that are not uploaded.

    ``missing`` holds ``(path, sha256, size)`` of each such file.
    """
    files = list(missing)
    shown = ", ".join(
        f"{path} (sha256 {sha[:12]}…, {size} bytes)" for path, sha, size in files[:10]
    )
    more = f" and {len(files) - 10} more" if len(files) > 10 else ""
    return FailedPrecondition(
        f"{len(files)} file(s) of the manifest are not uploaded (or have another size): "
        f"{shown}{more}; upload them, then commit again",
        reason="BLOBS_MISSING",
    )

"""What changed between two model versions: params, metrics and files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelregistry._convert import ParamPyValue, params_from_proto
from modelregistry.metadata.v1 import model_version_pb2


@dataclass(frozen=True)
class VersionDiff:
    """The differences from version ``a`` (old) to version ``b`` (new).

    ``params`` and ``metrics`` hold only the keys that differ, as ``(old, new)`` pairs where
    ``None`` means the key is absent on that side. A parameter whose type changed counts as
    changed even if the values compare equal in Python (``True`` vs ``1``, ``1`` vs ``1.0``).
    Files are compared by path: ``files_changed`` are paths whose sha256 differs.
    """

    a: model_version_pb2.ModelVersion
    b: model_version_pb2.ModelVersion
    params: dict[str, tuple[ParamPyValue | None, ParamPyValue | None]] = field(default_factory=dict)
    metrics: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    files_added: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)
    files_unchanged: int = 0

    @classmethod
    def between(
        cls, a: model_version_pb2.ModelVersion, b: model_version_pb2.ModelVersion
    ) -> VersionDiff:
        """Compare two versions (with manifests, e.g. as returned by ``resolve``)."""
        old_params, new_params = params_from_proto(a.params), params_from_proto(b.params)
        params: dict[str, tuple[ParamPyValue | None, ParamPyValue | None]] = {}
        for key in sorted(old_params.keys() | new_params.keys()):
            old, new = old_params.get(key), new_params.get(key)
            if _typed(old) != _typed(new):
                params[key] = (old, new)
        metrics: dict[str, tuple[float | None, float | None]] = {}
        for key in sorted(a.metrics.keys() | b.metrics.keys()):
            old_metric = a.metrics.get(key)
            new_metric = b.metrics.get(key)
            if old_metric != new_metric:
                metrics[key] = (old_metric, new_metric)
        old_files = {f.path: f.sha256 for f in a.files}
        new_files = {f.path: f.sha256 for f in b.files}
        common = old_files.keys() & new_files.keys()
        changed = sorted(p for p in common if old_files[p] != new_files[p])
        return cls(
            a=a,
            b=b,
            params=params,
            metrics=metrics,
            files_added=sorted(new_files.keys() - old_files.keys()),
            files_removed=sorted(old_files.keys() - new_files.keys()),
            files_changed=changed,
            files_unchanged=len(common) - len(changed),
        )

    @property
    def has_changes(self) -> bool:
        """True if params, metrics or files differ (labels and descriptions are not compared)."""
        return bool(
            self.params
            or self.metrics
            or self.files_added
            or self.files_removed
            or self.files_changed
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: versions by name and uid, pairs as ``{"old": .., "new": ..}``."""
        return {
            "a": {"name": self.a.name, "uid": self.a.uid},
            "b": {"name": self.b.name, "uid": self.b.uid},
            "params": {k: {"old": old, "new": new} for k, (old, new) in self.params.items()},
            "metrics": {k: {"old": old, "new": new} for k, (old, new) in self.metrics.items()},
            "files_added": list(self.files_added),
            "files_removed": list(self.files_removed),
            "files_changed": list(self.files_changed),
            "files_unchanged": self.files_unchanged,
        }


def _typed(value: ParamPyValue | None) -> tuple[type, ParamPyValue | None]:
    # Python says True == 1 == 1.0; for hyperparameters a type change is a real change.
    return (type(value), value)

"""VersionDiff: params (typed), metrics, files by path and digest."""

from __future__ import annotations

import json

from modelregistry import VersionDiff, _convert
from modelregistry.metadata.v1 import model_version_pb2 as mv

SHA = {c: c * 64 for c in "abcdef"}


def version(
    n: int,
    params: dict[str, str | int | float | bool],
    metrics: dict[str, float],
    files: dict[str, str],
) -> mv.ModelVersion:
    return mv.ModelVersion(
        name=f"models/m/versions/{n}",
        uid=f"uid-{n}",
        version=n,
        params=_convert.params_to_proto(params),
        metrics=metrics,
        files=[mv.ManifestFile(path=p, sha256=s, size_bytes=1) for p, s in files.items()],
    )


A = version(
    1,
    {"lr": 0.1, "epochs": 10, "opt": "adam", "amp": True, "seed": 1, "gone": "x"},
    {"acc": 0.9, "loss": 0.3, "old": 1.0},
    {"w.bin": SHA["a"], "cfg.json": SHA["b"], "readme.md": SHA["c"], "tok.json": SHA["d"]},
)
B = version(
    2,
    {"lr": 0.05, "epochs": 10, "opt": "adam", "amp": 1, "seed": 1.0, "new": False},
    {"acc": 0.92, "loss": 0.3, "f1": 0.5},
    {"w.bin": SHA["e"], "cfg.json": SHA["b"], "readme.md": SHA["c"], "extra.txt": SHA["f"]},
)


def test_diff_reports_only_what_changed() -> None:
    diff = VersionDiff.between(A, B)
    assert diff.a is A
    assert diff.b is B
    assert diff.params == {
        "lr": (0.1, 0.05),
        "amp": (True, 1),  # bool -> int is a change although True == 1
        "seed": (1, 1.0),  # int -> float too
        "gone": ("x", None),
        "new": (None, False),
    }
    assert list(diff.params) == sorted(diff.params)
    assert diff.metrics == {"acc": (0.9, 0.92), "old": (1.0, None), "f1": (None, 0.5)}
    assert diff.files_added == ["extra.txt"]
    assert diff.files_removed == ["tok.json"]
    assert diff.files_changed == ["w.bin"]
    assert diff.files_unchanged == 2
    assert diff.has_changes


def test_diff_of_a_version_with_itself_is_empty() -> None:
    diff = VersionDiff.between(A, A)
    assert (diff.params, diff.metrics) == ({}, {})
    assert (diff.files_added, diff.files_removed, diff.files_changed) == ([], [], [])
    assert diff.files_unchanged == 4
    assert not diff.has_changes


def test_a_metric_of_zero_is_not_a_missing_metric() -> None:
    zero = version(1, {}, {"loss": 0.0}, {})
    none = version(2, {}, {}, {})
    assert VersionDiff.between(zero, none).metrics == {"loss": (0.0, None)}


def test_to_dict_is_json_ready() -> None:
    as_dict = VersionDiff.between(A, B).to_dict()
    round_trip = json.loads(json.dumps(as_dict))
    assert round_trip["a"] == {"name": "models/m/versions/1", "uid": "uid-1"}
    assert round_trip["params"]["lr"] == {"old": 0.1, "new": 0.05}
    assert round_trip["params"]["new"] == {"old": None, "new": False}
    assert round_trip["metrics"]["f1"] == {"old": None, "new": 0.5}
    assert round_trip["files_changed"] == ["w.bin"]
    assert round_trip["files_unchanged"] == 2

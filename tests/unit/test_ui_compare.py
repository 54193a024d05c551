"""The compare page's selection and rows, on version messages (no server)."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from modelregistry.metadata.v1 import model_version_pb2 as mv
from modelregistry_server.web.ui.compare_page import (
    MINUS,
    bar_scale,
    file_rows,
    lineage_rows,
    metric_rows,
    param_rows,
    parse_selection,
    signed,
)


def _query(*pairs: tuple[str, str]) -> MultiDict[str]:
    return MultiDict(pairs)


def test_selection_keeps_order_and_drops_repeats_and_blanks() -> None:
    chosen = parse_selection(
        _query(("model", "models/m"), ("v", "3"), ("v", ""), ("v", "v1"), ("v", "3"))
    )
    assert (chosen.model, chosen.numbers, chosen.problem) == ("m", [3, 1], "")


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (["1"], "at least 2"),
        ([], "at least 2"),
        (["1", "2", "3", "4", "5"], "at most 4"),
        (["1", "two"], "not a version number"),
        (["0", "1"], "not a version number"),
        (["-1", "1"], "not a version number"),
    ],
)
def test_selection_problems_are_explained(values: list[str], words: str) -> None:
    chosen = parse_selection(_query(("model", "m"), *(("v", value) for value in values)))
    assert words in chosen.problem


def test_no_model_is_the_empty_form_or_a_problem() -> None:
    assert parse_selection(_query()).problem == ""
    assert "Choose a model" in parse_selection(_query(("v", "1"), ("v", "2"))).problem


def _version(number: int, **fields: object) -> mv.ModelVersion:
    return mv.ModelVersion(version=number, **fields)  # type: ignore[arg-type]


def test_params_differ_when_a_value_or_presence_differs() -> None:
    lr = mv.ParamValue(double_value=0.1)
    rows = param_rows(
        [
            _version(1, params={"lr": lr, "opt": mv.ParamValue(string_value="adam")}),
            _version(2, params={"lr": lr, "depth": mv.ParamValue(int_value=8)}),
        ]
    )
    assert [(r.key, r.cells, r.changed) for r in rows] == [
        ("depth", ["—", "8"], True),
        ("lr", ["0.1", "0.1"], False),
        ("opt", ["adam", "—"], True),
    ]


def test_metrics_have_deltas_against_the_first_and_a_shared_scale() -> None:
    rows = metric_rows(
        [_version(1, metrics={"acc": 0.9}), _version(2, metrics={"acc": 0.95, "loss": 0.2})]
    )
    acc, loss = rows
    assert [c.delta for c in acc.cells] == ["", "+0.05"]
    assert acc.changed
    assert acc.low < 0.9 < acc.high == 0.95
    assert [c.value for c in loss.cells] == [None, 0.2]
    assert signed(-0.25) == MINUS + "0.25"
    assert signed(0.0) == "±0"


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.5, 0.5], (0.0, 1.0)), ([0.1, 0.9], (0.0, 0.9)), ([-3.0, -1.0], (-3.5, -1.0))],
)
def test_bar_scale(values: list[float], expected: tuple[float, float]) -> None:
    assert bar_scale(values) == expected


def _file(path: str, digest: str, size: int) -> mv.ManifestFile:
    return mv.ManifestFile(path=path, sha256=digest * 64, size_bytes=size)


def test_files_are_same_changed_added_or_removed_by_digest() -> None:
    rows = file_rows(
        [
            _version(1, files=[_file("a", "1", 10), _file("b", "2", 10), _file("gone", "3", 5)]),
            _version(2, files=[_file("a", "1", 10), _file("b", "9", 1034), _file("new", "4", 1)]),
        ]
    )
    by_path = {row.path: row for row in rows}
    assert [c.status for c in by_path["a"].cells] == ["base", "same"]
    assert not by_path["a"].changed
    assert [c.status for c in by_path["b"].cells] == ["base", "changed"]
    assert by_path["b"].cells[1].delta == "+1.0 KiB"
    assert [c.status for c in by_path["new"].cells] == ["absent", "added"]
    assert [c.status for c in by_path["gone"].cells] == ["base", "removed"]
    assert all(by_path[p].changed for p in ("b", "new", "gone"))


def test_lineage_rows_show_only_what_some_version_records() -> None:
    clean = mv.SourceCode(repo_url="https://git.example/r", commit="abc", dirty=False)
    dirty = mv.SourceCode(repo_url="https://git.example/r", commit="def", dirty=True)
    rows = lineage_rows(
        [
            _version(1, lineage=mv.Lineage(source=clean)),
            _version(2, lineage=mv.Lineage(source=dirty)),
        ]
    )
    assert {r.key: (r.cells, r.changed) for r in rows} == {
        "repository": (["https://git.example/r"] * 2, False),
        "commit": (["abc", "def"], True),
        "dirty": (["no", "yes"], True),
    }

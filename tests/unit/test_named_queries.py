"""Every SQL statement is a named, described query in a ``queries.sql`` file."""

from __future__ import annotations

from pathlib import Path

import pytest

import modelregistry_server
from modelregistry_server.common.adapters.sql import load_queries

_FILES = sorted(Path(modelregistry_server.__file__).parent.rglob("queries.sql"))


def test_there_are_query_files_to_check() -> None:
    assert len(_FILES) >= 3, _FILES


@pytest.mark.parametrize("path", _FILES, ids=lambda p: str(p.parent.name))
def test_every_query_has_a_description(path: Path) -> None:
    queries = load_queries(path)  # raises for a query without a description line
    assert queries
    for name, sql in queries.items():
        assert sql.startswith("-- "), name


def test_a_query_without_description_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "queries.sql"
    path.write_text("-- name: described\n-- Does a thing.\nSELECT 1;\n\n-- name: bare\nSELECT 2;\n")
    with pytest.raises(ValueError, match="'bare' has no '-- description' line"):
        load_queries(path)


def test_a_query_named_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "queries.sql"
    path.write_text("-- name: q\n-- One.\nSELECT 1;\n-- name: q\n-- Two.\nSELECT 2;\n")
    with pytest.raises(ValueError, match="defined twice"):
        load_queries(path)

"""``modelregistry cache ls|rm|prune`` in-process against a cache on disk, with no server."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import modelregistry.client
from modelregistry import cli
from modelregistry.cache import Cache
from tests.unit.cache_fakes import ONLY_1, ONLY_2, SHARED, filled_cache, sha


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A filled cache named by ``$MODELREGISTRY_CACHE``; building a Client fails the test."""
    root = tmp_path / "cache"
    filled_cache(root).close()
    monkeypatch.setenv("MODELREGISTRY_CACHE", str(root))

    def no_client(*_: object, **__: object) -> None:
        raise AssertionError("cache commands must not build a Client")

    monkeypatch.setattr(modelregistry.client, "Client", no_client)
    return root


def test_ls_shows_each_snapshot_and_the_total(
    cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["cache", "ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MODEL", "VERSION", "FILES", "SIZE", "LAST", "USED"]
    assert [line.split()[:3] for line in lines[1:3]] == [["m", "1", "3"], ["m", "2", "2"]]
    total = len(SHARED) + len(ONLY_1) + len(ONLY_2)
    assert lines[3] == f"total: 2 snapshots, {total} B in 3 files"
    assert len(lines) == 4


def test_ls_json_parses(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cache", "ls", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["root"] == str(cache_dir)
    assert [(s["ref"], s["files"], s["bytes"]) for s in listing["snapshots"]] == [
        ("m:1", 3, len(SHARED) + len(ONLY_1)),
        ("m:2", 2, len(SHARED) + len(ONLY_2)),
    ]
    assert listing["snapshots"][0]["last_used"].endswith("Z")
    assert listing["snapshots"][0]["path"] == str(cache_dir / "snapshots" / "m" / "1")
    assert listing["total"]["blobs"] == 3
    assert listing["total"]["snapshots"] == 2


def test_cache_dir_flag_beats_the_environment(
    cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "other"
    assert cli.main(["--cache-dir", str(empty), "--json", "cache", "ls"]) == 0
    assert json.loads(capsys.readouterr().out)["snapshots"] == []
    assert cli.main(["cache", "ls", "--cache-dir", str(empty)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"no snapshots in {empty}\n"


@pytest.mark.parametrize(
    ("target", "removed", "left"),
    [
        ("m:1", ["m:1"], ["m:2"]),
        ("models/m/versions/2", ["m:2"], ["m:1"]),
        ("m@production", ["m:2"], ["m:1"]),  # the version the alias named when pulled
        ("0b5a4cde-1111-4222-8333-444455556661", ["m:1"], ["m:2"]),  # a uid
        ("m", ["m:1", "m:2"], []),
    ],
)
def test_rm_removes_what_the_target_names(
    cache_dir: Path,
    capsys: pytest.CaptureFixture[str],
    target: str,
    removed: list[str],
    left: list[str],
) -> None:
    assert cli.main(["cache", "rm", target]) == 0
    captured = capsys.readouterr()
    assert [line.split()[1] for line in captured.out.splitlines()] == removed
    assert captured.out.startswith(f"removed {removed[0]} (")
    assert "cache prune" in captured.err
    assert [s.ref for s in Cache(cache_dir).snapshots()] == left
    assert Cache(cache_dir).usage().blobs == 3  # only links were removed


def test_rm_json_and_quiet(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-q", "cache", "rm", "m:2", "--json"]) == 0
    captured = capsys.readouterr()
    assert [s["ref"] for s in json.loads(captured.out)] == ["m:2"]
    assert captured.err == ""


@pytest.mark.parametrize(
    ("target", "code", "message"),
    [
        ("other", 3, "error: other is not in the local cache"),
        ("m:7", 3, "error: m:7 is not in the local cache"),
        ("m@canary", 3, "error: m@canary was never pulled into the local cache"),
        ("m:x", 2, "error: not a version number in 'm:x'"),
        ("..", 2, "error: not a model name: '..'"),
    ],
)
def test_rm_of_what_is_not_cached_fails_in_one_line(
    cache_dir: Path, capsys: pytest.CaptureFixture[str], target: str, code: int, message: str
) -> None:
    assert cli.main(["cache", "rm", target]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message)
    assert captured.err.count("\n") == 1
    assert len(Cache(cache_dir).snapshots()) == 2


def test_prune_prints_what_it_freed(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cache", "rm", "m:1", "-q"]) == 0
    capsys.readouterr()
    assert cli.main(["cache", "prune", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith(f"would free {len(ONLY_1)} B: 1 unused file (")
    assert Cache(cache_dir).blob_path(sha(ONLY_1)).exists()
    assert cli.main(["cache", "prune"]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"freed {len(ONLY_1)} B: 1 unused file ({len(ONLY_1)} B), 0 unfinished downloads (0 B), "
        "3 lock files, 3 ref records\n"
    )
    assert not Cache(cache_dir).blob_path(sha(ONLY_1)).exists()


def test_prune_json_and_the_incomplete_limit(
    cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    partial = Cache(cache_dir).incomplete_path("c" * 64)
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"12345")
    hour_ago = time.time() - 3600
    os.utime(partial, (hour_ago, hour_ago))
    assert cli.main(["cache", "prune", "--json"]) == 0  # default limit: 24h
    assert json.loads(capsys.readouterr().out)["incomplete"] == 0
    assert cli.main(["cache", "prune", "--json", "--incomplete-older-than", "30m"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["incomplete"], result["incomplete_bytes"], result["bytes_freed"]) == (1, 5, 5)
    assert result["dry_run"] is False
    assert not partial.exists()


def test_prune_rejects_a_bad_duration(cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cache", "prune", "--incomplete-older-than", "soon"]) == 2
    assert capsys.readouterr().err.startswith("error: not a duration: 'soon'")


def test_prune_says_when_a_pull_is_running(
    cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Cache(cache_dir).in_use():
        assert cli.main(["cache", "prune"]) == 0
    assert "a pull is running" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["cache"], ["cache", "ls"], ["cache", "rm"], ["cache", "prune"]])
def test_cache_help_has_examples(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "--help"])
    assert exc.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_cache_is_in_the_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "    cache " in out
    assert "--cache-dir DIR" in out


def test_cache_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["cache"])
    assert exc.value.code == 2

"""``modelregistry pull`` against a hostile server: one sentence on stderr, a nonzero exit.

The same fake registry as ``test_sdk_hostile_server.py``; the CLI runs in-process on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelregistry import cli
from modelregistry.errors import EXIT_CONFLICT, EXIT_INTEGRITY
from tests.unit.hostile_registry import HostileRegistry, start, tree


@pytest.fixture
def registry() -> Iterator[tuple[HostileRegistry, str]]:
    fake = HostileRegistry()
    server, target = start(fake)
    try:
        yield fake, target
    finally:
        server.stop(None)


def _pull(target: str, root: Path, ref: str = "fraud@production") -> int:
    return cli.main(
        ["--url", target, "--cache-dir", str(root / "cache"), "pull", ref, "--dest",
         str(root / "dest"), "--quiet"]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("path", "shown"),
    [("../evil", "'../evil' must not contain empty, '.' or '..' segments"),
     ("a\nb", "'a\\nb' contains a control character (U+000A)")],
    ids=["traversal", "newline"],
)  # fmt: skip
def test_a_hostile_manifest_is_one_line_and_exit_6(
    registry: tuple[HostileRegistry, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    path: str,
    shown: str,
) -> None:
    fake, target = registry
    fake.serve({"ok.bin": b"ok", path: b"evil"})
    (tmp_path / "dest").mkdir()
    assert _pull(target, tmp_path) == EXIT_INTEGRITY == 6
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1  # one line, no traceback
    assert captured.err.startswith("error: refusing the manifest the registry sent for ")
    assert captured.err.rstrip("\n").endswith(shown)
    assert "nothing was written" in captured.err
    assert set(tree(tmp_path)) <= {"dest", "cache", "cache/cache.lock"}


def test_an_answer_for_another_model_is_one_line_and_exit_6(
    registry: tuple[HostileRegistry, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, target = registry
    fake.serve({"w.bin": b"w"}, name="models/other/versions/1")
    assert _pull(target, tmp_path) == 6
    err = capsys.readouterr().err
    assert err == (
        "error: refusing the registry's answer to 'fraud@production', nothing was written: "
        "'models/other/versions/1' is a version of another model\n"
    )
    assert fake.reads == []


def test_a_symlinked_folder_in_dest_is_one_line_and_exit_4(
    registry: tuple[HostileRegistry, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, target = registry
    fake.serve({"weights/w.bin": b"w"})
    (tmp_path / "dest").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "dest" / "weights").symlink_to(tmp_path / "elsewhere")
    assert _pull(target, tmp_path) == EXIT_CONFLICT == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: refusing to write 'weights/w.bin' under ")
    assert f"is a symbolic link (to {tmp_path / 'elsewhere'})" in err
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert fake.reads == []

"""``pull`` against a hostile server: it never writes outside its destination.

A fake registry on a local gRPC port (``hostile_registry.py``) answers with forged manifests,
versions of other models and malformed names and digests; the destination and the cache are
pre-planted with symbolic links. Every refusal must come before the first byte: the whole
temporary tree is compared before and after, and the fake counts the blobs read.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelregistry import NO_RETRY, Client, _pull
from modelregistry._manifest import path_problem
from modelregistry.errors import (
    FailedPreconditionError,
    IntegrityError,
    InvalidResponseError,
    UnsafeDestinationError,
)
from modelregistry.metadata.v1 import model_version_pb2
from tests.support.artifacts import sha256_hex as sha
from tests.unit.hostile_registry import GOOD_UID, HostileRegistry, Tree, start, tree

REF = "fraud@production"
# What may appear after a refused pull: the cache folder and its lock file, nothing else.
_CACHE_SKELETON = {"cache", "cache/cache.lock"}


@dataclass
class World:
    registry: HostileRegistry
    client: Client
    root: Path  # everything the test watches: dest/, outside/ and cache/
    dest: Path
    outside: Path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    registry = HostileRegistry()
    server, target = start(registry)
    root = tmp_path
    dest, outside = root / "dest", root / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "keep.txt").write_text("mine")
    (outside / "victim").write_text("do not touch")
    client = Client(target, retry=NO_RETRY, timeout=10, cache_dir=root / "cache")
    try:
        yield World(registry, client, root, dest, outside)
    finally:
        client.close()
        server.stop(None)


def _assert_refused_before_any_write(world: World, before: Tree) -> None:
    after = tree(world.root)
    added = set(after) - set(before)
    assert added <= _CACHE_SKELETON, f"written: {sorted(added - _CACHE_SKELETON)}"
    assert {path: after[path] for path in before} == before  # nothing changed or removed
    assert world.registry.reads == []  # not one byte was downloaded


# Every path that escapes lands inside the watched tree if the checks ever regress: a test must
# never be able to damage the machine it runs on (as root, '/etc/passwd' really is replaced).
# '{root}' becomes the absolute path of that tree; the rule tables cover '/etc/passwd' itself.
HOSTILE_PATHS = [
    "../evil",
    "../outside/victim",
    "{root}/etc/passwd",
    "{root}/outside/victim",
    "a/../../b",
    "a/../../outside/victim",
    "C:/x",
    "a\\b",
    "..\\..\\evil",
    "a//b",
    "./a",
    "a/.",
    "",
    "a\x00b",
    "a\nb",
    "evil\x1b]0;owned\x07",
    "x" * 1025,
]


@pytest.mark.parametrize("with_dest", [True, False], ids=["dest", "snapshot-only"])
@pytest.mark.parametrize("path", HOSTILE_PATHS, ids=ascii)
def test_a_hostile_manifest_path_is_refused_before_anything_is_written(
    world: World, path: str, with_dest: bool
) -> None:
    path = path.replace("{root}", str(world.root))
    world.registry.serve({"ok.bin": b"fine", path: b"evil"})
    before = tree(world.root)
    with pytest.raises(InvalidResponseError) as info:
        world.client.pull(REF, world.dest if with_dest else None)
    assert info.value.reason == "MANIFEST_INVALID"
    assert repr(path)[:80] in info.value.message  # names the bad path...
    rule = path_problem(path)
    assert rule
    assert info.value.message.endswith(f"{path!r} {rule}")  # ...and the rule it breaks
    assert world.registry.resolved == [REF]
    _assert_refused_before_any_write(world, before)


@pytest.mark.parametrize(
    ("files", "rule"),
    [
        ([("w.bin", b"1"), ("w.bin", b"2")], "'w.bin' appears twice"),
        ([("a", b"1"), ("a/b", b"2")], "'a' is a file and also a folder of 'a/b'"),
    ],
    ids=["duplicate", "file-and-folder"],
)
def test_a_manifest_naming_one_path_twice_is_refused(
    world: World, files: list[tuple[str, bytes]], rule: str
) -> None:
    world.registry.serve({})
    for path, data in files:
        world.registry.answer.files.add(path=path, sha256=sha(data), size_bytes=len(data))
        world.registry.blobs[sha(data)] = data
    before = tree(world.root)
    with pytest.raises(InvalidResponseError, match=rule):
        world.client.pull(REF, world.dest)
    _assert_refused_before_any_write(world, before)


@pytest.mark.parametrize("digest", ["../../x", "A" * 64, "a" * 63, "a" * 64 + "/.."], ids=ascii)
def test_a_malformed_digest_never_becomes_a_cache_path(world: World, digest: str) -> None:
    world.registry.serve({})
    world.registry.answer.files.add(path="w.bin", sha256=digest, size_bytes=4)
    world.registry.blobs[digest] = b"evil"
    before = tree(world.root)
    with pytest.raises(InvalidResponseError, match="is not a sha256 digest"):
        world.client.pull(REF, world.dest)
    _assert_refused_before_any_write(world, before)


@pytest.mark.parametrize(
    ("ref", "name", "number", "uid", "problem"),
    [
        (REF, "models/other/versions/1", 1, GOOD_UID, "another model"),
        ("fraud", "models/other/versions/1", 1, GOOD_UID, "another model"),
        ("fraud:2", "models/fraud/versions/1", 1, GOOD_UID, "another version"),
        (REF, "models/../../x/versions/1", 1, GOOD_UID, "not a version name"),
        (REF, "models/fraud/versions/../../x", 1, GOOD_UID, "not a version name"),
        (REF, "models/fraud/versions/0", 0, GOOD_UID, "not a version name"),
        (REF, "models/fraud/aliases/production", 1, GOOD_UID, "not a version name"),
        (REF, "models/fraud/versions/1", 7, GOOD_UID, "says version 7"),
        (REF, "models/fraud/versions/1", 1, "../../x", "is not a uuid"),
        (REF, "models/fraud/versions/1", 1, "other", "is not a uuid"),
        (GOOD_UID.replace("0f8f", "1f8f"), "models/fraud/versions/1", 1, GOOD_UID, "not that"),
    ],
    ids=[
        "other-model",
        "latest-of-other-model",
        "other-number",
        "traversal-in-model",
        "traversal-in-number",
        "version-zero",
        "alias-name",
        "number-mismatch",
        "uid-traversal",
        "uid-a-model-name",
        "other-uid",
    ],
)
def test_an_answer_for_another_version_is_refused(
    world: World, ref: str, name: str, number: int, uid: str, problem: str
) -> None:
    world.registry.serve({"w.bin": b"weights"}, name=name, version=number)
    world.registry.answer.uid = uid
    before = tree(world.root)
    with pytest.raises(InvalidResponseError) as info:
        world.client.pull(ref, world.dest)
    assert info.value.reason == "RESPONSE_INVALID"
    assert problem in info.value.message
    assert isinstance(info.value, IntegrityError)  # exit code 6
    _assert_refused_before_any_write(world, before)


def test_a_symlinked_folder_in_dest_is_refused(world: World) -> None:
    (world.dest / "weights").symlink_to(world.outside)
    world.registry.serve({"config.json": b"{}", "weights/victim": b"evil"})
    before = tree(world.root)
    with pytest.raises(UnsafeDestinationError) as info:
        world.client.pull(REF, world.dest)
    assert info.value.reason == "DESTINATION_UNSAFE"
    assert "is a symbolic link" in info.value.message
    assert str(world.outside) in info.value.message  # says where it points
    assert isinstance(info.value, FailedPreconditionError)  # exit code 4
    _assert_refused_before_any_write(world, before)
    assert (world.outside / "victim").read_text() == "do not touch"


def test_a_symlinked_folder_pointing_inside_dest_is_refused_too(world: World) -> None:
    (world.dest / "real").mkdir()
    (world.dest / "weights").symlink_to(world.dest / "real")
    world.registry.serve({"weights/w.bin": b"w"})
    before = tree(world.root)
    with pytest.raises(UnsafeDestinationError, match="is a symbolic link"):
        world.client.pull(REF, world.dest)
    _assert_refused_before_any_write(world, before)


def test_a_symlinked_file_in_dest_is_refused(world: World) -> None:
    (world.dest / "config.json").symlink_to(world.outside / "victim")
    world.registry.serve({"a.bin": b"a", "config.json": b"evil"})
    before = tree(world.root)
    with pytest.raises(UnsafeDestinationError, match=r"config\.json is a symbolic link"):
        world.client.pull(REF, world.dest)
    _assert_refused_before_any_write(world, before)
    assert os.readlink(world.dest / "config.json") == str(world.outside / "victim")


@pytest.mark.parametrize(
    ("plant", "problem"),
    [("folder-for-file", "is a folder"), ("file-for-folder", "is a file, not a folder")],
)
def test_what_is_in_the_way_in_dest_is_refused_before_any_write(
    world: World, plant: str, problem: str
) -> None:
    if plant == "folder-for-file":
        (world.dest / "w.bin").mkdir()
    else:
        (world.dest / "weights").write_text("a file")
    world.registry.serve({"a.bin": b"a", "w.bin": b"w", "weights/x.bin": b"x"})
    before = tree(world.root)
    with pytest.raises(UnsafeDestinationError, match=problem):
        world.client.pull(REF, world.dest)
    _assert_refused_before_any_write(world, before)


def test_a_symlinked_folder_in_the_cache_snapshot_is_refused(world: World) -> None:
    snapshot = world.root / "cache" / "snapshots" / "fraud" / "1"
    snapshot.mkdir(parents=True)
    (snapshot / "weights").symlink_to(world.outside)
    world.registry.serve({"weights/victim": b"evil"})
    before = tree(world.root)
    with pytest.raises(UnsafeDestinationError, match="is a symbolic link"):
        world.client.pull(REF)
    _assert_refused_before_any_write(world, before)


def test_a_tampered_ref_record_is_refused_offline(world: World) -> None:
    forged = model_version_pb2.ModelVersion(name="models/fraud/versions/1", version=1)
    forged.files.add(path="../outside/victim", sha256=sha(b"evil"), size_bytes=4)
    world.client.cache.save_ref(REF, forged)
    before = tree(world.root)
    with (
        Client(cache_dir=world.root / "cache", offline=True) as offline,
        pytest.raises(InvalidResponseError, match=r"'\.\./outside/victim'"),
    ):
        offline.pull(REF, world.dest)
    _assert_refused_before_any_write(world, before)


def test_an_honest_answer_pulls_and_a_linked_dest_folder_is_the_users_choice(
    world: World,
) -> None:
    files = {"config.json": b"{}", "weights/model.bin": b"w" * 5000, "a/b/c.txt": b"deep"}
    world.registry.serve(files)
    elsewhere = world.root / "bigdisk"
    elsewhere.mkdir()
    linked_dest = world.root / "linked"
    linked_dest.symlink_to(elsewhere)  # dest itself may be a link; only what is below may not
    assert world.client.pull(REF, linked_dest) == linked_dest
    assert world.client.pull(GOOD_UID, world.dest) == world.dest  # by uid: its uid matches
    for path, data in files.items():
        assert (elsewhere / path).read_bytes() == data
        assert (world.dest / path).read_bytes() == data
    assert sorted(world.registry.reads) == sorted({sha(d) for d in files.values()})
    assert (world.dest / "keep.txt").read_text() == "mine"
    assert (world.outside / "victim").read_text() == "do not touch"


def test_a_failure_while_placing_files_removes_what_the_pull_created(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (world.dest / "old").mkdir()
    files = {"a.bin": b"a", "old/b.bin": b"b", "new/deep/c.bin": b"c", "z.bin": b"z"}
    world.registry.serve(files)
    world.client.pull(REF)  # cached and linked in the snapshot; dest not touched yet
    before = tree(world.root)
    calls: list[Path] = []
    real = _pull._link_or_copy

    def full_disk_on_the_third(blob: Path, target: Path) -> None:
        calls.append(target)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        real(blob, target)

    monkeypatch.setattr(_pull, "_link_or_copy", full_disk_on_the_third)
    with pytest.raises(OSError, match="No space left"):
        world.client.pull(REF, world.dest)
    assert len(calls) == 3  # two files were placed before the failure...
    assert tree(world.root) == before  # ...and removed again, with the folders made for them

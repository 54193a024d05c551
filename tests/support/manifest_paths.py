"""Manifest paths both checkers must agree on: the server's ``validate_manifest`` and the SDK's.

The server refuses these when a version is committed; the SDK refuses them again when it
pulls, because the answer it gets may not come from an honest server. Both run over these
tables in ``tests/unit/test_manifest_rules.py``, so a path one side accepts and the other
refuses fails a test, whichever side changed.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_PATH_BYTES = 1024

ACCEPTED_PATHS: list[str] = [
    "model.safetensors",
    "weights/model-00001-of-00002.safetensors",
    "a/b/c/d/e/f.bin",
    ".hidden",
    "..config",  # a name that starts with dots is not a '..' segment
    "a/...",
    "a/.b",
    "name with spaces.txt",
    "tokenizer/vocab (1).json",
    "données/modèle.bin",
    "中文/权重.bin",
    "emoji-🙂.txt",
    "xy:z",  # a colon not after a single leading letter is no drive
    "ab:/c",
    "1:/x",
    "a/C:/x",  # only a leading drive letter is one
    "~/x",  # no shell expansion happens anywhere
    "$HOME/x",
    "-rf",
    "a" * MAX_PATH_BYTES,
    "é" * (MAX_PATH_BYTES // 2),  # 1024 bytes in UTF-8
    "\u00a0nbsp",  # a no-break space is not a control character
    "zero\u200bwidth",  # a format character (Cf), not a control one (Cc)
]


class RejectedPath(NamedTuple):
    """A path both sides refuse, and a fragment of the rule both name."""

    path: str
    rule: str


_SEGMENTS = "must not contain empty, '.' or '..' segments"
_RELATIVE = "must be a relative path with '/' separators"

REJECTED_PATHS: list[RejectedPath] = [
    RejectedPath("", "is empty"),
    RejectedPath("../evil", _SEGMENTS),
    RejectedPath("..", _SEGMENTS),
    RejectedPath(".", _SEGMENTS),
    RejectedPath("a/..", _SEGMENTS),
    RejectedPath("a/../../b", _SEGMENTS),
    RejectedPath("a/../b", _SEGMENTS),  # even one that stays inside
    RejectedPath("./a", _SEGMENTS),
    RejectedPath("a/./b", _SEGMENTS),
    RejectedPath("a//b", _SEGMENTS),
    RejectedPath("a/", _SEGMENTS),
    RejectedPath("/etc/passwd", _RELATIVE),
    RejectedPath("/", _RELATIVE),
    RejectedPath("//server/share/x", _RELATIVE),
    RejectedPath("C:/x", _RELATIVE),
    RejectedPath("c:x", _RELATIVE),  # drive-relative on Windows
    RejectedPath("x:y", _RELATIVE),
    RejectedPath("C:", _RELATIVE),
    RejectedPath("a\\b", _RELATIVE),
    RejectedPath("..\\..\\evil", _RELATIVE),
    RejectedPath("\\etc\\passwd", _RELATIVE),
    RejectedPath("a\x00b", "NUL"),
    RejectedPath("\x00", "NUL"),
    RejectedPath("a\nb", "control character (U+000A)"),
    RejectedPath("a\rb", "control character (U+000D)"),
    RejectedPath("a\tb", "control character (U+0009)"),
    RejectedPath("evil\x1b[2Jname", "control character (U+001B)"),  # a terminal escape
    RejectedPath("a\x7fb", "control character (U+007F)"),
    RejectedPath("a\x85b", "control character (U+0085)"),  # C1 next line
    RejectedPath("x" * (MAX_PATH_BYTES + 1), f"longer than {MAX_PATH_BYTES} bytes"),
    RejectedPath("é" * (MAX_PATH_BYTES // 2) + "x", f"longer than {MAX_PATH_BYTES} bytes"),
]


class RejectedManifest(NamedTuple):
    """A manifest (``(path, sha256, size)`` entries) both sides refuse, and the rule named."""

    name: str
    files: list[tuple[str, str, int]]
    rule: str


GOOD_SHA = "a" * 64

REJECTED_MANIFESTS: list[RejectedManifest] = [
    RejectedManifest(
        "duplicate path", [("w.bin", GOOD_SHA, 1), ("w.bin", "b" * 64, 2)], "appears twice"
    ),
    RejectedManifest(
        "file is also a folder",
        [("a", GOOD_SHA, 1), ("a/b", GOOD_SHA, 1)],
        "is a file and also a folder of 'a/b'",
    ),
    RejectedManifest(
        "file is a folder further up",
        [("a/b/c/d", GOOD_SHA, 1), ("a/b", GOOD_SHA, 1)],
        "is a file and also a folder of 'a/b/c/d'",
    ),
    RejectedManifest(
        "file is a folder under another case",
        [("A", GOOD_SHA, 1), ("a/b", GOOD_SHA, 1)],
        "'A' is a file and also a folder of 'a/b' (paths that differ only in letter case",
    ),
    RejectedManifest(
        "file is a folder further up under another case",
        [("Weights/Shard", GOOD_SHA, 1), ("weights/shard/x.bin", GOOD_SHA, 1)],
        "'Weights/Shard' is a file and also a folder of 'weights/shard/x.bin'",
    ),
    RejectedManifest(
        "file is a folder in another normalisation",
        [("caf\u00e9", GOOD_SHA, 1), ("cafe\u0301/menu", GOOD_SHA, 1)],
        "is a file and also a folder of",
    ),
    RejectedManifest("short digest", [("w.bin", "a" * 63, 1)], "is not a sha256 digest"),
    RejectedManifest("uppercase digest", [("w.bin", "A" * 64, 1)], "is not a sha256 digest"),
    RejectedManifest("digest as a path", [("w.bin", "../../x", 1)], "is not a sha256 digest"),
    RejectedManifest("digest with a newline", [("w.bin", GOOD_SHA + "\n", 1)], "sha256 digest"),
    RejectedManifest("negative size", [("w.bin", GOOD_SHA, -1)], "must not be negative"),
]

_COLLIDES = "collides with"

# Two paths one case-insensitive or normalising file system (macOS, Windows) holds as one file:
# a pull there would overwrite one with the other. Both sides refuse them (rule: _COLLIDES).
COLLIDING_PATHS: list[tuple[str, str]] = [
    ("A", "a"),
    ("model.BIN", "model.bin"),
    ("weights/Model.bin", "weights/model.bin"),
    ("Weights/model.bin", "weights/model.bin"),  # a folder differing in case: the same file
    ("caf\u00e9.txt", "cafe\u0301.txt"),  # NFC and NFD spellings of 'é'
    ("CAF\u00c9.txt", "cafe\u0301.txt"),  # ...and in another case
    ("\u00c5ngstr\u00f6m", "\u212bngstro\u0308m"),  # ANGSTROM SIGN is canonically 'Å'
    ("stra\u00dfe", "STRASSE"),  # full case folding: 'ß' folds to 'ss'
    ("\ufb01le", "FILE"),  # ...and the 'fi' ligature to 'fi'
    ("\u03a3\u03b1", "\u03c3\u03b1"),  # Greek capital and small sigma
    ("\u0130", "i\u0307"),  # 'İ' folds to 'i' + combining dot
]

REJECTED_MANIFESTS += [
    RejectedManifest(
        f"{first!a} vs {second!a}",
        [(first, GOOD_SHA, 1), (second, "b" * 64, 2)],
        _COLLIDES,
    )
    for first, second in COLLIDING_PATHS
] + [
    RejectedManifest(
        f"{second!a} vs {first!a}",
        [(second, GOOD_SHA, 1), (first, GOOD_SHA, 1)],
        _COLLIDES,
    )
    for first, second in COLLIDING_PATHS
]

# The server refuses to commit an empty manifest (a version holds at least one file); the SDK
# pulls one, writing nothing (versions committed before that rule may be empty).
EMPTY_MANIFEST: list[tuple[str, str, int]] = []

ACCEPTED_MANIFESTS: list[list[tuple[str, str, int]]] = [
    [("a/b", GOOD_SHA, 0), ("a/c", GOOD_SHA, 5)],  # one blob under two paths is fine
    [("ab", GOOD_SHA, 1), ("a/b", GOOD_SHA, 1)],  # 'ab' is no folder of 'a/b'
    [("a", GOOD_SHA, 1), ("a-b/c", GOOD_SHA, 1), ("a.b/c", GOOD_SHA, 1)],
    # Folders differing in case are one folder on macOS, but no file lands on another.
    [("A/x", GOOD_SHA, 1), ("a/y", GOOD_SHA, 1)],
    # Look-alikes that differ in more than case and canonical form (compatibility forms,
    # invisible characters, other scripts) are different files everywhere.
    [("x\u00b2", GOOD_SHA, 1), ("x2", GOOD_SHA, 1)],  # superscript two
    [("a\u200bb", GOOD_SHA, 1), ("ab", GOOD_SHA, 1)],  # a zero-width space
    [("\u0430", GOOD_SHA, 1), ("a", GOOD_SHA, 1)],  # Cyrillic small a (U+0430)
]

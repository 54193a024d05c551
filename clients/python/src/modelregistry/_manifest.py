"""The rules a registry answer must follow before ``pull`` writes anything it names.

A pull turns the server's answer into file system paths: the manifest's paths become files
under the destination and the cache's snapshot folder, the digests become blob file names, the
version's name and number become the snapshot folder. A server that is wrong, compromised or an
impostor must not be able to point any of them elsewhere, so the answer is checked here first:

- every manifest entry with the server's own rules (``validate_manifest`` and ``_path_problem``
  in ``metadata/domain/version.py``; ``tests/support/manifest_paths.py`` is the table both
  sides are tested against, so they cannot drift apart), including that no two paths are one
  file on a case-insensitive or normalising file system (``A`` and ``a``: a pull onto macOS or
  Windows would overwrite one with the other). An empty manifest is accepted here (there is
  nothing to write) although the server no longer commits one;
- the version's name, number and uid are well-formed, and the version is one of the model
  the reference asked for.

A breach raises :class:`~modelregistry.errors.InvalidResponseError`. Nothing here does I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from modelregistry._refs import parse_ref, parse_version_number
from modelregistry.errors import InvalidResponseError
from modelregistry.metadata.v1 import model_version_pb2

# The server's limits (metadata/domain/version.py).
MAX_FILES = 10_000
MAX_PATH_BYTES = 1024
SHA256 = re.compile(r"[0-9a-f]{64}")
_MODEL_ID = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
_VERSION_NAME = re.compile(r"models/([^/]+)/versions/([^/]+)")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DRIVE = re.compile(r"[A-Za-z]:")


def path_problem(path: str) -> str:
    """What is wrong with a manifest path, in the server's words, or '' if nothing.

    A path is relative, ``/``-separated, with no empty, ``.`` or ``..`` segment, no NUL or
    other control character, no backslash, no drive letter, and at most 1024 UTF-8 bytes.
    """
    if not path:
        return "is empty"
    if "\x00" in path:
        return "contains a NUL character"
    control = next((c for c in path if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        return f"contains a control character (U+{ord(control):04X})"
    if len(path.encode()) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    if path.startswith("/") or "\\" in path or _DRIVE.match(path):
        return "must be a relative path with '/' separators"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "must not contain empty, '.' or '..' segments"
    return ""


def check_manifest(files: Sequence[model_version_pb2.ManifestFile], where: str) -> None:
    """Refuse a manifest the server itself would refuse; ``where`` names the version.

    An empty manifest passes: the server commits none any more, but versions committed before
    it refused them may be empty, and pulling one writes nothing.

    Raises:
        InvalidResponseError: reason ``MANIFEST_INVALID``, naming the entry and the rule.
    """
    if len(files) > MAX_FILES:
        raise _bad_manifest(where, f"has {len(files)} files; at most {MAX_FILES} allowed")
    seen: dict[str, str] = {}  # folded path -> the path as sent
    for entry in files:
        path = entry.path
        problem = path_problem(path)
        if problem:
            raise _bad_manifest(where, f"path {path!r} {problem}")
        key = fold_path(path)
        other = seen.get(key)
        if other == path:
            raise _bad_manifest(where, f"path {path!r} appears twice")
        if other is not None:
            raise _bad_manifest(where, f"path {path!r} collides with {other!r}: {_SAME_PATH}")
        seen[key] = path
        if not SHA256.fullmatch(entry.sha256):
            raise _bad_manifest(
                where,
                f"the sha256 of {path!r}, {entry.sha256!r}, is not a sha256 digest "
                "(64 lowercase hex characters)",
            )
        if entry.size_bytes < 0:
            raise _bad_manifest(where, f"the size of {path!r} must not be negative")
    for key, path in sorted(seen.items(), key=lambda item: item[1]):
        folder = key.rpartition("/")[0]
        while folder:
            file = seen.get(folder)
            if file is not None:
                same = "" if path.startswith(file + "/") else f" ({_SAME_PATH})"
                raise _bad_manifest(
                    where, f"{file!r} is a file and also a folder of {path!r}{same}"
                )
            folder = folder.rpartition("/")[0]


_SAME_PATH = (
    "paths that differ only in letter case or Unicode normalisation are one file on macOS, "
    "Windows and other case-insensitive file systems"
)


def fold_path(path: str) -> str:
    """The form in which two paths are one file on a case-insensitive, normalising file system
    (the server's ``fold_path``): each segment NFD-normalised, case-folded, then NFC."""
    return "/".join(
        unicodedata.normalize("NFC", unicodedata.normalize("NFD", part).casefold())
        for part in path.split("/")
    )


def check_answer(ref: str, version: model_version_pb2.ModelVersion) -> tuple[str, int]:
    """Check that ``version`` is a well-formed answer to ``ref``; return ``(model, number)``.

    The model is the one the reference names (for a uid, the uid or the model matches it, as
    the server tries a uuid-shaped reference as a uid first and then as a model name), and
    ``name:3`` gets version 3. The manifest is checked by :func:`check_manifest`.

    Raises:
        InvalidResponseError: reason ``RESPONSE_INVALID``.
    """
    match = _VERSION_NAME.fullmatch(version.name)
    model, digits = match.groups() if match else ("", "")
    number = parse_version_number(digits)
    if not _MODEL_ID.fullmatch(model) or number is None:
        raise _bad_answer(ref, f"{version.name!r} is not a version name")
    if version.version != number:
        raise _bad_answer(ref, f"{version.name!r} says version {version.version}")
    if version.uid and not _UUID.fullmatch(version.uid):
        raise _bad_answer(ref, f"the uid {version.uid!r} of {version.name!r} is not a uuid")
    asked = parse_ref(ref)
    if asked.kind == "uid":
        if asked.value not in (version.uid, model):
            raise _bad_answer(ref, f"{version.name!r} (uid {version.uid!r}) is not that version")
    elif model != asked.model:
        raise _bad_answer(ref, f"{version.name!r} is a version of another model")
    elif asked.kind == "version" and number != int(asked.value):
        raise _bad_answer(ref, f"{version.name!r} is another version")
    check_manifest(version.files, version.name)
    return model, number


def _bad_manifest(where: str, problem: str) -> InvalidResponseError:
    return InvalidResponseError(
        f"refusing the manifest the registry sent for {where}, nothing was written: {problem}",
        reason="MANIFEST_INVALID",
        metadata={"version": where},
    )


def _bad_answer(ref: str, problem: str) -> InvalidResponseError:
    return InvalidResponseError(
        f"refusing the registry's answer to {ref!r}, nothing was written: {problem}",
        reason="RESPONSE_INVALID",
        metadata={"ref": ref},
    )

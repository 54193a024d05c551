"""Model versions, their manifests, and the references that name them."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from modelregistry_server.metadata.domain.errors import InvalidArgument, quoted
from modelregistry_server.metadata.domain.model import (
    MODEL_ID_PATTERN,
    MODEL_ID_RULE,
    MODEL_NAME_PREFIX,
    validate_labels,
    validate_model_id,
)
from modelregistry_server.metadata.domain.scanning.model import FileVerdict

ParamValue = str | int | float | bool
KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# Every cap of a version's fields. Together they keep any version, with its whole manifest,
# under the 4 MiB gRPC message limit as Get/ResolveModelVersion send it (3.48 MiB at most;
# tests/unit/test_version_caps.py builds that worst case). Raising one means lowering another.
MAX_FILES = 10_000
MAX_PATH_BYTES = 1024
MAX_MEDIA_TYPE_BYTES = 256
# 10,000 paths of 1024 bytes would be 10 MB: the paths and media types of one manifest share
# this budget (an average of 100 bytes a file at 10,000 files).
MAX_MANIFEST_TEXT_BYTES = 1024 * 1024
MAX_TOTAL_SIZE = 2**63 - 1  # total_size_bytes is an int64
MAX_KEYS = 1000
MAX_PARAM_STRING_BYTES = 1024
MAX_CARD_BYTES = 65536
MAX_FRAMEWORK_CHARS = 256  # framework and format each
# lineage and signature are measured as compact JSON (the proto3 JSON mapping, UTF-8).
MAX_LINEAGE_BYTES = 64 * 1024
MAX_SIGNATURE_BYTES = 128 * 1024
MAX_ALIASES = 100  # per model
_VERSION_NAME = re.compile(r"^models/([^/]+)/versions/([0-9]+)$")
_VERSION_NUMBER = re.compile(r"[0-9]+")
MAX_VERSION = 2**63 - 1  # version numbers are BIGINT
_ALIAS_NAME = re.compile(r"^models/([^/]+)/aliases/([^/]+)$")


class VersionState(StrEnum):
    """Lifecycle: PENDING → READY (or FAILED); READY → ARCHIVED; any → DELETED."""

    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"
    ARCHIVED = "ARCHIVED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class ManifestFile:
    """One file of a version: where it goes and which blob holds it."""

    path: str
    sha256: str
    size: int
    media_type: str = ""


@dataclass(frozen=True)
class VersionDraft:
    """What a caller may set on a version (create, or the fields an update touches).

    ``lineage`` and ``signature`` are JSON-shaped mappings (their wire messages in JSON form).
    """

    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    lineage: Mapping[str, object] = field(default_factory=dict)
    framework: str = ""
    format: str = ""
    signature: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    """A version of a model. Once READY its manifest and identity never change."""

    model_id: str
    version: int
    uid: str
    state: VersionState
    draft: VersionDraft
    files: tuple[ManifestFile, ...]
    aliases: tuple[str, ...]
    created_by: str
    create_time: datetime
    update_time: datetime
    ready_time: datetime | None
    etag: str
    # The file scan (domain/scanning), stored after the commit: "" while not scanned yet,
    # else a ``Verdict`` value; the per-file verdicts (capped: ``app/scanning.py``).
    scan_verdict: str = ""
    scan_results: tuple[FileVerdict, ...] = ()
    scan_time: datetime | None = None

    @property
    def name(self) -> str:
        """``models/{model}/versions/{version}``."""
        return version_name(self.model_id, self.version)

    @property
    def total_size(self) -> int:
        """The sum of the file sizes."""
        return sum(f.size for f in self.files)


# Fields a READY version still accepts; everything else is its immutable identity.
MUTABLE_WHEN_READY = frozenset({"description", "labels"})
UPDATABLE_VERSION_FIELDS = frozenset(
    {"description", "labels", "params", "metrics", "lineage", "framework", "format", "signature"}
)


def version_name(model_id: str, version: int) -> str:
    """The resource name of a version."""
    return f"{MODEL_NAME_PREFIX}{model_id}/versions/{version}"


def parse_version_number(text: str) -> int | None:
    """The version number ``text`` spells (ASCII digits, 1 to 2**63 - 1: a BIGINT), or None.

    Not ``str.isdigit()``/``int()``: they also take '³' or full-width digits. The SDK's parser
    (``modelregistry/_refs.py``) accepts the same strings; ``tests/support/refs.py`` checks it.
    """
    # Leading zeros are allowed, but never more than 19 significant digits reach int(): it
    # refuses strings of over 4300 digits with a ValueError (which would be a bug report).
    if not _VERSION_NUMBER.fullmatch(text) or len(text.lstrip("0")) > len(str(MAX_VERSION)):
        return None
    number = int(text.lstrip("0") or "0")
    return number if 1 <= number <= MAX_VERSION else None


def parse_version_name(name: str, field_name: str = "name") -> tuple[str, int]:
    """Return ``(model_id, version)`` from ``models/{model}/versions/{version}``."""
    match = _VERSION_NAME.fullmatch(name)
    number = parse_version_number(match.group(2)) if match else None
    if match is None or number is None:
        raise InvalidArgument(
            field_name,
            f"{quoted(name)} is not a version name; expected 'models/{{model}}/versions/{{n}}'",
        )
    return validate_model_id(match.group(1), field_name), number


def parse_alias_name(name: str, field_name: str = "name") -> tuple[str, str]:
    """Return ``(model_id, alias)`` from ``models/{model}/aliases/{alias}``."""
    match = _ALIAS_NAME.fullmatch(name)
    if match is None:
        raise InvalidArgument(
            field_name,
            f"{quoted(name)} is not an alias name; expected 'models/{{model}}/aliases/{{alias}}'",
        )
    return validate_model_id(match.group(1), field_name), validate_alias(match.group(2), field_name)


def validate_alias(alias: str, field_name: str = "alias") -> str:
    """Aliases follow the model-id grammar (``production``, ``staging``, ``canary-2``)."""
    if not MODEL_ID_PATTERN.fullmatch(alias):
        raise InvalidArgument(
            field_name,
            f"{quoted(alias)} is not a valid alias; " + MODEL_ID_RULE.replace("model id", "alias"),
        )
    return alias


def validate_version_draft(draft: VersionDraft, prefix: str = "model_version") -> None:
    """Check the caller-settable fields of a version (on create and on every update)."""
    if len(draft.description.encode()) > MAX_CARD_BYTES:
        raise InvalidArgument(f"{prefix}.description", f"is longer than {MAX_CARD_BYTES} bytes")
    validate_labels(draft.labels, f"{prefix}.labels")
    for kind, values in (("params", draft.params), ("metrics", draft.metrics)):
        if len(values) > MAX_KEYS:
            raise InvalidArgument(f"{prefix}.{kind}", f"has more than {MAX_KEYS} entries")
        for key in values:
            if not KEY_PATTERN.fullmatch(key):
                raise InvalidArgument(
                    f"{prefix}.{kind}",
                    f"key {quoted(key)} must be 1 to 128 characters of letters, digits, '_', '.' "
                    "or '-', starting with a letter or '_'",
                )
    for key, value in draft.metrics.items():
        if not math.isfinite(value):
            raise InvalidArgument(f"{prefix}.metrics.{key}", "must be a finite number")
    for key, param in draft.params.items():
        if isinstance(param, float) and not math.isfinite(param):
            raise InvalidArgument(f"{prefix}.params.{key}", "must be a finite number")
        if isinstance(param, str) and len(param.encode()) > MAX_PARAM_STRING_BYTES:
            raise InvalidArgument(
                f"{prefix}.params.{key}",
                f"string value is longer than {MAX_PARAM_STRING_BYTES} bytes",
            )
    for name, text in (("framework", draft.framework), ("format", draft.format)):
        if len(text) > MAX_FRAMEWORK_CHARS:
            raise InvalidArgument(
                f"{prefix}.{name}", f"is longer than {MAX_FRAMEWORK_CHARS} characters"
            )
    for name, mapping, limit in (
        ("lineage", draft.lineage, MAX_LINEAGE_BYTES),
        ("signature", draft.signature, MAX_SIGNATURE_BYTES),
    ):
        size = json_size(mapping)
        if size > limit:
            raise InvalidArgument(
                f"{prefix}.{name}",
                f"is {size} bytes as JSON; at most {limit} bytes ({limit // 1024} KiB) allowed",
            )


def json_size(mapping: Mapping[str, object]) -> int:
    """The UTF-8 size of ``mapping`` as compact JSON: how lineage and signature are measured."""
    if not mapping:
        return 0
    text = json.dumps(mapping, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8", "surrogatepass"))


def validate_alias_count(model_id: str, aliases: int) -> None:
    """Refuse a new alias for a model that has ``MAX_ALIASES`` already (``aliases`` now)."""
    if aliases >= MAX_ALIASES:
        raise InvalidArgument(
            "alias",
            f"{MODEL_NAME_PREFIX}{model_id} has {aliases} aliases, the most a model may have; "
            "delete one (DeleteAlias) or move an existing one instead",
        )


def validate_manifest(files: Sequence[ManifestFile], field_name: str = "files") -> None:
    """Check a manifest to commit: 1 to ``MAX_FILES`` files; relative paths with no '..' and no
    control characters; no two paths the same on a case-insensitive or normalising file
    system; no file that is also a folder; digests, sizes and media types; bounded text.

    The SDK checks every manifest it pulls with the same path rules
    (``modelregistry/_manifest.py``); ``tests/support/manifest_paths.py`` is the table both are
    tested against.
    """
    if not files:
        raise InvalidArgument(
            field_name,
            "is empty; a version holds at least one file",
            reason="MANIFEST_INVALID",
        )
    if len(files) > MAX_FILES:
        raise InvalidArgument(field_name, f"has {len(files)} files; at most {MAX_FILES} allowed")
    seen: dict[str, str] = {}  # folded path -> the path as given
    text_bytes = total_size = 0
    for i, entry in enumerate(files):
        where = f"{field_name}[{i}]"
        _check_entry(entry, where, seen)
        text_bytes += len(entry.path.encode()) + len(entry.media_type.encode())
        total_size += entry.size
    if text_bytes > MAX_MANIFEST_TEXT_BYTES:
        raise InvalidArgument(
            field_name,
            f"paths and media types add up to {text_bytes} bytes; at most "
            f"{MAX_MANIFEST_TEXT_BYTES} bytes (1 MiB) allowed",
            reason="MANIFEST_INVALID",
        )
    if total_size > MAX_TOTAL_SIZE:
        raise InvalidArgument(
            field_name,
            f"the sizes add up to more than {MAX_TOTAL_SIZE} bytes",
            reason="MANIFEST_INVALID",
        )
    _check_no_file_is_a_folder(seen, field_name)


def _check_entry(entry: ManifestFile, where: str, seen: dict[str, str]) -> None:
    """One entry's path, digest, size and media type; records its folded path in ``seen``."""
    path = entry.path
    problem = _path_problem(path)
    if problem:
        raise InvalidArgument(
            f"{where}.path", f"{quoted(path)} {problem}", reason="MANIFEST_INVALID"
        )
    key = fold_path(path)
    other = seen.get(key)
    if other == path:
        raise InvalidArgument(
            f"{where}.path",
            f"{quoted(path)} appears twice in the manifest",
            reason="MANIFEST_INVALID",
        )
    if other is not None:
        raise InvalidArgument(
            f"{where}.path",
            f"{quoted(path)} collides with {quoted(other)}: {_SAME_PATH}",
            reason="MANIFEST_INVALID",
        )
    seen[key] = path
    if not SHA256_PATTERN.fullmatch(entry.sha256):
        raise InvalidArgument(
            f"{where}.sha256",
            f"{quoted(entry.sha256)} is not a sha256 digest (64 lowercase hex characters)",
            reason="MANIFEST_INVALID",
        )
    if entry.size < 0:
        raise InvalidArgument(
            f"{where}.size_bytes", "must not be negative", reason="MANIFEST_INVALID"
        )
    if len(entry.media_type.encode()) > MAX_MEDIA_TYPE_BYTES:
        raise InvalidArgument(
            f"{where}.media_type",
            f"is longer than {MAX_MEDIA_TYPE_BYTES} bytes",
            reason="MANIFEST_INVALID",
        )


_SAME_PATH = (
    "paths that differ only in letter case or Unicode normalisation are one file on macOS, "
    "Windows and other case-insensitive file systems"
)


def fold_path(path: str) -> str:
    """The form in which two paths are one file on a case-insensitive, normalising file system.

    Each segment is case-folded (``str.casefold``) and normalised (Unicode canonical caseless
    matching: NFD, fold, then NFC), so ``A``/``a`` and the NFC/NFD spellings of ``é`` fold
    alike. Segments are folded one by one, so the folded path keeps the same folders.
    """
    return "/".join(
        unicodedata.normalize("NFC", unicodedata.normalize("NFD", part).casefold())
        for part in path.split("/")
    )


def _check_no_file_is_a_folder(seen: Mapping[str, str], field_name: str) -> None:
    """Refuse ``a`` beside ``a/b`` (or ``A`` beside ``a/b``): no download could place both.

    ``seen`` maps each folded path to the path as given.
    """
    for key, path in sorted(seen.items(), key=lambda item: item[1]):
        folder = key.rpartition("/")[0]
        while folder:
            file = seen.get(folder)
            if file is not None:
                same = "" if path.startswith(file + "/") else f" ({_SAME_PATH})"
                raise InvalidArgument(
                    field_name,
                    f"{quoted(file)} is a file and also a folder of {quoted(path)}{same}",
                    reason="MANIFEST_INVALID",
                )
            folder = folder.rpartition("/")[0]


def _path_problem(path: str) -> str:
    if not path:
        return "is empty"
    if "\x00" in path:
        return "contains a NUL character"
    control = next((c for c in path if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        return f"contains a control character (U+{ord(control):04X})"
    if len(path.encode()) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    if path.startswith("/") or "\\" in path or re.match(r"^[A-Za-z]:", path):
        return "must be a relative path with '/' separators"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "must not contain empty, '.' or '..' segments"
    return ""


@dataclass(frozen=True)
class VersionRef:
    """A parsed reference to a version. Exactly one way of naming it is set.

    ``uid_or_model`` is set for a UUID-shaped ref: it is tried as a version uid first, then
    as a model name (a UUID can be a valid model id too).
    """

    model_id: str = ""
    number: int | None = None
    alias: str | None = None
    uid_or_model: str | None = None


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_REF_FORMS = (
    "'name' (latest READY), 'name@alias', 'name:3', 'name/versions/3', "
    "'models/name/versions/3' or a version uid"
)


def parse_ref(ref: str, field_name: str = "ref") -> VersionRef:
    """Parse every accepted way of naming a version."""
    text = ref.strip().removeprefix(MODEL_NAME_PREFIX)
    if not text:
        raise InvalidArgument(
            field_name, f"is required: one of {_REF_FORMS}", reason="REFERENCE_INVALID"
        )
    try:
        if _UUID.fullmatch(text.lower()):
            return VersionRef(uid_or_model=text.lower())
        if "@" in text:
            model, alias = text.split("@", 1)
            return VersionRef(
                model_id=validate_model_id(model, field_name),
                alias=validate_alias(alias, field_name),
            )
        for separator in ("/versions/", ":"):
            if separator in text:
                model, digits = text.split(separator, 1)
                number = parse_version_number(digits)
                if number is None:
                    raise InvalidArgument(
                        field_name,
                        f"version number {quoted(digits)} must be an integer from 1 to "
                        f"{MAX_VERSION}",
                    )
                return VersionRef(model_id=validate_model_id(model, field_name), number=number)
        return VersionRef(model_id=validate_model_id(text, field_name))
    except InvalidArgument as exc:
        raise InvalidArgument(
            field_name,
            f"{quoted(ref)} is not a version reference ({exc.rule}); use {_REF_FORMS}",
            reason="REFERENCE_INVALID",
        ) from None

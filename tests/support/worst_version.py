"""The largest version the server accepts: every field at its cap, from the domain's constants.

Used by ``tests/unit/test_version_caps.py`` (through the use cases, measuring the message
``ResolveModelVersion`` sends) and ``tests/e2e/test_input_caps.py`` (over real gRPC and
PostgreSQL). The caps are read from ``metadata/domain``, never copied, so raising one makes
these tests measure the new worst case.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from google.protobuf import json_format

from modelregistry.metadata.v1 import model_version_pb2
from modelregistry_server.metadata.domain import model as model_rules
from modelregistry_server.metadata.domain import version as rules
from modelregistry_server.metadata.domain.version import ManifestFile, VersionDraft

WIDE = "\U0001f642"  # 4 bytes of UTF-8: the most a character-counted cap lets through
MODEL = "m" * 63  # the longest model id


def key(prefix: str, i: int, length: int) -> str:
    """A distinct key of exactly ``length`` characters."""
    return f"{prefix}{i:0{length - len(prefix)}d}"


def _largest(limit: int, build: Callable[[int], dict[str, object]]) -> dict[str, object]:
    """The largest ``build(n)`` whose compact JSON fits in ``limit`` bytes (bisecting n)."""
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if rules.json_size(build(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return build(low)


def worst_draft() -> VersionDraft:
    """Every caller-settable field of a version at its cap."""
    labels = {
        key("k", i, 63): WIDE * model_rules.MAX_LABEL_VALUE for i in range(model_rules.MAX_LABELS)
    }
    params: dict[str, rules.ParamValue] = {
        key("p", i, 128): "x" * rules.MAX_PARAM_STRING_BYTES for i in range(rules.MAX_KEYS)
    }
    metrics = {key("m", i, 128): 1e300 for i in range(rules.MAX_KEYS)}
    # Lineage is strings: its proto is smaller than its JSON. A signature's shapes are int64,
    # which JSON writes as strings ("-1", 5 bytes a dimension) and the proto as 10-byte varints:
    # the most proto per JSON byte any field allows.
    lineage = _largest(
        rules.MAX_LINEAGE_BYTES,
        lambda n: {"datasets": [{"uri": "s3://" + "d" * n, "digest": "sha256:" + "0" * 64}]},
    )
    signature = _largest(
        rules.MAX_SIGNATURE_BYTES,
        lambda n: {"inputs": [{"name": "x", "dtype": "float32", "shape": ["-1"] * n}]},
    )
    return VersionDraft(
        description="d" * rules.MAX_CARD_BYTES,
        labels=labels,
        params=params,
        metrics=metrics,
        lineage=lineage,
        framework=WIDE * rules.MAX_FRAMEWORK_CHARS,
        format=WIDE * rules.MAX_FRAMEWORK_CHARS,
        signature=signature,
    )


def worst_manifest(blob: tuple[str, int] | None = None) -> list[ManifestFile]:
    """``MAX_FILES`` files whose paths and media types fill ``MAX_MANIFEST_TEXT_BYTES``.

    Each file has its own digest and a size as large as an int64 total allows (8-byte
    varints), unless ``blob`` (digest, size) names one blob every path holds.
    """
    per_file, extra = divmod(rules.MAX_MANIFEST_TEXT_BYTES, rules.MAX_FILES)
    size = rules.MAX_TOTAL_SIZE // rules.MAX_FILES
    media_type = "application/" + "x" * 40
    files = []
    for i in range(rules.MAX_FILES):
        text = per_file + (1 if i < extra else 0)
        path = f"{i:05d}/" + "w" * (text - len(media_type) - 6)
        digest, length = blob or (hashlib.sha256(str(i).encode()).hexdigest(), size)
        files.append(ManifestFile(path, digest, length, media_type))
    assert sum(len(f.path) + len(f.media_type) for f in files) == rules.MAX_MANIFEST_TEXT_BYTES
    return files


def draft_to_proto(draft: VersionDraft) -> model_version_pb2.ModelVersion:
    """The wire form of a draft whose params are strings (as ``worst_draft``'s are)."""
    message = model_version_pb2.ModelVersion(
        description=draft.description,
        labels=dict(draft.labels),
        params={
            k: model_version_pb2.ParamValue(string_value=str(v)) for k, v in draft.params.items()
        },
        metrics=dict(draft.metrics),
        framework=draft.framework,
        format=draft.format,
    )
    json_format.ParseDict(dict(draft.lineage), message.lineage)
    json_format.ParseDict(dict(draft.signature), message.signature)
    return message


def manifest_to_proto(files: list[ManifestFile]) -> list[model_version_pb2.ManifestFile]:
    """The wire form of a manifest."""
    return [
        model_version_pb2.ManifestFile(
            path=f.path, sha256=f.sha256, size_bytes=f.size, media_type=f.media_type
        )
        for f in files
    ]

"""Rows of the ``metadata`` schema to domain objects and back (JSON columns, etags)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg

from modelregistry_server.common.adapters.sql import load_queries
from modelregistry_server.metadata.app.ports import AliasRecord
from modelregistry_server.metadata.domain.model import Model
from modelregistry_server.metadata.domain.scanning import FileVerdict, Finding, FindingKind, Verdict
from modelregistry_server.metadata.domain.version import (
    ManifestFile,
    ModelVersion,
    VersionDraft,
    VersionState,
)

QUERIES = load_queries(Path(__file__).parent / "queries.sql")


def new_etag() -> str:
    """A fresh etag: random, so it reveals nothing and never repeats an old one."""
    return secrets.token_hex(8)


def to_json(value: Mapping[str, Any]) -> str:
    """A mapping as the text of a ``jsonb`` parameter."""
    return json.dumps(dict(value))


def to_model(row: asyncpg.Record) -> Model:
    """A ``metadata.models`` row as a ``Model``."""
    return Model(
        model_id=row["model_id"],
        uid=str(row["uid"]),
        description=row["description"],
        labels=json.loads(row["labels"]),
        owner=row["owner"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        etag=row["etag"],
    )


def to_version(row: asyncpg.Record) -> ModelVersion:
    """A ``metadata.model_versions`` row (with its ``aliases`` array) as a ``ModelVersion``."""
    draft = VersionDraft(
        description=row["description"],
        labels=json.loads(row["labels"]),
        params=json.loads(row["params"]),
        metrics=json.loads(row["metrics"]),
        lineage=json.loads(row["lineage"]),
        framework=row["framework"],
        format=row["format"],
        signature=json.loads(row["signature"]),
    )
    files = tuple(
        ManifestFile(f["path"], f["sha256"], f["size"], f.get("media_type", ""))
        for f in json.loads(row["files"])
    )
    return ModelVersion(
        model_id=row["model_id"],
        version=row["version"],
        uid=str(row["uid"]),
        state=VersionState(row["state"]),
        draft=draft,
        files=files,
        aliases=tuple(row["aliases"]),
        created_by=row["created_by"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        ready_time=row["ready_time"],
        etag=row["etag"],
        scan_verdict=row["scan_verdict"],
        scan_results=scan_results_from_json(row["scan_results"]),
        scan_time=row["scan_time"],
    )


def scan_results_to_json(results: tuple[FileVerdict, ...] | list[FileVerdict]) -> str:
    """Per-file verdicts as stored in the ``scan_results`` column."""
    return json.dumps(
        [
            {
                "path": r.path,
                "verdict": r.verdict.value,
                "scanner": r.scanner,
                "findings": [
                    {"kind": f.kind.value, "detail": f.detail, "offset": f.offset}
                    for f in r.findings
                ],
            }
            for r in results
        ]
    )


def scan_results_from_json(text: str) -> tuple[FileVerdict, ...]:
    """The ``scan_results`` column as ``FileVerdict``s."""
    return tuple(
        FileVerdict(
            r["path"],
            Verdict(r["verdict"]),
            r["scanner"],
            tuple(
                Finding(FindingKind(f["kind"]), f["detail"], f.get("offset"))
                for f in r.get("findings", ())
            ),
        )
        for r in json.loads(text)
    )


def to_alias(row: asyncpg.Record) -> AliasRecord:
    """A ``metadata.aliases`` row as an ``AliasRecord``."""
    return AliasRecord(
        row["model_id"], row["alias"], row["version"], row["update_time"], row["updated_by"]
    )


def manifest_json(files: list[ManifestFile] | tuple[ManifestFile, ...]) -> str:
    """The manifest as stored in the ``files`` column."""
    return json.dumps(
        [
            {"path": f.path, "sha256": f.sha256, "size": f.size, "media_type": f.media_type}
            for f in files
        ]
    )

"""The CLI's human and JSON rendering: tables, sizes, times, versions and diffs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from google.protobuf import timestamp_pb2

from modelregistry.cli import _format as fmt
from modelregistry.cli._commands import render_diff
from modelregistry.cli._format import (
    alias_dict,
    audit_dict,
    format_scalar,
    human_duration,
    human_rate,
    human_size,
    iso_utc,
    json_text,
    local_time,
    printable,
    render_aliases,
    render_audit,
    render_version,
    render_versions,
    state_name,
    table,
    version_dict,
    version_ref,
)
from modelregistry.diff import VersionDiff
from modelregistry.metadata.v1 import alias_pb2, audit_event_pb2, model_version_pb2

READY = model_version_pb2.MODEL_VERSION_STATE_READY


def ts(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


def make_version(number: int = 3, **extra: object) -> model_version_pb2.ModelVersion:
    version = model_version_pb2.ModelVersion(
        name=f"models/fraud/versions/{number}",
        version=number,
        uid="0b7c6a8e-0000-4000-8000-000000000001",
        state=READY,
        created_by="alice",
        create_time=ts(1_700_000_000),
        total_size_bytes=3 * 1024 * 1024,
        aliases=["staging", "production"],
        labels={"team": "risk"},
        metrics={"auc": 0.93},
        files=[
            model_version_pb2.ManifestFile(
                path="weights.bin", sha256="ab" * 32, size_bytes=3 << 20
            ),
            model_version_pb2.ManifestFile(path="config.json", sha256="cd" * 32, size_bytes=0),
        ],
        **extra,  # type: ignore[arg-type]
    )
    version.params["lr"].double_value = 0.01
    version.params["epochs"].int_value = 3
    version.params["shuffle"].bool_value = True
    version.params["optimizer"].string_value = "adam"
    return version


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
     (210 * 1024 * 1024, "210.0 MiB"), (5 * 1024**4, "5.0 TiB"), (3 * 1024**6, "3072.0 PiB")],
)  # fmt: skip
def test_human_size(nbytes: int, text: str) -> None:
    assert human_size(nbytes) == text


def test_rates_and_durations() -> None:
    assert human_rate(50_000_000) == "50.0 MB/s"
    assert human_duration(4.24) == "4.2 s"
    assert human_duration(185) == "3m05s"
    assert human_duration(3720) == "1h02m"


def test_table_aligns_columns_without_trailing_spaces() -> None:
    text = table(("NAME", "SIZE", "NOTE"), [("a", "1 B", ""), ("longer-name", "10.0 KiB", "x")])
    assert text.splitlines() == [
        "NAME         SIZE      NOTE",
        "a            1 B",
        "longer-name  10.0 KiB  x",
    ]


def test_times() -> None:
    assert iso_utc(ts(0)) is None
    assert iso_utc(ts(1_700_000_000)) == "2023-11-14T22:13:20Z"
    assert local_time(ts(0)) == "-"
    local = local_time(ts(1_700_000_000))
    assert datetime.fromisoformat(local) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_scalars() -> None:
    assert format_scalar(True) == "true"
    assert format_scalar(0.01) == "0.01"
    assert format_scalar(3.0) == "3"
    assert format_scalar(None) == "-"
    assert format_scalar("adam") == "adam"
    assert state_name(READY) == "READY"
    assert state_name(99) == "UNKNOWN(99)"


def test_show_page_has_every_section() -> None:
    version = make_version(description="# Fraud\nscores cards")
    version.lineage.source.repo_url = "https://git/x"
    version.lineage.source.commit = "0123456789abcdef"
    version.lineage.source.dirty = True
    text = render_version(version)
    assert "version:  fraud:3" in text
    assert "state:    READY" in text
    assert "3.0 MiB in 2 files" in text
    assert "aliases:  production, staging" in text
    assert "params:   epochs=3, lr=0.01, optimizer=adam, shuffle=true" in text
    assert "metrics:  auc=0.93" in text
    assert "labels:   team=risk" in text
    assert "source:  https://git/x @ 0123456789ab (dirty)" in text
    assert "  # Fraud" in text
    assert "  weights.bin  3.0 MiB  abababababab" in text


def test_versions_and_aliases_tables() -> None:
    lines = render_versions([make_version(2), make_version(1)]).splitlines()
    assert lines[0].split() == ["VERSION", "STATE", "SIZE", "CREATED", "BY", "ALIASES"]
    assert lines[1].startswith("2        READY  3.0 MiB")
    aliases = [
        alias_pb2.Alias(name="models/fraud/aliases/prod", version="models/fraud/versions/3"),
        alias_pb2.Alias(name="models/fraud/aliases/a", version="models/fraud/versions/1"),
    ]
    assert [line.split()[:2] for line in render_aliases(aliases).splitlines()] == [
        ["ALIAS", "VERSION"],
        ["a", "1"],
        ["prod", "3"],
    ]
    assert alias_dict(aliases[0])["alias"] == "prod"
    assert alias_dict(aliases[0])["version"] == 3


def test_version_json_has_plain_types() -> None:
    data = version_dict(make_version())
    assert json.loads(json.dumps(data)) == data
    assert data["params"] == {"lr": 0.01, "epochs": 3, "shuffle": True, "optimizer": "adam"}
    assert data["ref"] == "fraud:3"
    assert data["state"] == "READY"
    assert data["create_time"] == "2023-11-14T22:13:20Z"
    assert data["ready_time"] is None
    assert data["files"][0] == {
        "path": "weights.bin",
        "sha256": "ab" * 32,
        "size_bytes": 3 << 20,
        "media_type": "",
    }
    assert version_ref(make_version(7)) == "fraud:7"


def test_diff_rendering() -> None:
    a, b = make_version(1), make_version(2)
    b.params["lr"].double_value = 0.02
    del b.params["optimizer"]
    b.metrics["auc"] = 0.95
    b.files[1].sha256 = "ef" * 32
    b.files.add(path="extra.txt", sha256="00" * 32, size_bytes=1)
    text = render_diff(VersionDiff.between(a, b))
    lines = text.splitlines()
    assert lines[:2] == ["--- fraud:1", "+++ fraud:2"]
    assert any(line.split() == ["lr", "0.01", "->", "0.02"] for line in lines)
    assert any(line.split() == ["optimizer", "adam", "->", "-"] for line in lines)
    assert any(line.split() == ["auc", "0.93", "->", "0.95", "(+0.02)"] for line in lines)
    assert "  + extra.txt" in lines
    assert "  ~ config.json" in lines
    assert "  1 file unchanged" in lines
    same = render_diff(VersionDiff.between(a, make_version(1)))
    assert "no differences" in same


def test_the_log_shows_which_calls_were_refused_and_what_they_lacked() -> None:
    refused = audit_event_pb2.AuditEvent(
        name="auditEvents/2", actor="intern", method="DeleteModel", resource="models/fraud",
        event_time=ts(0), denied_permission="models.delete",
    )  # fmt: skip
    done = audit_event_pb2.AuditEvent(
        name="auditEvents/1", actor="admin", method="CreateModel", resource="models/fraud",
        event_time=ts(0),
    )  # fmt: skip
    lines = render_audit([refused, done]).splitlines()
    assert "DeleteModel (denied: models.delete)" in lines[1]
    assert "denied" not in lines[2]
    assert audit_dict(refused)["denied_permission"] == "models.delete"
    assert audit_dict(done)["denied_permission"] is None


# ------------------------------------------------------------------ terminal safety

# What a hostile server (or a label someone stored) might try: clear the screen, return the
# cursor to overwrite what was printed, ring the bell, the 8-bit CSI, DEL.
HOSTILE = "a\x1b[2Jb\rc\x07d\x9b31me\x7ff"
ESCAPED = "a\\x1b[2Jb\\rc\\x07d\\x9b31me\\x7ff"


def _raw_controls(text: str, allowed: str = "\n") -> list[str]:
    return [c for c in text if (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) and c not in allowed]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [(HOSTILE, ESCAPED), ("\x00", "\\x00"), ("x\ny\tz", "x\\ny\\tz"), ("\x85", "\\x85"),
     ("tab\\x1b stays", "tab\\x1b stays"), ("ünïcode ✓", "ünïcode ✓")],
)  # fmt: skip
def test_printable_escapes_every_c0_c1_and_del_character(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert printable(printable(raw)) == shown  # escaping twice changes nothing more


def test_printable_keeps_only_what_it_is_told_to() -> None:
    assert printable("l1\n\tl2\r\x1b", keep="\n\t") == "l1\n\tl2\\r\\x1b"


def test_table_cells_are_escaped_and_a_newline_cannot_add_a_row() -> None:
    text = table(("NAME", "NOTE"), [(HOSTILE, "x\ny"), ("b", "ok")])
    assert text.splitlines() == [
        "NAME" + " " * (len(ESCAPED) - 2) + "NOTE",
        f"{ESCAPED}  x\\ny",
        "b" + " " * (len(ESCAPED) + 1) + "ok",
    ]
    assert _raw_controls(text) == []


def test_the_show_page_escapes_every_value_but_keeps_the_cards_line_breaks() -> None:
    version = make_version(description="# Card\n\tindented\nevil\r\x1b[2J\x9b")
    version.name = "models/fr\x1baud/versions/3"
    version.labels["t\x07eam"] = HOSTILE
    version.created_by = "mallory\r"
    version.aliases.append("prod\x9b")
    version.files[0].path = "w\x1b[31m.bin"
    version.lineage.source.repo_url = "https://x/\x1b]8;;evil\x07"
    text = render_version(version)
    assert _raw_controls(text, allowed="\n\t") == []
    assert "version:  fr\\x1baud:3" in text
    assert f"t\\x07eam={ESCAPED}" in text
    assert "by mallory\\r" in text
    assert "prod\\x9b" in text
    assert "  w\\x1b[31m.bin  3.0 MiB" in text
    assert "https://x/\\x1b]8;;evil\\x07" in text
    assert "  # Card\n  \tindented\n  evil\\r\\x1b[2J\\x9b" in text  # \n and \t kept, no more


def test_the_diff_escapes_paths_and_names() -> None:
    a, b = make_version(1), make_version(2)
    b.files.add(path="new\x1b[2J.bin", sha256="00" * 32, size_bytes=1)
    text = render_diff(VersionDiff.between(a, b))
    assert "  + new\\x1b[2J.bin" in text.splitlines()
    assert _raw_controls(text) == []


def test_json_text_has_no_raw_control_and_decodes_to_the_same_strings() -> None:
    data = {"name": HOSTILE, "labels": {"k\x9b": "\x7f"}}
    text = json_text(data)
    assert _raw_controls(text) == []
    assert all(escape in text for escape in ("\\u001b", "\\u009b", "\\u007f"))
    assert json.loads(text) == data


def test_show_names_the_scan_verdict_and_counts_findings() -> None:
    version = model_version_pb2.ModelVersion(name="models/m/versions/1", version=1)
    assert fmt.scan_name(version) == "-"  # not scanned yet
    version.scan_verdict = model_version_pb2.SCAN_VERDICT_UNSAFE
    version.file_scans.add(path="model.pkl", findings=["denied_import os.system", "unsafe_call"])
    assert fmt.scan_name(version) == "UNSAFE (2 findings)"
    assert "scan:     UNSAFE (2 findings)" in fmt.render_version(version)
    assert fmt.version_dict(version)["scan"] == "UNSAFE (2 findings)"

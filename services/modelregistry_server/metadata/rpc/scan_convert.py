"""The wire form of a version's file scan (``ModelVersion.scan_verdict`` and ``file_scans``)."""

from __future__ import annotations

from modelregistry.metadata.v1 import model_version_pb2
from modelregistry_server.common.rpc.proto_time import timestamp
from modelregistry_server.metadata.domain.scanning import Finding
from modelregistry_server.metadata.domain.version import ModelVersion


def scan_verdict_value(verdict: str) -> int:
    """The ``ScanVerdict`` number of a stored verdict ('' is UNSPECIFIED: not scanned yet)."""
    if not verdict:
        return model_version_pb2.SCAN_VERDICT_UNSPECIFIED
    return model_version_pb2.ScanVerdict.Value("SCAN_VERDICT_" + verdict)


def finding_text(finding: Finding) -> str:
    """One finding as a line: ``kind: detail`` and ``@offset`` when known."""
    where = f" @{finding.offset}" if finding.offset is not None else ""
    return f"{finding.kind.value}: {finding.detail}{where}"


def add_scan(version: ModelVersion, message: model_version_pb2.ModelVersion, files: bool) -> None:
    """Set the scan fields of ``message`` (the per-file results only with ``files``)."""
    message.scan_verdict = scan_verdict_value(version.scan_verdict)  # type: ignore[assignment]
    if version.scan_time is not None:
        message.scan_time.CopyFrom(timestamp(version.scan_time))
    if files:
        message.file_scans.extend(
            model_version_pb2.FileScan(
                path=r.path,
                verdict=scan_verdict_value(r.verdict.value),  # type: ignore[arg-type]
                scanner=r.scanner,
                findings=[finding_text(f) for f in r.findings],
            )
            for r in version.scan_results
        )

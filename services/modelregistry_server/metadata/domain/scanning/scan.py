"""Choosing a scanner for a file, running it, and turning what it found into a verdict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import BinaryIO

from modelregistry_server.metadata.domain.scanning.gguf_scan import MAGIC as GGUF_MAGIC
from modelregistry_server.metadata.domain.scanning.gguf_scan import scan_gguf
from modelregistry_server.metadata.domain.scanning.model import (
    DEFAULT_LIMITS,
    FileVerdict,
    FindingKind,
    FindingLog,
    ScanLimits,
    Verdict,
    verdict_from,
)
from modelregistry_server.metadata.domain.scanning.onnx_scan import scan_onnx
from modelregistry_server.metadata.domain.scanning.pickle_scan import (
    HIGHEST_PROTOCOL,
    scan_pickle_stream,
)
from modelregistry_server.metadata.domain.scanning.policy import DEFAULT_POLICY, ImportPolicy
from modelregistry_server.metadata.domain.scanning.reader import read_upto
from modelregistry_server.metadata.domain.scanning.safetensors_scan import scan_safetensors
from modelregistry_server.metadata.domain.scanning.zip_scan import scan_zip

# Names a pickle loader (pickle, joblib, torch.load) is given; a zip among them is an archive.
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt"})
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive
NO_SCANNER = "none"


def looks_like_pickle(head: bytes) -> bool:
    """Protocol 2 and later begin with PROTO and the protocol number."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= HIGHEST_PROTOCOL


def choose_scanner(path: str, head: bytes) -> str:
    """The scanner for a file named ``path`` whose first bytes are ``head`` (8 suffice).

    The name decides for the formats without a magic number (safetensors, ONNX) and for
    pickles, which loaders read whatever their first bytes; the magic decides for zip
    archives and GGUF whatever the name, and finds a pickle renamed (a ``.bin`` written by
    the legacy ``torch.save``, say). ``none`` when no scanner applies.
    """
    suffix = PurePosixPath(path).suffix.lower()
    if suffix == ".safetensors":
        return "safetensors"
    if suffix == ".gguf" or head.startswith(GGUF_MAGIC):
        return "gguf"
    if suffix == ".onnx":
        return "onnx"
    if head.startswith(ZIP_MAGICS):
        return "zip"
    if suffix in PICKLE_SUFFIXES or looks_like_pickle(head):
        return "pickle"
    return NO_SCANNER


def _run(
    scanner: str,
    raw: BinaryIO,
    size: int,
    policy: ImportPolicy,
    limits: ScanLimits,
    log: FindingLog,
) -> bool:
    """Run one scanner; False if it found nothing to scan (an archive without pickles)."""
    if scanner == "pickle":
        scan_pickle_stream(raw, size, policy, limits, log)
    elif scanner == "zip":
        return scan_zip(raw, size, policy, limits, log)
    elif scanner == "safetensors":
        scan_safetensors(raw, size, limits, log)
    elif scanner == "onnx":
        scan_onnx(raw, size, limits, log)
    else:
        scan_gguf(raw, size, limits, log)
    return True


def scan_file(
    path: str,
    size: int,
    opener: Callable[[], BinaryIO],
    *,
    policy: ImportPolicy = DEFAULT_POLICY,
    limits: ScanLimits = DEFAULT_LIMITS,
) -> FileVerdict:
    """Scan one manifest file without loading it; never raises for what the file holds.

    Args:
        path: the file's path in the manifest; its suffix helps choose the scanner.
        size: the file's size in bytes (from the manifest); reads never go past it.
        opener: opens the file as a seekable binary file object, positioned at 0. It is
            called once (also for a file no scanner knows: its first 8 bytes are read to
            recognise a renamed pickle, zip or GGUF), and the object is closed afterwards.
            Reads are few and bounded (see each scanner), so a file object doing ranged
            reads over the network is fine.
        policy: the pickle import policy (``DEFAULT_POLICY`` unless the operator extends it).
        limits: how much a scan may read and keep.

    Returns:
        The verdict with its findings. Reading failures (``OSError`` from the opener or the
        file object) are ERROR with a ``read_failed`` finding; a bug in a scanner is ERROR
        with ``scanner_failure``. This is CPU-bound, blocking code: run it in a thread.
    """
    log = FindingLog(limits.max_findings)
    scanner = NO_SCANNER
    scanned = True
    try:
        with opener() as raw:
            head = read_upto(raw, 8)
            raw.seek(0)
            scanner = choose_scanner(path, head)
            if scanner == NO_SCANNER:
                return FileVerdict(path, Verdict.UNSCANNED, NO_SCANNER)
            scanned = _run(scanner, raw, max(size, 0), policy, limits, log)
    except OSError as exc:
        log.add(FindingKind.READ_FAILED, f"the file cannot be read: {exc}")
    except Exception as exc:  # a scanner bug fails closed: ERROR, never SAFE, never a crash
        log.add(FindingKind.SCANNER_FAILURE, f"{type(exc).__name__}: {exc}")
    findings = log.result()
    verdict = verdict_from(findings, safe=Verdict.SAFE if scanned else Verdict.UNSCANNED)
    return FileVerdict(path, verdict, scanner, findings)

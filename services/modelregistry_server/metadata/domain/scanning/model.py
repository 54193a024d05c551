"""What a scan reports: verdicts, findings, the limits a scan keeps to, and the version rule."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    """How far a file (or a whole version) can be trusted to load without running code.

    ``SAFE``: the file was read as its format and nothing in it can run code or mislead a
    loader. ``UNSAFE``: something in it can (an import outside the allowlist, a call the
    allowlist does not cover, or a container whose header would make a loader read out of
    bounds); the findings say what. ``UNSCANNED``: no scanner knows this kind of file (a
    ``.txt``, a tokenizer, a Keras or TensorFlow file). ``ERROR``: a scanner knows the kind
    but could not finish (the stream is malformed, a limit was reached, a read failed), so
    the file is neither proven safe nor shown unsafe.
    """

    SAFE = "SAFE"
    UNSAFE = "UNSAFE"
    UNSCANNED = "UNSCANNED"
    ERROR = "ERROR"


class FindingKind(StrEnum):
    """Why a file is not SAFE. The first five make it UNSAFE, the last four make it ERROR."""

    DENIED_IMPORT = "denied_import"  # a pickle imports something on the deny list
    UNKNOWN_IMPORT = "unknown_import"  # ... something neither allowed nor denied
    UNRESOLVED_IMPORT = "unresolved_import"  # ... a name the scanner cannot know statically
    UNSAFE_CALL = "unsafe_call"  # a call or state change on something not imported by name
    INVALID_CONTAINER = "invalid_container"  # safetensors / ONNX / GGUF structure violated
    MALFORMED = "malformed"  # a pickle stream or zip archive that cannot be parsed
    LIMIT_EXCEEDED = "limit_exceeded"  # the file is beyond what a scan reads (ScanLimits)
    READ_FAILED = "read_failed"  # the file could not be read
    SCANNER_FAILURE = "scanner_failure"  # a bug in a scanner: fail closed, never SAFE


UNSAFE_KINDS = frozenset(
    {
        FindingKind.DENIED_IMPORT,
        FindingKind.UNKNOWN_IMPORT,
        FindingKind.UNRESOLVED_IMPORT,
        FindingKind.UNSAFE_CALL,
        FindingKind.INVALID_CONTAINER,
    }
)


@dataclass(frozen=True)
class Finding:
    """One reason for a verdict.

    Attributes:
        kind: what was found.
        detail: a sentence for a person, e.g. ``import os.system`` or ``tensor 'b' bytes
            [8, 24) overlap tensor 'a' [0, 16)``; inside an archive it starts with the
            member's name.
        offset: the byte offset in the file (in the archive member for a member's pickle)
            where it was found, or None when it belongs to no one place.
    """

    kind: FindingKind
    detail: str
    offset: int | None = None


@dataclass(frozen=True)
class FileVerdict:
    """The verdict on one manifest file and the findings behind it.

    ``scanner`` names what read it: ``pickle``, ``zip`` (an archive of pickles, e.g. a torch
    checkpoint), ``safetensors``, ``onnx``, ``gguf``, or ``none`` when nothing did.
    """

    path: str
    verdict: Verdict
    scanner: str
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class ScanLimits:
    """How much a scan reads and keeps, so one hostile file cannot exhaust the server.

    Reaching a limit makes the file ERROR (``limit_exceeded``), never SAFE. The defaults are
    far above what checkpoints need (a torch ``data.pkl`` has thousands of opcodes, not
    millions); 20 million opcodes take about 45 s of one core.
    """

    max_header_bytes: int = 100_000_000  # safetensors' own cap; also GGUF metadata
    max_single_read: int = 64 * 1024 * 1024  # e.g. a zip central directory
    max_pickle_opcodes: int = 20_000_000  # per pickle stream: bounds the scan's CPU time
    max_pickle_stack: int = 250_000  # symbolic stack depth
    max_pickle_memo: int = 250_000  # memo entries tracked (strings and imports)
    max_name_chars: int = 256  # longer strings are never module or attribute names
    max_zip_members: int = 100_000
    max_pickle_members: int = 64  # pickles scanned inside one archive
    max_protobuf_fields: int = 100_000  # top-level fields of an ONNX model
    max_findings: int = 100  # per file; more are summarised in one last finding


DEFAULT_LIMITS = ScanLimits()


def verdict_from(findings: Iterable[Finding], *, safe: Verdict = Verdict.SAFE) -> Verdict:
    """UNSAFE if a finding says so, else ERROR if any finding is left, else ``safe``."""
    kinds = {finding.kind for finding in findings}
    if kinds & UNSAFE_KINDS:
        return Verdict.UNSAFE
    if kinds:
        return Verdict.ERROR
    return safe


def version_verdict(file_verdicts: Iterable[FileVerdict]) -> Verdict:
    """The verdict on a whole version from its files' verdicts.

    UNSAFE if any file is UNSAFE; else ERROR if any file is ERROR; else SAFE if any file was
    scanned (is SAFE); else UNSCANNED (every file is of a kind no scanner knows, or the
    manifest is empty). So a version of ``model.safetensors`` plus ``config.json`` and
    ``tokenizer.json`` is SAFE: the weights were checked and the rest are not loaded as code
    by any loader this library knows. A gate that wants more (e.g. no UNSCANNED file at all)
    reads the per-file verdicts.
    """
    verdicts = {file.verdict for file in file_verdicts}
    for verdict in (Verdict.UNSAFE, Verdict.ERROR, Verdict.SAFE):
        if verdict in verdicts:
            return verdict
    return Verdict.UNSCANNED


class FindingLog:
    """Collects a file's findings: each (kind, detail) once, at most ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[tuple[FindingKind, str]] = set()
        self._findings: list[Finding] = []
        self._dropped = 0
        self._dropped_kinds: set[FindingKind] = set()

    def add(self, kind: FindingKind, detail: str, offset: int | None = None) -> None:
        if (kind, detail) in self._seen:
            return
        if len(self._findings) >= self._limit:
            self._dropped += 1
            self._dropped_kinds.add(kind)
            return
        self._seen.add((kind, detail))
        self._findings.append(Finding(kind, detail, offset))

    def has_unsafe(self) -> bool:
        return any(f.kind in UNSAFE_KINDS for f in self._findings)

    def result(self) -> tuple[Finding, ...]:
        if not self._dropped:
            return tuple(self._findings)
        # Keep the dropped findings' worst kind, so the summary cannot soften the verdict.
        unsafe = self._dropped_kinds & UNSAFE_KINDS
        kind = min(unsafe) if unsafe else min(self._dropped_kinds)
        summary = Finding(kind, f"{self._dropped} more findings not listed")
        return (*self._findings, summary)

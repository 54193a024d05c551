"""Model files checked without being loaded: does a file run code, or lie to its loader?

A model registry hands weights to serving systems that load them, and the most common
formats can execute code on load (a pickle's imports and calls), or attack the loader's
parser (a header that indexes out of bounds). This package reads a file as its format and
never executes any of it: it imports nothing that unpickles, deserialises or compiles
(``pickle``, ``marshal``, ``torch``, ``numpy``...), only the standard library's inert
parsers (``pickletools``' opcode table, ``zipfile``, ``json``, ``struct``).

For the wiring (the commit flow, a rescan job):

    scan_file(path, size, opener, *, policy=DEFAULT_POLICY, limits=DEFAULT_LIMITS)
        -> FileVerdict(path, verdict, scanner, findings)
    version_verdict(file_verdicts) -> Verdict

``scan_file`` picks the scanner from the name and the first bytes (``choose_scanner``):

- ``pickle_scan``: ``.pkl``, ``.pickle``, ``.joblib``; ``.pt``, ``.pth``, ``.ckpt`` that are not
  zips; any file (a ``.bin``) that starts as a pickle. Every import against the allowlist,
  every call and ``BUILD`` against what it applies to (``policy.py`` has the lists and why);
  the legacy ``torch.save`` format (five pickles) too.
- ``zip_scan``: any zip archive (torch checkpoints ``.pt``, ``.pth``, ``.bin``, ``.ckpt``):
  every ``*.pkl`` member as above; an archive without one is UNSCANNED.
- ``safetensors_scan``: ``.safetensors``: the 8-byte length (at most 100,000,000), a UTF-8
  JSON header, dtypes, shapes, and offsets that tile the data exactly.
- ``onnx_scan``: ``.onnx``: the top-level protobuf framing, field types, ir_version, graph.
- ``gguf_scan``: ``.gguf`` or the ``GGUF`` magic: counts, strings, arrays, keys and tensor
  infos all within the file.
- anything else: nothing read beyond 8 bytes; UNSCANNED.

The verdicts (``Verdict``): SAFE (read as its format; nothing runs code or misleads a
loader), UNSAFE (the findings say what would), UNSCANNED (no scanner for this kind of file),
ERROR (a scanner for this kind could not finish: malformed pickle stream or zip, a limit
reached, a read failed). Deliberate choices:

- An import neither allowed nor denied is UNSAFE (``unknown_import``): the scanner cannot
  tell a harmless class from a harmful one by its name, so only the allowlist is trusted.
- A structurally invalid safetensors, ONNX or GGUF container is UNSAFE
  (``invalid_container``), not ERROR: those formats cannot run code, so their danger *is* a
  header that lies to the parser. A pickle that does not parse is ERROR instead: its danger
  is code, and everything before the fault was checked (an import found there makes it
  UNSAFE).
- A version is UNSAFE if any file is, else ERROR if any file is, else SAFE if any file was
  scanned, else UNSCANNED (``version_verdict``).

Reads are bounded: a scan reads headers, directories and pickles, seeks over tensor data and
byte arguments, and keeps to ``ScanLimits`` (reaching one is ERROR). Bump
``SCAN_POLICY_VERSION`` when a check or the allowlist changes, so stored verdicts can be
recomputed.
"""

from modelregistry_server.metadata.domain.scanning.model import (
    DEFAULT_LIMITS,
    FileVerdict,
    Finding,
    FindingKind,
    ScanLimits,
    Verdict,
    version_verdict,
)
from modelregistry_server.metadata.domain.scanning.policy import (
    DEFAULT_POLICY,
    ImportClass,
    ImportPolicy,
)
from modelregistry_server.metadata.domain.scanning.scan import choose_scanner, scan_file

SCAN_POLICY_VERSION = 1

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_POLICY",
    "SCAN_POLICY_VERSION",
    "FileVerdict",
    "Finding",
    "FindingKind",
    "ImportClass",
    "ImportPolicy",
    "ScanLimits",
    "Verdict",
    "choose_scanner",
    "scan_file",
    "version_verdict",
]

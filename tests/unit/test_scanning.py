"""Model file scanning: pickles and torch archives judged without ever being loaded.

Every file is built here byte by byte (``scanning_files``); none is unpickled. The
containers (safetensors, ONNX, GGUF) and the bounds on reads are in
``test_scanning_containers.py``.
"""

from __future__ import annotations

import ast
import builtins
import io
import os
import pickle
import posix
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, cast

import pytest

from modelregistry_server.metadata.domain.scanning import (
    DEFAULT_POLICY,
    FileVerdict,
    FindingKind,
    ImportClass,
    ScanLimits,
    Verdict,
    choose_scanner,
    scan_file,
    version_verdict,
)
from tests.unit.scanning_files import (
    BUILD,
    EMPTY_DICT,
    EMPTY_LIST,
    EMPTY_TUPLE,
    PROTO2,
    PROTO4,
    REDUCE,
    STACK_GLOBAL,
    STOP,
    binget,
    binunicode,
    eval_pickle,
    global_op,
    legacy_torch_file,
    memo_hidden_system_pickle,
    os_system_pickle,
    scan_bytes,
    short_str,
    stack_global,
    torch_state_dict_pickle,
    torch_zip,
)

PACKAGE = (
    Path(__file__).resolve().parents[2] / "services/modelregistry_server/metadata/domain/scanning"
)


def kinds(verdict: FileVerdict) -> set[FindingKind]:
    return {finding.kind for finding in verdict.findings}


def details(verdict: FileVerdict) -> str:
    return " | ".join(finding.detail for finding in verdict.findings)


# ------------------------------------------------------------------ hostile pickles
@pytest.mark.parametrize(
    ("build", "imported"),
    [
        (os_system_pickle, "import os.system"),
        (eval_pickle, "import builtins.eval"),
        (memo_hidden_system_pickle, "import posix.system"),
    ],
)
def test_a_pickle_that_would_run_code_is_unsafe(build: Any, imported: str) -> None:
    verdict = scan_bytes("model.pkl", build())
    assert verdict.verdict is Verdict.UNSAFE
    assert verdict.scanner == "pickle"
    assert kinds(verdict) == {FindingKind.DENIED_IMPORT}
    assert verdict.findings[0].detail == imported
    assert verdict.findings[0].offset is not None


def test_scanning_runs_nothing_the_pickles_ask_for(monkeypatch: pytest.MonkeyPatch) -> None:
    def called(*args: object, **kwargs: object) -> NoReturn:
        pytest.fail(f"the scan ran code: {args}")

    for owner, name in [(os, "system"), (posix, "system"), (builtins, "eval")]:
        monkeypatch.setattr(owner, name, called)
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, called)
    files = [os_system_pickle(), eval_pickle(), memo_hidden_system_pickle()]
    for data in [*files, torch_zip(os_system_pickle()), legacy_torch_file(eval_pickle())]:
        assert scan_bytes("model.pt", data).verdict is Verdict.UNSAFE


def test_the_package_imports_no_loader_and_calls_no_eval() -> None:
    inert = {"__future__", "_compat_pickle", "collections.abc", "dataclasses", "enum", "io"}
    inert |= {"json", "pathlib", "pickletools", "struct", "typing", "zipfile"}
    found: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Name):
                assert node.id not in {"eval", "exec", "compile", "__import__"}, path
    assert {m for m in found if not m.startswith("modelregistry_server.")} <= inert


def test_an_import_neither_allowed_nor_denied_is_unsafe_as_unknown() -> None:
    data = PROTO2 + global_op("sklearn.linear_model", "LogisticRegression") + STOP
    verdict = scan_bytes("model.joblib", data)
    assert verdict.verdict is Verdict.UNSAFE
    assert kinds(verdict) == {FindingKind.UNKNOWN_IMPORT}
    allowed = DEFAULT_POLICY.allowing([("sklearn.linear_model", "LogisticRegression")])
    assert scan_bytes("model.joblib", data, policy=allowed).verdict is Verdict.SAFE


def test_the_deny_list_wins_over_an_extended_allowlist() -> None:
    policy = DEFAULT_POLICY.allowing([("os", "system"), ("os.path", "join")])
    assert policy.classify("os", "system") is ImportClass.DENIED
    assert policy.classify("os.path", "join") is ImportClass.DENIED  # submodules of os too
    assert policy.classify("__builtin__", "eval") is ImportClass.DENIED  # Python 2 name
    assert policy.classify("builtins", "eval.__call__") is ImportClass.DENIED
    assert policy.classify("__builtin__", "set") is ImportClass.ALLOWED
    assert policy.classify("builtins", "dict.fromkeys") is ImportClass.UNKNOWN


@pytest.mark.parametrize(
    ("data", "kind", "words"),
    [
        # A call of the result of a call, not of an import.
        (
            PROTO2
            + global_op("collections", "OrderedDict")
            + EMPTY_TUPLE
            + REDUCE
            + EMPTY_TUPLE
            + REDUCE
            + STOP,
            FindingKind.UNSAFE_CALL,
            "REDUCE calls an object that was not imported",
        ),
        # BUILD on the class itself: setattr on an allowed class.
        (
            PROTO2 + global_op("collections", "OrderedDict") + EMPTY_DICT + BUILD + STOP,
            FindingKind.UNSAFE_CALL,
            "BUILD changes the imported collections.OrderedDict",
        ),
        # The copyreg extension registry names imports by number.
        (PROTO2 + b"\x82\x01" + STOP, FindingKind.UNRESOLVED_IMPORT, "extension code 1"),
        # STACK_GLOBAL of something that is not a string written in the stream.
        (
            PROTO4 + EMPTY_LIST + short_str("system") + STACK_GLOBAL + STOP,
            FindingKind.UNRESOLVED_IMPORT,
            "not a string",
        ),
        (
            PROTO4 + binunicode("m" * 300) + binunicode("x") + STACK_GLOBAL + STOP,
            FindingKind.UNRESOLVED_IMPORT,
            "not a string",
        ),
    ],
)
def test_calls_and_imports_the_scanner_cannot_vouch_for_are_unsafe(
    data: bytes, kind: FindingKind, words: str
) -> None:
    verdict = scan_bytes("model.pkl", data)
    assert verdict.verdict is Verdict.UNSAFE
    assert kind in kinds(verdict)
    assert words in details(verdict)


# ------------------------------------------------------------------ benign pickles
@pytest.mark.parametrize("protocol", range(6))
def test_a_pickle_of_plain_data_is_safe(protocol: int) -> None:
    data = {"weights": [[0.5, 1.5], [2.5, 3.5]], "names": ("a", "b"), "blob": b"\x00" * 300}
    verdict = scan_bytes("model.pkl", pickle.dumps(data, protocol=protocol))
    assert (verdict.verdict, verdict.findings) == (Verdict.SAFE, ())


@pytest.mark.parametrize("importer", [global_op, stack_global])
def test_a_torch_state_dict_pickle_is_safe(importer: Any) -> None:
    verdict = scan_bytes("model.pkl", torch_state_dict_pickle(importer))
    assert (verdict.verdict, verdict.findings) == (Verdict.SAFE, ())


# ------------------------------------------------------------------ malformed pickles
@pytest.mark.parametrize(
    ("data", "words"),
    [
        (PROTO2 + b"K", "1 bytes needed"),  # ends inside an argument
        (PROTO2 + b"\xff" + STOP, "unknown opcode 0xff"),
        (PROTO2 + REDUCE + STOP, "REDUCE on an empty stack"),
        (PROTO2 + binget(7) + STOP, "never set"),
        (b"\x80\x09" + STOP, "protocol 9"),
        (PROTO2 + EMPTY_DICT, "0 left"),  # no STOP
    ],
)
def test_a_malformed_pickle_is_an_error_with_a_finding(data: bytes, words: str) -> None:
    verdict = scan_bytes("model.pkl", data)
    assert verdict.verdict is Verdict.ERROR
    assert kinds(verdict) == {FindingKind.MALFORMED}
    assert words in details(verdict)


def test_an_import_before_the_fault_still_makes_it_unsafe() -> None:
    verdict = scan_bytes("model.pkl", os_system_pickle()[:-3])
    assert verdict.verdict is Verdict.UNSAFE
    assert kinds(verdict) == {FindingKind.DENIED_IMPORT, FindingKind.MALFORMED}


def test_a_second_pickle_after_the_first_is_scanned_too() -> None:
    benign = pickle.dumps([1, 2, 3], protocol=2)
    assert scan_bytes("model.pkl", benign + os_system_pickle()).verdict is Verdict.UNSAFE
    # Bytes after the pickle that are no pickle are what a single load never reads.
    assert scan_bytes("model.pkl", benign + b"\xff\xfe junk").verdict is Verdict.SAFE


# ------------------------------------------------------------------ torch archives
@pytest.mark.parametrize("name", ["model.pt", "pytorch_model.bin", "model.ckpt", "weights"])
@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_torch_archive_is_judged_by_its_data_pkl(name: str, compress: int) -> None:
    benign = scan_bytes(name, torch_zip(torch_state_dict_pickle(stack_global), compress=compress))
    assert (benign.verdict, benign.scanner, benign.findings) == (Verdict.SAFE, "zip", ())
    hostile = scan_bytes(name, torch_zip(os_system_pickle(), compress=compress))
    assert hostile.verdict is Verdict.UNSAFE
    assert hostile.findings[0].detail == "archive/data.pkl: import os.system"


def test_every_pickle_of_the_archive_is_scanned_duplicates_included() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        archive.writestr("archive/data.pkl", torch_state_dict_pickle())
        archive.writestr("archive/data.pkl", eval_pickle())
    assert scan_bytes("model.pt", buffer.getvalue()).verdict is Verdict.UNSAFE


def test_an_archive_without_pickles_is_unscanned_and_a_broken_one_an_error() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.npy", b"\x93NUMPY")
    assert scan_bytes("arrays.npz", buffer.getvalue()).verdict is Verdict.UNSCANNED
    broken = scan_bytes("model.pt", b"PK\x03\x04" + b"\0" * 100)
    assert (broken.verdict, kinds(broken)) == (Verdict.ERROR, {FindingKind.MALFORMED})


@pytest.mark.parametrize("name", ["model.pt", "pytorch_model.bin"])
def test_a_legacy_torch_file_is_read_as_its_five_pickles(name: str) -> None:
    assert scan_bytes(name, legacy_torch_file(torch_state_dict_pickle())).verdict is Verdict.SAFE
    hostile = scan_bytes(name, legacy_torch_file(os_system_pickle()))
    assert hostile.verdict is Verdict.UNSAFE


# ------------------------------------------------------------------ choosing, limits, failures
@pytest.mark.parametrize(
    ("path", "head", "scanner"),
    [
        ("m.safetensors", b"\x10\0\0\0", "safetensors"),
        ("m.onnx", b"\x08\x08", "onnx"),
        ("m.gguf", b"GGUF", "gguf"),
        ("weights.q4", b"GGUF\x03\0\0\0", "gguf"),
        ("m.PT", b"\x80\x02", "pickle"),
        ("m.pth", b"(dp0\n", "pickle"),
        ("m.bin", b"\x80\x02\x8a", "pickle"),
        ("m.bin", b"\x00\x01", "none"),
        ("m.bin", b"PK\x03\x04", "zip"),
        ("README.txt", b"hello", "none"),
        ("renamed.txt", b"\x80\x04\x95", "pickle"),
    ],
)
def test_the_scanner_is_chosen_by_name_and_magic(path: str, head: bytes, scanner: str) -> None:
    assert choose_scanner(path, head) == scanner


def test_an_unknown_kind_of_file_is_unscanned() -> None:
    verdict = scan_bytes("notes.txt", b"just some text\n")
    assert verdict == FileVerdict("notes.txt", Verdict.UNSCANNED, "none", ())


def test_a_limit_reached_is_an_error() -> None:
    limits = ScanLimits(max_pickle_opcodes=5)
    verdict = scan_bytes("model.pkl", pickle.dumps(list(range(100)), protocol=2), limits=limits)
    assert (verdict.verdict, kinds(verdict)) == (Verdict.ERROR, {FindingKind.LIMIT_EXCEEDED})


def test_findings_are_capped_without_softening_the_verdict() -> None:
    imports = b"".join(global_op("pkg", f"name{i}") + b"0" for i in range(10))
    verdict = scan_bytes(
        "model.pkl", PROTO2 + imports + b"N" + STOP, limits=ScanLimits(max_findings=3)
    )
    assert verdict.verdict is Verdict.UNSAFE
    assert len(verdict.findings) == 4
    assert verdict.findings[-1].detail == "7 more findings not listed"


def test_a_file_that_cannot_be_read_is_an_error() -> None:
    def opener() -> BinaryIO:
        raise OSError("connection reset")

    verdict = scan_file("model.safetensors", 100, opener)
    assert (verdict.verdict, kinds(verdict)) == (Verdict.ERROR, {FindingKind.READ_FAILED})

    class Broken(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            raise RuntimeError("bug")

    verdict = scan_file("model.pkl", 100, lambda: cast(BinaryIO, Broken()))
    assert (verdict.verdict, kinds(verdict)) == (Verdict.ERROR, {FindingKind.SCANNER_FAILURE})


# ------------------------------------------------------------------ the version's verdict
@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], Verdict.UNSCANNED),
        ([Verdict.UNSCANNED, Verdict.UNSCANNED], Verdict.UNSCANNED),
        ([Verdict.SAFE, Verdict.UNSCANNED], Verdict.SAFE),
        ([Verdict.SAFE, Verdict.ERROR, Verdict.UNSCANNED], Verdict.ERROR),
        ([Verdict.ERROR, Verdict.UNSAFE, Verdict.SAFE], Verdict.UNSAFE),
    ],
)
def test_a_versions_verdict_is_its_worst_file(verdicts: list[Verdict], expected: Verdict) -> None:
    files = [FileVerdict(f"f{i}", v, "none") for i, v in enumerate(verdicts)]
    assert version_verdict(files) is expected

"""Model file scanning: safetensors, ONNX and GGUF headers, and reads that stay bounded.

A container that breaks its format is UNSAFE with an ``invalid_container`` finding (the
module docstring of ``metadata/domain/scanning`` says why). Files are built byte by byte in
``scanning_files``; the big ones are sparse temp files, read through a counting wrapper.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest

from modelregistry_server.metadata.domain.scanning import (
    FileVerdict,
    FindingKind,
    ScanLimits,
    Verdict,
    scan_file,
)
from tests.unit.scanning_files import (
    PROTO4,
    STOP,
    gguf_file,
    gguf_string,
    gguf_tensor_info,
    onnx_model,
    os_system_pickle,
    proto_field,
    safetensors_file,
    scan_bytes,
    scan_counted,
    sparse_file,
    tensor,
    torch_state_dict_pickle,
    torch_zip,
    varint,
)

MB = 1024 * 1024


def assert_invalid(verdict: FileVerdict, words: str) -> None:
    assert verdict.verdict is Verdict.UNSAFE, verdict
    assert {f.kind for f in verdict.findings} == {FindingKind.INVALID_CONTAINER}
    assert words in " | ".join(f.detail for f in verdict.findings)


# ------------------------------------------------------------------ safetensors
VALID_TENSORS = {"a": tensor("F32", [2, 2], 0, 16), "b": tensor("I8", [8], 16, 24)}


def test_a_valid_safetensors_is_safe() -> None:
    data = safetensors_file(VALID_TENSORS, 24, metadata={"format": "pt"})
    verdict = scan_bytes("model.safetensors", data)
    assert verdict == FileVerdict("model.safetensors", Verdict.SAFE, "safetensors", ())
    empty = scan_bytes("empty.safetensors", safetensors_file({}, 0))
    assert empty.verdict is Verdict.SAFE
    sub_byte = {"q": tensor("F4", [2, 3], 0, 3), "z": tensor("BF16", [0, 5], 3, 3)}
    assert scan_bytes("m.safetensors", safetensors_file(sub_byte, 3)).verdict is Verdict.SAFE


def test_a_truncated_safetensors_is_unsafe() -> None:
    data = safetensors_file(VALID_TENSORS, 24)
    assert_invalid(scan_bytes("m.safetensors", data[:-8]), "'b' bytes [16, 24) end past the")
    assert_invalid(scan_bytes("m.safetensors", data[:20]), "runs past the end of the 20-byte")
    assert_invalid(scan_bytes("m.safetensors", data[:5]), "no 8-byte header length")


def test_a_safetensors_with_overlapping_ranges_is_unsafe() -> None:
    tensors = {"a": tensor("F32", [4], 0, 16), "b": tensor("F32", [4], 8, 24)}
    verdict = scan_bytes("m.safetensors", safetensors_file(tensors, 24))
    assert_invalid(verdict, "tensor 'b' bytes [8, 24) overlap tensor 'a'")


def test_a_safetensors_with_a_huge_header_length_is_unsafe_without_reading_it() -> None:
    data = struct.pack("<Q", 2**40) + b"{}" + b"\0" * 64
    assert_invalid(scan_bytes("m.safetensors", data), "over the format's 100000000")


@pytest.mark.parametrize(
    ("tensors", "data_size", "words"),
    [
        ({"a": tensor("F32", [4], 0, 16), "b": tensor("F32", [1], 20, 24)}, 24, "[16, 20)"),
        (VALID_TENSORS, 32, "bytes [24, 32) after the last tensor"),
        ({"a": tensor("F32", [2, 2], 0, 12)}, 12, "is 16 bytes, data_offsets [0, 12) hold 12"),
        ({"a": tensor("F128", [1], 0, 16)}, 16, "unknown dtype 'F128'"),
        ({"a": tensor("F32", [-1], 0, 0)}, 0, "shape is not a list of non-negative"),
        ({"a": tensor("F32", [True], 0, 4)}, 4, "shape is not a list of non-negative"),
        ({"a": tensor("U8", [1], 4, 0)}, 4, "end before they begin"),
        ({"a": tensor("U8", [2**40, 2**40], 0, 1)}, 1, "overflows"),
        ({"a": tensor("F4", [3], 0, 1)}, 1, "not a whole number of bytes"),
        ({"a": {"dtype": "F32", "shape": [1]}}, 4, "data_offsets is not two"),
    ],
)
def test_a_safetensors_header_that_lies_is_unsafe(
    tensors: dict[str, object], data_size: int, words: str
) -> None:
    assert_invalid(scan_bytes("m.safetensors", safetensors_file(tensors, data_size)), words)


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (b'{"a": {}, "a": {}}', "key 'a' appears twice"),
        (b"\xff{}", "not UTF-8"),
        (b"[1, 2]", "does not start with '{'"),
        (b"{nope", "not JSON"),
        (b'{"x": NaN}', "NaN is not JSON"),
        (b'{"__metadata__": {"k": 1}}', "__metadata__ is not an object of strings"),
    ],
)
def test_a_safetensors_header_that_is_not_the_format_is_unsafe(header: bytes, words: str) -> None:
    data = struct.pack("<Q", len(header)) + header
    assert_invalid(scan_bytes("m.safetensors", data), words)


# ------------------------------------------------------------------ ONNX
def test_a_valid_onnx_model_is_safe() -> None:
    verdict = scan_bytes("model.onnx", onnx_model())
    assert verdict == FileVerdict("model.onnx", Verdict.SAFE, "onnx", ())
    with_unknown_field = onnx_model() + proto_field(99, 0, varint(1))
    assert scan_bytes("model.onnx", with_unknown_field).verdict is Verdict.SAFE


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (onnx_model()[:-3], "runs past the end"),
        (onnx_model() + varint(7 << 3 | 3), "wire type 3"),
        (proto_field(1, 0, varint(8)), "no graph"),
        (proto_field(7, 2, b"g"), "no ir_version"),
        (proto_field(1, 2, b"8") + proto_field(7, 2, b""), "field 1 has wire type 2, not 0"),
        (b"\x00\x01", "field number 0"),
        (b"\x08" + b"\xff" * 11, "varint longer than 10 bytes"),
        (b"", "no ir_version"),
    ],
)
def test_a_broken_onnx_model_is_unsafe(data: bytes, words: str) -> None:
    assert_invalid(scan_bytes("model.onnx", data), words)


# ------------------------------------------------------------------ GGUF
def test_a_valid_gguf_is_safe() -> None:
    verdict = scan_bytes("model.gguf", gguf_file())
    assert verdict == FileVerdict("model.gguf", Verdict.SAFE, "gguf", ())
    assert scan_bytes("model.bin", gguf_file()).scanner == "gguf"  # by its magic


def _kv_u32(key: bytes, value: int) -> bytes:
    return gguf_string(key) + struct.pack("<II", 4, value)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"GGML" + gguf_file()[4:], "no GGUF magic"),
        (gguf_file(version=7), "GGUF version 7"),
        (b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0), "cannot fit"),
        (
            gguf_file(kvs=gguf_string(b"k") + struct.pack("<IQ", 8, 2**50), kv_count=1),
            "string of 1125899906842624 bytes runs past",
        ),
        (
            gguf_file(kvs=gguf_string(b"k") + struct.pack("<IIQ", 9, 6, 2**60), kv_count=1),
            "array of 1152921504606846976 elements runs past",
        ),
        (gguf_file(kvs=_kv_u32(b"k", 1) * 2, kv_count=2), "key b'k' appears twice"),
        (gguf_file(kvs=_kv_u32(b"general.alignment", 24), kv_count=1), "no power of two"),
        (gguf_file(kvs=gguf_string(b"k") + struct.pack("<I", 99), kv_count=1), "value type 99"),
        (gguf_file(infos=[gguf_tensor_info(b"t", [1] * 5, 0, 0)]), "has 5 dimensions"),
        (gguf_file(infos=[gguf_tensor_info(b"t" * 64, [1], 0, 0)]), "string of 64 bytes"),
        (gguf_file(infos=[gguf_tensor_info(b"t", [2**32, 2**32], 0, 0)]), "elements"),
        (gguf_file(infos=[gguf_tensor_info(b"t", [1], 200, 0)]), "unknown ggml type 200"),
        (gguf_file(infos=[gguf_tensor_info(b"t", [1], 0, 8)]), "offset 8 is not aligned"),
        (gguf_file(infos=[gguf_tensor_info(b"t", [8], 0, 4096)]), "starts past the end"),
        (gguf_file(infos=[gguf_tensor_info(b"t", [1], 0, 0)] * 2), "tensor b't' appears twice"),
    ],
)
def test_a_broken_gguf_is_unsafe(data: bytes, words: str) -> None:
    assert_invalid(scan_bytes("model.gguf", data), words)


# ------------------------------------------------------------------ bounded reads
def test_a_200_mb_safetensors_is_judged_from_its_header(tmp_path: Path) -> None:
    size = 200 * MB
    data_size = size - 8 - 80
    header = json.dumps({"w": tensor("U8", [data_size], 0, data_size)}).encode()
    header += b" " * (80 - len(header))
    path = sparse_file(tmp_path / "big.safetensors", size, {0: struct.pack("<Q", 80) + header})
    verdict, counted = scan_counted(path, "big.safetensors")
    assert verdict.verdict is Verdict.SAFE
    assert counted.bytes_read < MB
    assert counted.reads <= 3


def test_a_torch_archive_is_judged_without_reading_its_storages(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(torch_zip(torch_state_dict_pickle(), storage=16 * MB))
    verdict, counted = scan_counted(path, "model.pt")
    assert verdict.verdict is Verdict.SAFE
    assert counted.bytes_read < MB
    hostile = tmp_path / "hostile.pt"
    hostile.write_bytes(torch_zip(os_system_pickle(), storage=16 * MB))
    verdict, counted = scan_counted(hostile, "hostile.pt")
    assert (verdict.verdict, counted.bytes_read < MB) == (Verdict.UNSAFE, True)


def test_a_pickle_with_a_huge_bytes_argument_is_skipped_over(tmp_path: Path) -> None:
    payload = 150 * MB
    head = PROTO4 + b"\x8e" + struct.pack("<Q", payload)  # BINBYTES8 of 150 MB
    size = len(head) + payload + 1
    path = sparse_file(tmp_path / "blob.pkl", size, {0: head, size - 1: STOP})
    verdict, counted = scan_counted(path, "blob.pkl")
    assert verdict.verdict is Verdict.SAFE
    assert counted.bytes_read < MB


def test_a_gguf_and_an_onnx_model_are_judged_from_their_headers(tmp_path: Path) -> None:
    head = gguf_file(infos=[gguf_tensor_info(b"w", [100 * MB], 24, 0)], data=b"")
    path = sparse_file(tmp_path / "big.gguf", len(head) + 100 * MB, {0: head})
    verdict, counted = scan_counted(path, "big.gguf")
    assert (verdict.verdict, counted.bytes_read < MB) == (Verdict.SAFE, True)
    graph = 100 * MB
    head = proto_field(1, 0, varint(8)) + varint(7 << 3 | 2) + varint(graph)
    path = sparse_file(tmp_path / "big.onnx", len(head) + graph, {0: head})
    verdict, counted = scan_counted(path, "big.onnx")
    assert (verdict.verdict, counted.bytes_read < MB) == (Verdict.SAFE, True)


def test_a_zip_with_a_huge_central_directory_is_an_error_not_a_big_read(tmp_path: Path) -> None:
    path = tmp_path / "many.pt"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(3000):
            archive.writestr(f"archive/data/{i}", b"")
    limits = ScanLimits(max_single_read=64 * 1024)
    verdict = scan_file("many.pt", path.stat().st_size, lambda: path.open("rb"), limits=limits)
    assert verdict.verdict is Verdict.ERROR
    assert {f.kind for f in verdict.findings} == {FindingKind.LIMIT_EXCEEDED}

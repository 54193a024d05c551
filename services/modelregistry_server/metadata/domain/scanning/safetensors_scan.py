"""safetensors: the header checked against the format, the tensor bytes never read.

The format: 8 bytes of little-endian header length N (at most 100,000,000), N bytes of a
UTF-8 JSON object, then the data buffer. The object maps tensor names to ``dtype``,
``shape`` and ``data_offsets`` ``[begin, end)`` into the buffer, plus an optional
``__metadata__`` of string to string. The reference loader requires the ranges, sorted,
to tile the whole buffer: no overlap, no hole, nothing past its end, and each range exactly
``prod(shape)`` elements of its dtype.

A file that breaks any of that is UNSAFE (``invalid_container``), not ERROR: safetensors
cannot run code, but a header is what a loader trusts to index memory, and a lying one
(overlapping or out-of-bounds ranges, a size that overflows) is how a crafted file attacks
a loader that checks less than the reference one. Duplicate JSON keys are refused for the
same reason: two parsers may keep different ones. A scan reads 8 + N bytes.
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

from modelregistry_server.metadata.domain.scanning.model import FindingKind, FindingLog, ScanLimits
from modelregistry_server.metadata.domain.scanning.reader import read_upto

FORMAT_MAX_HEADER = 100_000_000
MAX_SIZE = 2**64  # the reference loader's usize: larger element or byte counts overflow
DTYPE_BITS = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}


class _Invalid(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Invalid(f"key {key!r} appears twice in one JSON object")
        result[key] = value
    return result


def _no_constant(name: str) -> None:
    raise _Invalid(f"{name} is not JSON")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_SIZE


def _tensor_range(name: str, info: object) -> tuple[int, int]:
    """The tensor's [begin, end) after checking its entry, or ``_Invalid``."""
    if not isinstance(info, dict):
        raise _Invalid(f"tensor {name!r}: entry is not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _Invalid(f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise _Invalid(f"tensor {name!r}: shape is not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
        raise _Invalid(f"tensor {name!r}: data_offsets is not two non-negative integers")
    begin, end = offsets
    if end < begin:
        raise _Invalid(f"tensor {name!r}: data_offsets [{begin}, {end}) end before they begin")
    bits = DTYPE_BITS[dtype]
    for dim in shape:
        bits *= dim
        if bits >= 8 * MAX_SIZE:
            raise _Invalid(f"tensor {name!r}: shape {shape} overflows")
    if bits % 8:
        raise _Invalid(f"tensor {name!r}: {dtype} shape {shape} is not a whole number of bytes")
    if end - begin != bits // 8:
        raise _Invalid(
            f"tensor {name!r}: {dtype} shape {shape} is {bits // 8} bytes, "
            f"data_offsets [{begin}, {end}) hold {end - begin}"
        )
    return begin, end


def _parse_header(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Invalid(f"header is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    if not text.startswith("{"):
        raise _Invalid("header does not start with '{'")
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise _Invalid(f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise _Invalid("header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(v, str) for v in metadata.values())  # keys are str in JSON
    ):
        raise _Invalid("__metadata__ is not an object of strings")
    return header


def _check_tiling(ranges: list[tuple[int, int, str]], data_size: int, log: FindingLog) -> None:
    """The sorted ranges must cover [0, data_size) exactly once."""
    covered, last = 0, ""
    for begin, end, name in sorted(ranges):
        if begin < covered:
            detail = f"tensor {name!r} bytes [{begin}, {end}) overlap tensor {last!r}"
            log.add(FindingKind.INVALID_CONTAINER, detail)
        elif begin > covered:
            detail = f"data bytes [{covered}, {begin}) belong to no tensor"
            log.add(FindingKind.INVALID_CONTAINER, detail)
        if end > data_size:
            detail = f"tensor {name!r} bytes [{begin}, {end}) end past the {data_size}-byte data"
            log.add(FindingKind.INVALID_CONTAINER, detail)
        if end > covered:
            covered, last = end, name
    if covered < data_size:
        detail = f"data bytes [{covered}, {data_size}) after the last tensor belong to none"
        log.add(FindingKind.INVALID_CONTAINER, detail)


def scan_safetensors(raw: BinaryIO, size: int, limits: ScanLimits, log: FindingLog) -> None:
    """Check the safetensors file in ``raw`` (``size`` bytes), adding findings to ``log``."""
    invalid = FindingKind.INVALID_CONTAINER
    prefix = read_upto(raw, 8)
    if len(prefix) < 8:
        log.add(invalid, f"file of {len(prefix)} bytes has no 8-byte header length")
        return
    (length,) = struct.unpack("<Q", prefix)
    if length > FORMAT_MAX_HEADER:
        log.add(invalid, f"header length {length} is over the format's {FORMAT_MAX_HEADER}", 0)
        return
    if length > size - 8:
        detail = f"header length {length} runs past the end of the {size}-byte file"
        log.add(invalid, detail, 0)
        return
    if length > limits.max_header_bytes:
        log.add(FindingKind.LIMIT_EXCEEDED, f"header of {length} bytes", 0)
        return
    data = read_upto(raw, length)
    if len(data) < length:
        log.add(invalid, f"file ends at byte {8 + len(data)}, inside the header", 8 + len(data))
        return
    try:
        header = _parse_header(data)
    except _Invalid as exc:
        log.add(invalid, str(exc), 8)
        return
    ranges: list[tuple[int, int, str]] = []
    for name, info in header.items():
        try:
            ranges.append((*_tensor_range(name, info), name))
        except _Invalid as exc:
            log.add(invalid, str(exc), 8)
    _check_tiling(ranges, size - 8 - length, log)

"""GGUF (llama.cpp): the header, every key-value and every tensor description, framed.

Layout: ``GGUF``, a uint32 version (1 to 3), the tensor count and key-value count (uint32 in
version 1, uint64 after), the key-values (a string key, a uint32 type, a value; arrays carry
an element type and count), the tensor infos (name, dimension count, dimensions, ggml type,
data offset), padding to ``general.alignment`` (32 by default), then the tensor data.

Checked, because crafted values here are how GGUF loaders have been attacked (counts and
lengths that overflow an allocation): the counts fit the file; every string and array stays
inside the file; value types are known; keys and tensor names are unique; a tensor name is
under 64 bytes, has at most 4 dimensions whose element count fits an int64, a known ggml
type id and an offset aligned and inside the data; ``general.alignment`` is a non-zero power
of two. A violation is UNSAFE (``invalid_container``). Not checked: each tensor's byte size
(that needs every quantisation's block size) and overlaps between tensors. A scan reads the
metadata (bounded by ``ScanLimits.max_header_bytes``), seeks over arrays of numbers, and
never reads tensor data.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from modelregistry_server.metadata.domain.scanning.model import FindingKind, FindingLog, ScanLimits
from modelregistry_server.metadata.domain.scanning.reader import (
    BlockReader,
    LimitReached,
    Malformed,
)

MAGIC = b"GGUF"
VERSIONS = (1, 2, 3)
UINT32, STRING, ARRAY = 4, 8, 9
# GGUF value type -> size in bytes, for the fixed-size ones.
FIXED_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NAME_BYTES = 63  # GGML_MAX_NAME is 64 with the terminating NUL
MAX_GGML_TYPE = 64  # type ids in use are below 40; leave room for new ones
MAX_KEY_BYTES = 65_535
MAX_ARRAY_NESTING = 4
DEFAULT_ALIGNMENT = 32


class _Gguf:
    def __init__(self, reader: BlockReader, version: int, limits: ScanLimits) -> None:
        self.reader = reader
        self.wide = version > 1  # counts and lengths are uint64 from version 2 on
        self.limits = limits

    def uint(self, wide: bool | None = None) -> int:
        if self.wide if wide is None else wide:
            return int(struct.unpack("<Q", self.reader.read(8))[0])
        return int(struct.unpack("<I", self.reader.read(4))[0])

    def check_budget(self) -> None:
        if self.reader.tell() > self.limits.max_header_bytes:
            raise LimitReached(f"metadata over {self.limits.max_header_bytes} bytes")

    def string(self, keep: int = 0) -> bytes:
        """Read a string; return it if at most ``keep`` bytes (else ``Malformed``), or skip."""
        offset = self.reader.tell()
        length = self.uint()
        if length > self.reader.remaining:
            raise Malformed(f"string of {length} bytes runs past the end of the file", offset)
        if keep:
            if length > keep:
                raise Malformed(f"string of {length} bytes, over {keep}", offset)
            return self.reader.read(length)
        self.reader.skip(length)
        return b""

    def value(self, value_type: int, depth: int = 0) -> None:
        offset = self.reader.tell()
        if value_type in FIXED_SIZES:
            self.reader.skip(FIXED_SIZES[value_type])
        elif value_type == STRING:
            self.string()
        elif value_type == ARRAY:
            element_type, count = self.uint(wide=False), self.uint()
            if element_type in FIXED_SIZES:
                if count * FIXED_SIZES[element_type] > self.reader.remaining:
                    raise Malformed(f"array of {count} elements runs past the end", offset)
                self.reader.skip(count * FIXED_SIZES[element_type])
                return
            if element_type not in (STRING, ARRAY) or depth >= MAX_ARRAY_NESTING:
                raise Malformed(f"array of element type {element_type}", offset)
            if count * 4 > self.reader.remaining:  # each element takes 4 bytes at least
                raise Malformed(f"array of {count} elements runs past the end", offset)
            for _ in range(count):
                self.value(element_type, depth + 1)
                self.check_budget()
        else:
            raise Malformed(f"unknown value type {value_type}", offset)

    def key_values(self, count: int) -> int:
        """Walk the key-values; return the alignment they set."""
        keys: set[bytes] = set()
        alignment = DEFAULT_ALIGNMENT
        for _ in range(count):
            offset = self.reader.tell()
            key = self.string(keep=MAX_KEY_BYTES)
            if key in keys:
                raise Malformed(f"key {key!r} appears twice", offset)
            keys.add(key)
            value_type = self.uint(wide=False)
            if key == b"general.alignment":
                if value_type != UINT32:
                    raise Malformed("general.alignment is not a uint32", offset)
                alignment = self.uint(wide=False)
                if alignment <= 0 or alignment & (alignment - 1):
                    raise Malformed(f"general.alignment {alignment} is no power of two", offset)
            else:
                self.value(value_type)
            self.check_budget()
        return alignment

    def tensor_infos(self, count: int, alignment: int) -> list[tuple[bytes, int]]:
        """Walk the tensor infos; return (name, data offset) for tensors with elements."""
        names: set[bytes] = set()
        offsets: list[tuple[bytes, int]] = []
        for _ in range(count):
            offset = self.reader.tell()
            name = self.string(keep=MAX_NAME_BYTES)
            if name in names:
                raise Malformed(f"tensor {name!r} appears twice", offset)
            names.add(name)
            n_dims = self.uint(wide=False)
            if n_dims > MAX_DIMS:
                raise Malformed(f"tensor {name!r} has {n_dims} dimensions", offset)
            elements = 1
            for _ in range(n_dims):
                elements *= self.uint()
            if elements >= 2**63:
                raise Malformed(f"tensor {name!r} has {elements} elements", offset)
            ggml_type, data_offset = self.uint(wide=False), self.uint(wide=True)
            if ggml_type >= MAX_GGML_TYPE:
                raise Malformed(f"tensor {name!r} has unknown ggml type {ggml_type}", offset)
            if data_offset % alignment:
                raise Malformed(f"tensor {name!r} offset {data_offset} is not aligned", offset)
            if elements:
                offsets.append((name, data_offset))
            self.check_budget()
        return offsets


def _walk(reader: BlockReader, size: int, limits: ScanLimits) -> None:
    if reader.read(4) != MAGIC:
        raise Malformed("no GGUF magic", 0)
    version = int(struct.unpack("<I", reader.read(4))[0])
    if version not in VERSIONS:
        raise Malformed(f"GGUF version {version}", 4)
    gguf = _Gguf(reader, version, limits)
    tensors, kvs = gguf.uint(), gguf.uint()
    width = 8 if gguf.wide else 4
    # A tensor info takes at least a length, 4 + 4 + 8 bytes; a key-value a length, 4 + 1.
    if tensors * (width + 16) + kvs * (width + 5) > reader.remaining:
        raise Malformed(f"{tensors} tensors and {kvs} key-values cannot fit in {size} bytes", 8)
    alignment = gguf.key_values(kvs)
    offsets = gguf.tensor_infos(tensors, alignment)
    data_start = -(-reader.tell() // alignment) * alignment
    for name, data_offset in offsets:
        if data_start + data_offset >= size:
            detail = f"tensor {name!r} data at {data_offset} starts past the end of the file"
            raise Malformed(detail, data_start)


def scan_gguf(raw: BinaryIO, size: int, limits: ScanLimits, log: FindingLog) -> None:
    """Check the GGUF file in ``raw`` (``size`` bytes), adding findings to ``log``."""
    try:
        _walk(BlockReader(raw, size), size, limits)
    except Malformed as exc:
        log.add(FindingKind.INVALID_CONTAINER, exc.detail, exc.offset)
    except LimitReached as exc:
        log.add(FindingKind.LIMIT_EXCEEDED, exc.detail, exc.offset)

"""Model files built byte by byte for the scanning tests: pickles, archives, containers.

Nothing here loads what it builds: the hostile pickles are written as raw opcodes and never
passed to ``pickle.loads``.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

from modelregistry_server.metadata.domain.scanning import FileVerdict, scan_file

# ------------------------------------------------------------------ pickle opcodes
PROTO2, PROTO4 = b"\x80\x02", b"\x80\x04"
MARK, STOP, REDUCE, BUILD, TUPLE, TUPLE1, TUPLE2 = b"(", b".", b"R", b"b", b"t", b"\x85", b"\x86"
EMPTY_TUPLE, EMPTY_DICT, EMPTY_LIST, SETITEM = b")", b"}", b"]", b"s"
NEWFALSE, BINPERSID, MEMOIZE, STACK_GLOBAL, POP = b"\x89", b"Q", b"\x94", b"\x93", b"0"
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def global_op(module: str, name: str) -> bytes:
    """GLOBAL: the import written as two text lines (protocols 0 to 3)."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def short_str(text: str) -> bytes:
    """SHORT_BINUNICODE then MEMOIZE, as protocol 4 writes strings."""
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data + MEMOIZE


def stack_global(module: str, name: str) -> bytes:
    """STACK_GLOBAL: module and name pushed as strings first (protocols 4 and 5)."""
    return short_str(module) + short_str(name) + STACK_GLOBAL + MEMOIZE


def binunicode(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def binint1(value: int) -> bytes:
    return b"K" + bytes([value])


def binput(key: int) -> bytes:
    return b"q" + bytes([key])


def binget(key: int) -> bytes:
    return b"h" + bytes([key])


def os_system_pickle() -> bytes:
    """os.system("echo pwned") the classic way: GLOBAL, an argument tuple, REDUCE."""
    return PROTO2 + global_op("os", "system") + binunicode("echo pwned") + TUPLE1 + REDUCE + STOP


def eval_pickle() -> bytes:
    """builtins.eval("...") through STACK_GLOBAL."""
    call = stack_global("builtins", "eval") + short_str("__import__('os').system('id')")
    return PROTO4 + call + TUPLE1 + REDUCE + STOP


def memo_hidden_system_pickle() -> bytes:
    """STACK_GLOBAL whose strings were memoised, popped, and fetched back with BINGET."""
    strings = short_str("posix") + short_str("system") + POP + POP
    return (
        PROTO4
        + strings
        + binget(0)
        + binget(1)
        + STACK_GLOBAL
        + short_str("id")
        + (TUPLE1 + REDUCE + STOP)
    )


def torch_state_dict_pickle(importer: Callable[[str, str], bytes] = global_op) -> bytes:
    """What torch.save writes as data.pkl for {"weight": a 2x2 float tensor} (protocol 2)."""
    storage = MARK + binunicode("storage") + importer("torch", "FloatStorage")
    storage += binunicode("0") + binunicode("cpu") + binint1(4) + TUPLE + BINPERSID
    size = binint1(2) + binint1(2) + TUPLE2
    hooks = importer("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
    tensor = importer("torch._utils", "_rebuild_tensor_v2") + MARK + storage + binint1(0)
    tensor += size + size + NEWFALSE + hooks + TUPLE + REDUCE
    state = importer("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + binput(1)
    return PROTO2 + state + binunicode("weight") + tensor + SETITEM + STOP


def legacy_torch_file(main: bytes) -> bytes:
    """The pre-1.6 torch.save layout: five pickles, then the raw storages."""
    import pickle  # only to *write* plain data, as torch does

    header = [TORCH_LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}]
    pickles = [pickle.dumps(value, protocol=2) for value in header]
    storages = struct.pack("<q", 4) + b"\0" * 16
    return b"".join([*pickles, main, pickle.dumps(["0"], protocol=2), storages])


def torch_zip(data_pkl: bytes, *, compress: int = zipfile.ZIP_STORED, storage: int = 16) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compress) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", b"little")
        archive.writestr("archive/data/0", b"\0" * storage)
        archive.writestr("archive/version", b"3\n")
    return buffer.getvalue()


# ------------------------------------------------------------------ containers
def safetensors_file(
    tensors: dict[str, Any], data_size: int, *, metadata: dict[str, Any] | None = None
) -> bytes:
    header_object = dict(tensors)
    if metadata is not None:
        header_object["__metadata__"] = metadata
    header = json.dumps(header_object).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"\0" * data_size


def tensor(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def proto_field(number: int, wire_type: int, payload: bytes) -> bytes:
    key = varint(number << 3 | wire_type)
    return key + (varint(len(payload)) + payload if wire_type == 2 else payload)


def onnx_model(graph: bytes = b"") -> bytes:
    """ir_version 8, producer "pytorch", opset 17, and a graph (field 7)."""
    graph = graph or proto_field(2, 2, b"main_graph")
    opset = proto_field(8, 2, proto_field(2, 0, varint(17)))
    return (
        proto_field(1, 0, varint(8))
        + proto_field(2, 2, b"pytorch")
        + opset
        + (proto_field(7, 2, graph))
    )


def gguf_string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def gguf_file(
    *,
    version: int = 3,
    kvs: bytes | None = None,
    kv_count: int | None = None,
    infos: list[bytes] | None = None,
    data: bytes = b"\0" * 32,
) -> bytes:
    """A GGUF file: by default llama-ish metadata and one 4x2 F32 tensor."""
    if kvs is None:
        kvs = gguf_string(b"general.architecture") + struct.pack("<I", 8) + gguf_string(b"llama")
        kvs += gguf_string(b"general.alignment") + struct.pack("<II", 4, 32)
        tokens = b"".join(gguf_string(t) for t in (b"<s>", b"</s>", b"hello"))
        kvs += gguf_string(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3) + tokens
        kv_count = 3
    if infos is None:
        infos = [gguf_tensor_info(b"token_embd.weight", [4, 2], 0, 0)]
    head = b"GGUF" + struct.pack("<IQQ", version, len(infos), kv_count or 0) + kvs
    head += b"".join(infos)
    return head + b"\0" * (-len(head) % 32) + data


def gguf_tensor_info(name: bytes, dims: list[int], ggml_type: int, offset: int) -> bytes:
    shape = b"".join(struct.pack("<Q", d) for d in dims)
    return (
        gguf_string(name)
        + struct.pack("<I", len(dims))
        + shape
        + (struct.pack("<IQ", ggml_type, offset))
    )


# ------------------------------------------------------------------ scanning
def scan_bytes(path: str, data: bytes, **kwargs: Any) -> FileVerdict:
    return scan_file(path, len(data), lambda: io.BytesIO(data), **kwargs)


class CountingFile:
    """A real file that counts the bytes read from it (and the reads)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self.bytes_read = 0
        self.reads = 0

    def read(self, n: int = -1) -> bytes:
        data = self._file.read(n)
        self.bytes_read += len(data)
        self.reads += 1
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sparse_file(path: Path, size: int, pieces: dict[int, bytes]) -> Path:
    """A file of ``size`` bytes, zeros (holes) except ``pieces`` written at their offsets."""
    with path.open("wb") as out:
        out.truncate(size)
        for offset, data in pieces.items():
            out.seek(offset)
            out.write(data)
    return path


def scan_counted(path: Path, name: str) -> tuple[FileVerdict, CountingFile]:
    counting = CountingFile(path)
    verdict = scan_file(name, path.stat().st_size, lambda: cast(BinaryIO, counting))
    return verdict, counting

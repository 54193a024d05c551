"""ONNX: the top level of the ``ModelProto`` message walked as protobuf wire format.

No protobuf library: the walk reads each top-level field's key (a varint: field number and
wire type), then skips its value by its framing (a varint, 8 or 4 bytes, or a length-prefixed
run), so a 2 GiB graph is one seek. Checked: every field is framed within the file and the
file ends exactly at a field boundary; no field number 0 and no group or unknown wire type;
the ``ModelProto`` fields have their declared wire types (``ir_version`` a varint, ``graph``
length-delimited...); ``ir_version`` and ``graph`` are present. Fields this walk does not
know are accepted, as protobuf parsers do. A violation is UNSAFE (``invalid_container``), as
for safetensors: a parser is what a crafted framing attacks.

Not checked (they sit inside ``graph``): operators, and ``external_data`` locations a loader
would open as files next to the model.
"""

from __future__ import annotations

from typing import BinaryIO

from modelregistry_server.metadata.domain.scanning.model import FindingKind, FindingLog, ScanLimits
from modelregistry_server.metadata.domain.scanning.reader import BlockReader, Malformed

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
IR_VERSION, GRAPH = 1, 7
# onnx.proto ModelProto: field number -> wire type.
MODEL_FIELDS = {
    1: VARINT,  # ir_version
    2: LENGTH_DELIMITED,  # producer_name
    3: LENGTH_DELIMITED,  # producer_version
    4: LENGTH_DELIMITED,  # domain
    5: VARINT,  # model_version
    6: LENGTH_DELIMITED,  # doc_string
    7: LENGTH_DELIMITED,  # graph
    8: LENGTH_DELIMITED,  # opset_import
    14: LENGTH_DELIMITED,  # metadata_props
    20: LENGTH_DELIMITED,  # training_info
    25: LENGTH_DELIMITED,  # functions
    26: LENGTH_DELIMITED,  # configuration
}
MAX_FIELD_NUMBER = 2**29 - 1


def _varint(reader: BlockReader) -> int:
    start = reader.tell()
    value = 0
    for shift in range(0, 70, 7):
        byte = reader.read(1)[0]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if value >= 2**64:
                raise Malformed("varint over 64 bits", start)
            return value
    raise Malformed("varint longer than 10 bytes", start)


def _skip_value(reader: BlockReader, wire_type: int, offset: int) -> None:
    if wire_type == VARINT:
        _varint(reader)
    elif wire_type == FIXED64:
        reader.skip(8)
    elif wire_type == FIXED32:
        reader.skip(4)
    elif wire_type == LENGTH_DELIMITED:
        length = _varint(reader)
        if length > reader.remaining:
            raise Malformed(f"field of {length} bytes runs past the end of the file", offset)
        reader.skip(length)
    else:
        raise Malformed(f"wire type {wire_type} (a group or no type at all)", offset)


def scan_onnx(raw: BinaryIO, size: int, limits: ScanLimits, log: FindingLog) -> None:
    """Walk the ONNX model in ``raw`` (``size`` bytes), adding findings to ``log``."""
    reader = BlockReader(raw, size)
    seen: set[int] = set()
    count = 0
    try:
        while reader.remaining > 0:
            offset = reader.tell()
            key = _varint(reader)
            field, wire_type = key >> 3, key & 7
            if not 1 <= field <= MAX_FIELD_NUMBER:
                raise Malformed(f"field number {field}", offset)
            expected = MODEL_FIELDS.get(field)
            if expected is not None and wire_type != expected:
                raise Malformed(f"field {field} has wire type {wire_type}, not {expected}", offset)
            _skip_value(reader, wire_type, offset)
            seen.add(field)
            count += 1
            if count > limits.max_protobuf_fields:
                detail = f"more than {limits.max_protobuf_fields} top-level fields"
                log.add(FindingKind.LIMIT_EXCEEDED, detail, offset)
                return
    except Malformed as exc:
        log.add(FindingKind.INVALID_CONTAINER, f"not an ONNX model: {exc.detail}", exc.offset)
        return
    for field, name in ((IR_VERSION, "ir_version"), (GRAPH, "graph")):
        if field not in seen:
            log.add(FindingKind.INVALID_CONTAINER, f"not an ONNX model: no {name}")

"""Protobuf wire format written by hand, for tests that send messages protobuf would not build
(fields out of order, a field twice, cut short) or check a hand-written codec against it."""

from __future__ import annotations


def varint(value: int) -> bytes:
    """``value`` as a base-128 varint."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def key(field: int, wire_type: int) -> bytes:
    """A field's key: its number and wire type."""
    return varint(field << 3 | wire_type)


def len_field(field: int, payload: bytes) -> bytes:
    """A length-delimited field (bytes, string, message)."""
    return key(field, 2) + varint(len(payload)) + payload

"""CRC32C of parts (artifacts/adapters/checksums.py): right on bytes and on views of any offset.

S3 refuses a part whose ``x-amz-checksum-crc32c`` is wrong, and the local store keeps the same
value beside each part, so a wrong CRC32C would fail every upload. The interleaved hardware
routine splits large buffers into streams and handles unaligned heads and tails separately:
the sizes and offsets below cross those cases, checked against a bitwise reference.
"""

from __future__ import annotations

import random

import pytest

from modelregistry_server.artifacts.adapters.checksums import crc32c, part_checksum


def _reference(data: bytes) -> int:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one bit at a time."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_known_check_value() -> None:
    # RFC 3720, appendix B.4: the CRC-32C of "123456789" is 0xE3069283.
    assert crc32c(b"123456789") == 0xE3069283
    assert part_checksum(b"123456789") == "4waSgw=="
    assert crc32c(b"") == 0


@pytest.mark.parametrize("size", [1, 7, 8, 63, 64, 255, 256, 4095, 4096, 8191, 12289])
@pytest.mark.parametrize("offset", [0, 1, 3, 8])
def test_views_at_any_offset_match_the_reference(size: int, offset: int) -> None:
    data = random.Random(size * 31 + offset).randbytes(size + offset)
    view = memoryview(data)[offset:]
    assert view.readonly
    assert crc32c(view) == _reference(data[offset:])
    assert crc32c(bytes(view)) == crc32c(view)


def test_a_large_view_matches_its_bytes() -> None:
    data = random.Random(7).randbytes((1 << 20) + 5)
    assert crc32c(memoryview(data)[5:]) == crc32c(data[5:])
    assert crc32c(memoryview(data)[5:]) != crc32c(data[4:])

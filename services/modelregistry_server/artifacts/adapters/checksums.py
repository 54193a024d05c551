"""CRC32C of a part's bytes, as they are (``bytes`` or a view, never copied).

google-crc32c computes it with the CPU's CRC32 instruction (~0.1-0.2 CPU-s/GiB here, against
~0.65-1.0 for SHA-256). Its Python functions accept ``bytes`` only, and the chunks of an upload
are read-only views into the received messages: converting them would copy every byte, the
cost these checksums exist to avoid. So the library's C function ``crc32c_extend``, shipped
in the same wheel, is called through ctypes with each chunk's address
(``common/kernel/buffers.py``); it runs without the GIL.
"""

from __future__ import annotations

import base64
import ctypes
import functools
from pathlib import Path
from typing import Any

import google_crc32c

from modelregistry_server.artifacts.domain.blob import PartData
from modelregistry_server.common.kernel.buffers import exported


@functools.cache
def _extend_function() -> Any:
    libs = Path(google_crc32c.__file__).parent.parent / "google_crc32c.libs"
    for candidate in sorted(libs.glob("libcrc32c*.so*")):
        function = ctypes.CDLL(str(candidate)).crc32c_extend
        function.argtypes = [ctypes.c_uint32, ctypes.c_void_p, ctypes.c_size_t]
        function.restype = ctypes.c_uint32
        return function
    return None  # not a manylinux wheel: the Python API, one copy per chunk


def crc32c(data: PartData) -> int:
    """The CRC32C of ``data``."""
    extend = _extend_function()
    if extend is None:
        return int(google_crc32c.value(bytes(data)))
    with exported(data) as (address, length):
        return int(extend(0, address, length))


def part_checksum(data: PartData) -> str:
    """The base64 CRC32C of ``data``, as S3's ``x-amz-checksum-crc32c`` header wants it."""
    return base64.b64encode(crc32c(data).to_bytes(4, "big")).decode("ascii")

"""SHA-256 whose running state can be saved and restored, so an upload survives a restart.

``hashlib`` cannot export its state. OpenSSL's ``SHA256_Init/Update/Final`` work on a plain
``SHA256_CTX`` struct owned by the caller, and that struct *is* the state: saving its bytes at a
part boundary and loading them after a restart continues the hash exactly where it stopped.
The alternative, reading back and re-hashing everything uploaded before the restart, costs a
full extra read of up to many GiB; this costs ~100 bytes per part in the database. The library
is the one ``hashlib`` itself is linked against, so it is present wherever Python's
``_hashlib`` is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

from modelregistry_server.common.kernel.buffers import exported

# sizeof(SHA256_CTX) is 112 on 64-bit builds; the buffer is larger so that a platform with a
# bigger struct cannot overrun it. The spare bytes are never written and compare equal.
_STATE_BYTES = 256
_DIGEST_BYTES = 32


class HashStateUnavailable(RuntimeError):
    """OpenSSL's low-level SHA-256 functions cannot be loaded on this machine."""


@functools.cache
def _libcrypto() -> Any:
    import _hashlib

    candidates = [ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so.1.1"]
    del _hashlib
    for name in candidates:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if all(hasattr(lib, f) for f in ("SHA256_Init", "SHA256_Update", "SHA256_Final")):
            lib.SHA256_Init.argtypes = [ctypes.c_void_p]
            lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            return lib
    raise HashStateUnavailable(
        "cannot load OpenSSL libcrypto with SHA256_Init/Update/Final; resumable uploads need it"
    )


class ResumableSha256:
    """An incremental SHA-256 whose state can be exported with ``state()``.

    Args:
        state: Bytes from an earlier ``state()`` to continue from; None starts a new hash.
    """

    def __init__(self, state: bytes | None = None) -> None:
        self._lib = _libcrypto()
        if state is None:
            self._ctx = ctypes.create_string_buffer(_STATE_BYTES)
            self._lib.SHA256_Init(self._ctx)
        else:
            if len(state) != _STATE_BYTES:
                raise ValueError(f"hash state must be {_STATE_BYTES} bytes, not {len(state)}")
            self._ctx = ctypes.create_string_buffer(state, _STATE_BYTES)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Hash ``data`` (without a copy, except for read-only memoryviews)."""
        if isinstance(data, bytes):
            self._lib.SHA256_Update(self._ctx, data, len(data))
        elif isinstance(data, bytearray):
            buffer = (ctypes.c_char * len(data)).from_buffer(data)
            self._lib.SHA256_Update(self._ctx, buffer, len(data))
        else:
            # A read-only view (a slice of a received message): by address, not copied.
            with exported(data) as (address, length):
                self._lib.SHA256_Update(self._ctx, address, length)

    def state(self) -> bytes:
        """Return the running state, to be passed to the constructor later."""
        return self._ctx.raw

    def hexdigest(self) -> str:
        """Return the digest of everything hashed so far (the object stays usable)."""
        scratch = ctypes.create_string_buffer(self._ctx.raw, _STATE_BYTES)
        out = ctypes.create_string_buffer(_DIGEST_BYTES)
        self._lib.SHA256_Final(out, scratch)
        return out.raw.hex()

"""The address of any contiguous buffer, for C functions called through ctypes, without a copy.

ctypes hands a ``bytes`` object to C as a pointer, and a writable buffer through
``from_buffer``; a read-only ``memoryview`` (a slice of a received message, kept as a view so
that its bytes are not copied) it can only copy. The buffer protocol gives its address: the
object stays exported, so its memory can neither move nor be freed, until the release.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator
from typing import Any


class _PyBuffer(ctypes.Structure):
    """CPython's ``Py_buffer`` (part of the stable ABI since 3.11)."""

    _fields_ = (
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    )


@functools.cache
def _buffer_api() -> tuple[Any, Any]:
    get = ctypes.pythonapi.PyObject_GetBuffer
    get.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
    get.restype = ctypes.c_int
    release = ctypes.pythonapi.PyBuffer_Release
    release.argtypes = [ctypes.POINTER(_PyBuffer)]
    release.restype = None
    return get, release


@contextlib.contextmanager
def exported(data: bytes | bytearray | memoryview) -> Iterator[tuple[int | None, int]]:
    """``(address, length)`` of ``data``'s bytes while the block runs.

    Raises:
        BufferError: ``data`` is not contiguous.
    """
    get, release = _buffer_api()
    view = _PyBuffer()
    get(data, ctypes.byref(view), 0)  # PyBUF_SIMPLE: contiguous bytes, or BufferError
    try:
        yield view.buf, view.len
    finally:
        release(ctypes.byref(view))

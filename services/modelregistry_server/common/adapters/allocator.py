"""Hand memory the process no longer uses back to the operating system, after a burst.

An upload moves its bytes through thousands of 1 MiB buffers, allocated and freed by several
threads (gRPC's, the event loop, the store's workers). glibc keeps freed memory in each
thread's arena for reuse, and gives back to the kernel only what sits at the top of a heap,
so after a few large pushes an idle server kept far more resident memory than it held:
measured 102 -> 165 MiB after two small pushes (bench/pull.py, the memory rows). A long-lived
registry replica should return to its idle size between bursts, or its memory limit has to
cover the worst fragmentation it ever saw. ``malloc_trim(0)`` releases the free pages of every
arena (glibc 2.8+); it takes milliseconds, and runs once a burst is over, not per message.
Before it, a full garbage collection frees the cyclic garbage a burst left (gRPC call objects,
tracebacks of retried calls): without it the idle size wandered by 10-28 % between pushes
(99-127 MiB over 20 small pushes), with it 98-104 MiB. The collection pauses the event loop
once per burst (its length was not measured; it grows with the live objects). Elsewhere
(musl, macOS) the whole call is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
from typing import Any

_log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the allocator's free pages to the OS; True if the allocator could do it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    gc.collect()
    trim(0)
    return True

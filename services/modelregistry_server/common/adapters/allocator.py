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
import os
from collections.abc import Mapping
from typing import Any

_log = logging.getLogger(__name__)


# mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Messages of the data path are 1 MiB (+ framing), and the largest buffers the process mallocs
# are the 4 MiB blocks a download reads at once (adapters/blob_io.py, READ_BLOCK_SIZE); part
# buffers are mmapped by the part pool itself, not malloced.
STREAMING_MMAP_THRESHOLD = 8 * 1024 * 1024
# Free memory at the top of a heap is kept up to this much before it goes back to the kernel
# (malloc_trim at the end of a burst gives back all of it).
STREAMING_TRIM_THRESHOLD = 16 * 1024 * 1024
# Each arena (glibc makes up to 8 per core, one per thread that allocates while the others'
# are busy) keeps its own free memory; the data path's threads (event loop, gRPC's, the
# store's workers) share two.
STREAMING_ARENA_MAX = 2
# Set by an operator, glibc's own settings win (MALLOC_* variables, GLIBC_TUNABLES).
_OPERATOR_SETTINGS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_ARENA_MAX",
    "GLIBC_TUNABLES",
)


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None  # not glibc
    return libc


def _malloc_trim() -> Any:
    libc = _libc()
    return None if libc is None else libc.malloc_trim


def tune_for_streaming(environ: Mapping[str, str] = os.environ) -> bool:
    """Keep 1 MiB messages in the heap, and freed ones there for the next, for the whole process.

    glibc's defaults cost a streaming server half its CPU per byte. Each message of a stream
    is allocated, filled, sent or taken, and freed. With the default (dynamic) thresholds a
    1 MiB block is either mmapped and unmapped each time, or taken from the heap top, which
    glibc then trims back below 2 MiB as soon as it is freed: either way the kernel maps and
    zeroes fresh pages for every message. Measured on the bare gRPC relay
    (bench/_grpc_floor.py, asyncio server, 1 GiB): ``Read`` 491,523 page faults and
    0.88 CPU-s/GiB by default, 1 fault and 0.40 with the two thresholds (then 4 MiB and
    16 MiB; the mmap threshold is 8 MiB since reads take 4 MiB blocks); ``Write`` 194,224
    faults and 0.70 CPU-s/GiB, 10,940 and 0.43. Both are needed: either alone turns off
    glibc's dynamic thresholds and leaves the other at its 128 KiB default.

    Kept free memory is resident memory, so the arenas are capped at two: over 10 pushes of
    4 x 256 MiB (bench/pull.py, the memory rows) the server peaked at 334-358 MiB and its
    idle size after each push wandered 137-157 MiB with the thresholds alone, 314-325 and
    115-118 MiB with the cap (and 317-336 / 101-107 MiB with glibc's defaults).

    Returns True if the settings were applied, False where the allocator is not glibc or an
    operator set glibc's own variables (which then win).
    """
    if any(name in environ for name in _OPERATOR_SETTINGS):
        _log.info("malloc: using the MALLOC_*/GLIBC_TUNABLES settings from the environment")
        return False
    libc = _libc()
    if libc is None:
        return False
    mmap_set: int = libc.mallopt(_M_MMAP_THRESHOLD, STREAMING_MMAP_THRESHOLD)
    trim_set: int = libc.mallopt(_M_TRIM_THRESHOLD, STREAMING_TRIM_THRESHOLD)
    arenas_set: int = libc.mallopt(_M_ARENA_MAX, STREAMING_ARENA_MAX)
    return mmap_set == 1 and trim_set == 1 and arenas_set == 1


def release_free_memory() -> bool:
    """Return the allocator's free pages to the OS; True if the allocator could do it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    gc.collect()
    trim(0)
    return True

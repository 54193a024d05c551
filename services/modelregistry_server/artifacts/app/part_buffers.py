"""Part buffers that uploads reuse, so that a server's memory is what its uploads hold.

A Write stream's bytes arrive as 1 MiB messages. Keeping those messages until their part has
been stored (one object per message, allocated by gRPC, freed in another order by other
threads) fragmented the C heap: over 10 pushes of 4 x 256 MiB at once, a server whose uploads
held about 120 MiB peaked at 566-921 MiB, and stayed at up to 721 MiB when idle (bench/pull.py,
the memory rows). Instead each message is copied at once into the part buffer being filled, and
freed; part buffers come from this pool and go back to it when their part is stored. A stream
holds at most ``parts_in_flight + 1`` of them (the ones being stored and the one being filled),
so the server's upload memory is bounded by ``(parts_in_flight + 1) x part size x streams``,
and buffers are reused instead of re-allocated (no fresh pages to fault in per part). When the
last stream ends the pool lets its buffers go (``clear``), so an idle server does not keep them.

The copy costs about 0.1 CPU-s per GiB (a memcpy into memory already mapped).
"""

from __future__ import annotations

import mmap
from collections import defaultdict

# A part buffer: anonymous memory of its own (see PartBufferPool.acquire).
PartBuffer = mmap.mmap


class PartBufferPool:
    """Reusable ``bytearray``s by size. Single-threaded: used from the event loop only."""

    def __init__(self) -> None:
        self._idle: defaultdict[int, list[PartBuffer]] = defaultdict(list)
        self.allocated = 0  # buffers created since the last clear (tests, metrics)

    def acquire(self, size: int) -> PartBuffer:
        """A buffer of ``size`` bytes (its content is whatever it held before).

        An anonymous ``mmap``, not a ``bytearray``: a 16 MiB ``bytearray`` comes from the C
        heap (glibc serves sizes below its adaptive 32 MiB threshold there once a few were
        freed), where it pins the heap's top and fragments it; a mapping of its own goes back
        to the kernel, all of it, the moment it is dropped. Measured with bytearrays: idle RSS
        after 10 pushes grew 104 -> 239 MiB even after ``malloc_trim``.
        """
        idle = self._idle[size]
        if idle:
            return idle.pop()
        self.allocated += 1
        return mmap.mmap(-1, size)

    def release(self, buffer: PartBuffer) -> None:
        """Give a buffer back; nothing may use it afterwards (no view of it may still be read)."""
        self._idle[len(buffer)].append(buffer)

    def idle_bytes(self) -> int:
        """Bytes held by idle buffers."""
        return sum(size * len(buffers) for size, buffers in self._idle.items())

    def clear(self) -> None:
        """Drop every idle buffer (the last upload ended)."""
        self._idle.clear()
        self.allocated = 0

"""A read-only, seekable file over ranged reads: how a scan in a thread reads a remote blob.

The scanning library (``domain/scanning``) wants a seekable ``BinaryIO`` and reads only what
it needs (headers, pickles, a zip's directory), seeking over tensor data. ``RangeFile`` turns
each read into fetches of whole aligned blocks (1 MiB by default) and keeps the last few
blocks, so a scanner's many small reads cost few round trips and memory stays bounded:
``cache_blocks * block_size`` at most, whatever the file's size.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable

BLOCK_SIZE = 1024 * 1024
CACHE_BLOCKS = 4

# fetch(offset, length) -> the bytes [offset, offset + length) of the file (fewer only at the
# end); raises OSError when they cannot be read. Blocking: called from the scan's thread.
Fetch = Callable[[int, int], bytes]


class RangeFile(io.RawIOBase):
    """A file of ``size`` bytes read through ``fetch`` in aligned blocks, with an LRU of them.

    Args:
        fetch: reads a byte range (blocking); an error should be an ``OSError``.
        size: the file's size: reads stop there.
        block_size: the unit of every fetch (aligned to it).
        cache_blocks: how many blocks are kept (at least 1).
    """

    def __init__(
        self,
        fetch: Fetch,
        size: int,
        *,
        block_size: int = BLOCK_SIZE,
        cache_blocks: int = CACHE_BLOCKS,
    ) -> None:
        super().__init__()
        if block_size <= 0 or cache_blocks <= 0 or size < 0:
            raise ValueError("block_size and cache_blocks must be positive, size not negative")
        self._fetch = fetch
        self._size = size
        self._block_size = block_size
        self._cache_blocks = cache_blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._pos = 0
        self.fetches = 0  # how many ranged reads were made (tests and benchmarks read it)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise OSError(f"negative seek position {target}")
        self._pos = target
        return target

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        view = memoryview(buffer).cast("B")
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        end = self._size if size is None or size < 0 else min(self._size, self._pos + size)
        if end <= self._pos:
            return b""
        parts: list[bytes] = []
        pos = self._pos
        while pos < end:
            index = pos // self._block_size
            block = self._block(index)
            start = pos - index * self._block_size
            piece = block[start : start + (end - pos)]
            if not piece:
                break  # the blob is shorter than the manifest said
            parts.append(piece)
            pos += len(piece)
        self._pos = pos
        return b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is not None:
            self._blocks.move_to_end(index)
            return block
        offset = index * self._block_size
        length = min(self._block_size, self._size - offset)
        self.fetches += 1
        block = self._fetch(offset, length)
        self._blocks[index] = block
        while len(self._blocks) > self._cache_blocks:
            self._blocks.popitem(last=False)
        return block

    @property
    def cached_blocks(self) -> int:
        """How many blocks are held now (never more than ``cache_blocks``)."""
        return len(self._blocks)

    def close(self) -> None:
        self._blocks.clear()
        super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

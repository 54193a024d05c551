"""Bounded reading: what every scanner reads through, and how a scan stops early.

The file object a scan gets may do a ranged read over the network for every ``read`` call,
so scanners never read byte by byte from it: ``BlockReader`` reads blocks of 64 KiB and
skips what it does not need with ``seek``. Nothing here reads more than asked plus one block.
"""

from __future__ import annotations

import io
from typing import IO

BLOCK_SIZE = 64 * 1024


class ScanStop(Exception):
    """A scan cannot go on; ``detail`` says why and ``offset`` where."""

    def __init__(self, detail: str, offset: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.offset = offset


class Malformed(ScanStop):
    """The bytes do not follow the format (this includes ending too early)."""


class LimitReached(ScanStop):
    """Going on would read or keep more than ``ScanLimits`` allow."""


def read_upto(raw: IO[bytes], n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads; fewer only at the end of the file."""
    parts: list[bytes] = []
    left = n
    while left > 0:
        chunk = raw.read(left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class BlockReader:
    """Sequential reads over ``raw`` from its current position to ``end`` (relative).

    ``end`` is the stream's length as the caller knows it (the manifest's size, a zip
    member's size): a read or skip past it is ``Malformed`` before any byte is fetched, so a
    length field of 2**64 costs nothing.
    """

    def __init__(self, raw: IO[bytes], end: int) -> None:
        self._raw = raw
        self._end = end
        self._pos = 0  # stream position of the first byte of _buf[_at:]
        self._buf = b""
        self._at = 0

    def tell(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def _fill(self, need: int) -> None:
        """Make at least ``need`` bytes (no more than exist before ``end``) buffered."""
        have = len(self._buf) - self._at
        if have >= need:
            return
        want = min(max(need - have, BLOCK_SIZE), self._end - self._pos - have)
        more = read_upto(self._raw, want) if want > 0 else b""
        self._buf = self._buf[self._at :] + more
        self._at = 0

    def _short(self, n: int) -> Malformed:
        return Malformed(
            f"{n} bytes needed at offset {self._pos}, {self.remaining} left", self._pos
        )

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or ``Malformed`` if the stream ends first."""
        if n < 0 or n > self.remaining:
            raise self._short(n)
        self._fill(n)
        data = self._buf[self._at : self._at + n]
        if len(data) != n:
            raise Malformed(f"file ends at offset {self._pos + len(data)}", self._pos)
        self._at += n
        self._pos += n
        return data

    def skip(self, n: int) -> None:
        """Move ``n`` bytes on without reading them (a seek once past the buffer)."""
        if n < 0 or n > self.remaining:
            raise self._short(n)
        have = len(self._buf) - self._at
        if n <= have:
            self._at += n
        else:
            self._raw.seek(n - have, io.SEEK_CUR)
            self._buf, self._at = b"", 0
        self._pos += n

    def readline(self, cap: int) -> bytes | None:
        """The next line with its ``\\n``; None (the line consumed) if longer than ``cap``."""
        start = self._pos
        too_long = False
        while True:
            newline = self._buf.find(b"\n", self._at)
            if newline >= 0:
                line = self._buf[self._at : newline + 1]
                self._pos += len(line)
                self._at = newline + 1
                return None if too_long or len(line) > cap + 1 else line
            have = len(self._buf) - self._at
            if have >= self.remaining:
                raise Malformed("no end of line before the end of the stream", start)
            if have > cap:
                # Too long to keep: drop what is buffered and look on for the end of line.
                self._pos += have
                self._buf, self._at, have = b"", 0, 0
                too_long = True
            self._fill(have + 1)


class CappedFile:
    """``raw`` (``size`` bytes) with any single read over ``cap`` refused: for ``zipfile``.

    zipfile reads a whole central directory in one call; a hostile archive may declare a
    huge one. Refusing the read bounds memory without re-implementing zip parsing.
    """

    def __init__(self, raw: IO[bytes], size: int, cap: int) -> None:
        self._raw = raw
        self._size = size
        self._cap = cap

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = max(self._size - self._raw.tell(), 0)
        if n > self._cap:
            raise LimitReached(f"a read of {n} bytes is over the {self._cap}-byte limit")
        return self._raw.read(n)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:
        return True

"""RangeFile: a seekable file over ranged reads, with a bounded cache of aligned blocks."""

from __future__ import annotations

import io

import pytest

from modelregistry_server.metadata.app.range_file import RangeFile
from modelregistry_server.metadata.domain.scanning import Verdict, scan_file
from tests.unit.scanning_files import safetensors_file, tensor

DATA = bytes(range(256)) * 40  # 10240 bytes


def _file(
    data: bytes = DATA, block: int = 1024, cache: int = 2
) -> tuple[RangeFile, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []

    def fetch(offset: int, length: int) -> bytes:
        calls.append((offset, length))
        return data[offset : offset + length]

    return RangeFile(fetch, len(data), block_size=block, cache_blocks=cache), calls


def test_reads_seeks_and_tells_like_a_file() -> None:
    f, _ = _file()
    assert f.read(10) == DATA[:10]
    assert f.tell() == 10
    f.seek(1020)
    assert f.read(10) == DATA[1020:1030]  # across a block boundary
    f.seek(-5, io.SEEK_END)
    assert f.read() == DATA[-5:]
    assert f.read(3) == b""  # at the end
    f.seek(-10, io.SEEK_CUR)
    assert f.read(100) == DATA[-10:]
    f.seek(len(DATA) + 50)
    assert f.read(1) == b""
    with pytest.raises(OSError, match="negative seek"):
        f.seek(-1)
    buffer = bytearray(4)
    f.seek(2)
    assert f.readinto(buffer) == 4
    assert bytes(buffer) == DATA[2:6]


def test_fetches_aligned_blocks_once_and_keeps_only_a_few() -> None:
    f, calls = _file(block=1024, cache=2)
    f.read(10)
    f.seek(500)
    f.read(10)
    assert calls == [(0, 1024)]  # the second read came from the cache
    for start in range(0, len(DATA), 1024):
        f.seek(start)
        f.read(1)
        assert f.cached_blocks <= 2
    assert calls[-1] == (9216, 1024)  # the last block: to the end of the file
    f.seek(0)
    f.read(1)  # evicted long ago: fetched again
    assert calls[-1] == (0, 1024)
    assert f.fetches == len(calls)


def test_a_short_blob_ends_the_read_and_closing_frees_the_cache() -> None:
    f, _ = _file(data=DATA[:100])
    f._size = 200  # the manifest says more than the blob holds
    assert f.read(150) == DATA[:100]
    f.close()
    assert f.cached_blocks == 0
    with pytest.raises(ValueError, match="closed file"):
        f.read(1)


def test_a_failed_read_is_an_error_verdict() -> None:
    def fetch(offset: int, length: int) -> bytes:
        raise OSError("artifact service down")

    verdict = scan_file("w.safetensors", 100, lambda: RangeFile(fetch, 100))  # type: ignore[arg-type,return-value]
    assert verdict.verdict is Verdict.ERROR
    assert verdict.findings[0].kind.value == "read_failed"


def test_the_scanner_reads_a_large_safetensors_through_it_with_one_fetch() -> None:
    data = safetensors_file({"a": tensor("F32", [1024, 1024], 0, 4 * 1024 * 1024)}, 4 * 1024 * 1024)
    f, calls = _file(data=data, block=1024 * 1024, cache=4)
    verdict = scan_file("m.safetensors", len(data), lambda: f)  # type: ignore[arg-type,return-value]
    assert verdict.verdict is Verdict.SAFE
    assert len(calls) == 1  # the header only; tensor data is never read

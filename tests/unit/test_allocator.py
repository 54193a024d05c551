"""``release_free_memory`` reaches glibc's ``malloc_trim`` where there is one (this machine)."""

from __future__ import annotations

import platform

import pytest

from modelregistry_server.common.adapters.allocator import release_free_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_pages_are_released_on_glibc() -> None:
    garbage = [bytearray(256 * 1024) for _ in range(64)]  # something to give back
    del garbage
    assert release_free_memory() is True

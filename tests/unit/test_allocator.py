"""``release_free_memory`` reaches glibc's ``malloc_trim`` where there is one (this machine), and
``tune_for_streaming`` keeps a stream of 1 MiB messages from faulting in fresh pages."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from modelregistry_server.common.adapters.allocator import release_free_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_pages_are_released_on_glibc() -> None:
    garbage = [bytearray(256 * 1024) for _ in range(64)]  # something to give back
    del garbage
    assert release_free_memory() is True


_CHURN = """
import resource, sys
from modelregistry_server.common.adapters.allocator import tune_for_streaming
applied = tune_for_streaming() if sys.argv[1] == "tuned" else None
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(150):  # a stream: a 1 MiB message in, framed into another, both freed
    message = b"\\x01" * (1 << 20)
    framed = b"\\x02" + message
    del framed, message
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _churn(mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    out = subprocess.run(
        [sys.executable, "-c", _CHURN, mode],
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_tuned_streaming_reuses_freed_messages_instead_of_faulting_in_fresh_pages() -> None:
    # 150 messages of 1 MiB, each framed into a copy: by default the heap top is trimmed as
    # each pair is freed, so every message is fresh pages (256 faults per MiB, zeroed by the
    # kernel); tuned, the heap hands the freed ones back.
    _, default_faults = _churn("default")
    applied, tuned_faults = _churn("tuned")
    assert applied == "True"
    assert default_faults > 150 * 256
    assert tuned_faults < default_faults / 20


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_an_operators_own_malloc_settings_win() -> None:
    applied, _ = _churn("tuned", {"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert applied == "False"

"""Model-file scanning benchmark: what scanning costs a push, and how soon the verdict lands.

Run it with ``.venv/bin/python bench/scan.py`` (or ``make bench-scan BENCH_ARGS=...``). It starts
a throwaway PostgreSQL and MinIO and two registry server subprocesses on them, one with
``--scan-models on`` and one with ``--scan-models off`` (each with its own database), then
pushes a fresh 1 GiB safetensors model (new bytes every push, so nothing dedupes) with the SDK
to each, alternating which goes first. Reported: the median push-to-READY time on ÷ off (the
target: ≤ 1.1; the scan runs after the commit has answered, so the push should not wait for
it) and, with scanning on, how long after READY the verdict was stored. Markdown to stdout,
progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import struct
import sys
import time
from pathlib import Path

from modelregistry import Client
from modelregistry.metadata.v1 import model_version_pb2
from modelregistry_server.common.adapters.db import ensure_database

# `bench` and `tests` are not installed packages: when run as a script, sys.path[0] is bench/,
# so make the repository root importable (as the other benchmarks do).
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from bench._support import (  # noqa: E402
    ServerProcess,
    cpu_model,
    log,
    scratch_dir,
    start_minio,
    start_postgres,
    unwind_on_sigterm,
    verdict,
    write_incompressible,
)

from tests.support.auth import ADMIN_TOKEN  # noqa: E402
from tests.support.minio import MinioServer  # noqa: E402

MIB = 1024 * 1024
TARGET = 1.1


def write_safetensors(path: Path, size: int, tag: int) -> None:
    """A valid safetensors file of ``size`` bytes of F32 data (one tensor), fresh bytes."""
    elements = size // 4
    header = json.dumps(
        {"weight": {"dtype": "F32", "shape": [elements], "data_offsets": [0, elements * 4]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    data = path.with_suffix(".data")
    write_incompressible(data, elements * 4, tag=tag)
    with path.open("wb") as out, data.open("rb") as source:
        out.write(struct.pack("<Q", len(header)) + header)
        while chunk := source.read(64 * MIB):
            out.write(chunk)
    data.unlink()


def push_once(target: str, folder: Path, model: str, cache: Path) -> tuple[float, str, int]:
    """Push ``folder``; return the seconds to READY, the version's name and number."""
    started = time.perf_counter()
    with Client(target, token=ADMIN_TOKEN, cache_dir=cache) as client:
        version = client.push(folder, model=model)
    return time.perf_counter() - started, version.name, version.version


def wait_verdict(target: str, model: str, number: int, cache: Path) -> tuple[float, str]:
    """Poll until the version has a scan verdict; return the seconds waited and the verdict."""
    started = time.perf_counter()
    with Client(target, token=ADMIN_TOKEN, cache_dir=cache) as client:
        while True:
            version = client.get_version(model, number)
            if version.scan_verdict:
                name = model_version_pb2.ScanVerdict.Name(version.scan_verdict)
                return time.perf_counter() - started, name
            if time.perf_counter() - started > 300:
                return float("inf"), "TIMEOUT"
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="model size (1024)")
    parser.add_argument("--rounds", type=int, default=3, help="pushes per server (3)")
    args = parser.parse_args(argv)
    unwind_on_sigterm()
    size = args.size_mib * MIB
    with contextlib.ExitStack() as stack:
        work = scratch_dir(stack, "mr-bench-scan-")
        log("starting PostgreSQL and MinIO")
        postgres, on_url = start_postgres(stack, work / "pg")
        asyncio.run(ensure_database(postgres.dsn(), "bench_off"))
        off_url = postgres.dsn("bench_off")
        minio = MinioServer()
        start_minio(stack, minio)
        servers = {}
        for mode, url in (("on", on_url), ("off", off_url)):
            server = ServerProcess(
                work / f"server-{mode}", url, minio=minio, args=[f"--scan-models={mode}"]
            )
            stack.callback(server.stop)
            server.start()
            servers[mode] = server
        times: dict[str, list[float]] = {"on": [], "off": []}
        verdicts: list[tuple[float, str]] = []
        tag = 0
        for round_no in range(args.rounds):
            order = ("on", "off") if round_no % 2 == 0 else ("off", "on")
            for mode in order:
                tag += 1
                folder = work / f"model-{tag}"
                folder.mkdir()
                write_safetensors(folder / "model.safetensors", size, tag)
                seconds, _, number = push_once(
                    servers[mode].target, folder, f"bench-{mode}", work / f"cache-{tag}"
                )
                times[mode].append(seconds)
                log(f"round {round_no + 1}: push with scanning {mode}: {seconds:.2f} s")
                if mode == "on":
                    waited, got = wait_verdict(
                        servers[mode].target, f"bench-{mode}", number, work / f"cache-{tag}"
                    )
                    verdicts.append((waited, got))
                    log(f"  verdict {got} {waited:.2f} s after READY")
                for path in folder.iterdir():
                    path.unlink()
                folder.rmdir()
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    ratio = on / off
    print(
        f"Scanning benchmark, {time.strftime('%Y-%m-%d')}: {os.cpu_count()} CPUs "
        f"({cpu_model()}), Python {platform.python_version()}; {args.size_mib} MiB "
        f"safetensors, {args.rounds} pushes per server, MinIO blobs.\n"
    )
    print("| Measurement | Scanning on | Scanning off | On ÷ off | Target | Result |")
    print("|---|---:|---:|---:|---:|:---:|")
    print(
        f"| Push to READY (median) | {on:.2f} s | {off:.2f} s | {ratio:.2f}x | ≤ {TARGET}x "
        f"| {verdict(ratio <= TARGET)} |"
    )
    waits = [w for w, _ in verdicts]
    print(
        f"\nVerdicts: {', '.join(v for _, v in verdicts)}; stored "
        f"{statistics.median(waits):.2f} s after READY (median; max {max(waits):.2f} s)."
    )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

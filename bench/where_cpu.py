"""Where the artifact service's CPU goes: per thread, for a 1 GiB ``Write`` and ``Read``.

Run it with ``.venv/bin/python bench/where_cpu.py`` (``make bench-where-cpu``). It starts MinIO,
PostgreSQL and ``serve artifacts`` as ``bench/artifacts.py`` does, uploads and reads back
``--size-mib`` of fresh bytes ``--rounds`` times, and prints the server's CPU seconds per GiB
split by thread: the event loop (the servicer, hashing, protobuf, asyncio), gRPC's event engine
threads (socket reads and writes, HTTP/2), and the store's worker threads (the S3 client:
CRC32C, HTTP, socket sends), each as user and system time. bench/README.md ("Where the CPU
goes") reads the figures.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from bench import artifacts  # noqa: E402
from bench._support import GIB, MIB, Meter  # noqa: E402

Times = dict[int, tuple[str, float, float, int]]
_FAULTS = "minor page faults, thousands"


def _minor_faults(pid: int, tid: int) -> int:
    """The thread's minor page faults so far (fresh pages the kernel mapped and zeroed)."""
    try:
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[7])


def _threads(proc: psutil.Process) -> Times:
    """Each thread's kind, user and system CPU seconds."""
    out: Times = {}
    for thread in proc.threads():
        try:
            name = Path(f"/proc/{proc.pid}/task/{thread.id}/comm").read_text().strip()
        except OSError:
            continue
        if thread.id == proc.pid:
            kind = "event loop (main thread)"
        elif name == "event_engine":
            kind = "gRPC event engine"
        else:
            kind = "other threads (S3 client workers)"
        out[thread.id] = (
            kind,
            thread.user_time,
            thread.system_time,
            _minor_faults(proc.pid, thread.id),
        )
    return out


def _split(before: Times, after: Times, gib: float) -> tuple[dict[str, float], float]:
    """CPU-s per GiB by thread kind and user/system, and page faults per GiB (thousands)."""
    split: collections.defaultdict[str, float] = collections.defaultdict(float)
    faults = 0.0
    for tid, (kind, user, system, minflt) in after.items():
        _, user0, system0, minflt0 = before.get(tid, (kind, 0.0, 0.0, 0))
        split[f"{kind}, user"] += (user - user0) / gib
        split[f"{kind}, system"] += (system - system0) / gib
        faults += (minflt - minflt0) / gib / 1000
    return dict(split), faults


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="bytes per transfer (1024)")
    parser.add_argument("--rounds", type=int, default=2, help="uploads and reads (2)")
    args = parser.parse_args(argv)
    settings, _ = artifacts.parse_args(["--skip-rss", "--repeat", "1"])
    bench = artifacts.Bench(settings)
    bench.start()
    data = artifacts.DataFile(bench.tmp / "where.bin", args.size_mib * MIB)
    gib = data.size / GIB
    rows: dict[str, list[tuple[dict[str, float], float]]] = {"Write": [], "Read": []}
    try:
        with bench.server() as server:
            proc = server.process
            meter = Meter(proc, bench.minio_proc)
            for round_no in range(args.rounds):
                if round_no:
                    data.renew()
                before = _threads(proc)
                artifacts.grpc_upload(server.stub, data, MIB, meter)
                rows["Write"].append(_split(before, _threads(proc), gib))
                before = _threads(proc)
                artifacts.grpc_download(
                    server.stub, data.sha256, data.size, Path(os.devnull), meter
                )
                rows["Read"].append(_split(before, _threads(proc), gib))
    finally:
        data.path.unlink(missing_ok=True)
        bench.close()
    for path, samples in rows.items():
        print(f"\n{path}, server CPU-s per GiB (each round):\n")
        print("| Thread | " + " | ".join(f"round {n + 1}" for n in range(len(samples))) + " |")
        print("|---|" + "---:|" * len(samples))
        first = samples[0][0]
        for key in sorted(first, key=lambda k: -first[k]):
            print(f"| {key} | " + " | ".join(f"{s.get(key, 0.0):.2f}" for s, _ in samples) + " |")
        totals = " | ".join(f"**{sum(s.values()):.2f}**" for s, _ in samples)
        print(f"| **total** | {totals} |")
        faults = " | ".join(f"{f:.1f}" for _, f in samples)
        print(f"| {_FAULTS} per GiB, all threads | {faults} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

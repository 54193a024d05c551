"""File URL benchmark: HTTP download throughput as a ratio to the gRPC ``Read`` of the same blob.

Run it with ``.venv/bin/python bench/http_download.py`` (or ``make bench-http BENCH_ARGS=...``).
It starts everything it needs and stops it again, also on Ctrl-C / SIGTERM: a throwaway
PostgreSQL (fsync off), a real MinIO, and two registry servers as subprocesses (both services,
``--http-listen`` on loopback), one on the local blob directory and one on MinIO, each with its
own database. A 1 GiB file of incompressible bytes is pushed to each with the SDK (alias
``production``); then, in every round, in rotated order, on each store:

1. ``curl -o /dev/null`` of the file URL by alias (the token in a header file, not argv);
2. Python ``urllib`` reading the same URL into one 1 MiB buffer (``readinto``);
3. the baseline: gRPC ``Read`` of the same blob (sync stub, the SDK's transport; 1 MiB
   messages, each one's bytes taken once) with ``model_version`` set, as the SDK pulls.

Nothing is written to disk or hashed on either side of the comparison (DESIGN.md: compare like
with like). Reported: median MB/s of each over the rounds, HTTP ÷ gRPC (target ≥ 1.0), and CPU
seconds per GiB of the client, the server and MinIO. Markdown to stdout, progress to stderr,
and the report as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from modelregistry import Client
from modelregistry.artifact.v1 import artifact_service_pb2, artifact_service_pb2_grpc
from modelregistry_server.common.adapters.db import ensure_database

# `bench` and `tests` are not installed packages: when run as a script, sys.path[0] is bench/,
# so make the repository root importable (as the other benchmarks do).
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from bench._support import (  # noqa: E402
    CPUS,
    FOREIGN_LOAD_WARNING,
    GIB,
    MIB,
    TOKEN,
    Meter,
    Sample,
    ServerProcess,
    authenticated_channel,
    bulk_dir,
    cpu_model,
    log,
    reaped_children_cpu,
    rotated,
    scratch_dir,
    start_minio,
    start_postgres,
    unwind_on_sigterm,
    verdict,
    write_incompressible,
)

from tests.support.minio import MinioServer, free_port  # noqa: E402

TARGET = 1.0
MODEL = "bench"
FILE_NAME = "model.safetensors"
METHODS = ("curl", "urllib", "grpc")
LABELS = {
    "curl": "HTTP, `curl -o /dev/null`",
    "urllib": "HTTP, Python urllib, 1 MiB `readinto`",
    "grpc": "gRPC `Read` (sync stub)",
}
DEFAULT_JSON = Path(tempfile.gettempdir()) / "modelregistry-bench-http-download.json"


@dataclass
class Store:
    """One server under test and what was pushed to it."""

    name: str
    server: ServerProcess
    http_port: int
    sha256: str = ""
    version: str = ""

    @property
    def url(self) -> str:
        """The file URL by alias."""
        return (
            f"http://127.0.0.1:{self.http_port}/v1/models/{MODEL}/versions/production/files/"
            f"{FILE_NAME}"
        )


def curl_download(store: Store, size: int, header_file: Path, meter: Meter) -> Sample:
    """``curl`` the file URL to /dev/null; curl's CPU counts as the client's."""
    before = reaped_children_cpu()

    def fetch() -> None:
        done = subprocess.run(
            ["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}",
             "-H", f"@{header_file}", store.url],
            check=True, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if int(done.stdout) != size:
            raise RuntimeError(f"curl got {done.stdout} bytes of {size}")

    return meter.measure(size, fetch, lambda: reaped_children_cpu() - before)


def urllib_download(store: Store, size: int, meter: Meter) -> Sample:
    """GET the file URL with urllib, reading it into one reused 1 MiB buffer."""

    def fetch() -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        request = urllib.request.Request(store.url, headers=headers)  # noqa: S310 - http://
        buffer = bytearray(MIB)
        got = 0
        with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310 - loopback
            while n := response.readinto(buffer):
                got += n
        if got != size:
            raise RuntimeError(f"urllib got {got} bytes of {size}")

    return meter.measure(size, fetch)


def grpc_download(store: Store, size: int, meter: Meter) -> Sample:
    """The whole blob through gRPC ``Read``, as the SDK reads it (``model_version`` set)."""
    with authenticated_channel(store.server.target) as channel:
        stub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        request = artifact_service_pb2.ReadRequest(sha256=store.sha256, model_version=store.version)

        def fetch() -> None:
            got = 0
            for response in stub.Read(request, timeout=600):
                got += len(response.data)  # each access copies: take it once
            if got != size:
                raise RuntimeError(f"gRPC Read got {got} bytes of {size}")

        return meter.measure(size, fetch)


def start_stores(
    stack: contextlib.ExitStack, work: Path, minio: MinioServer
) -> tuple[list[Store], psutil.Process | None]:
    """PostgreSQL, MinIO and the two servers; returns the stores and MinIO's process."""
    postgres, local_url = start_postgres(stack, work / "pg")
    asyncio.run(ensure_database(postgres.dsn(), "bench_s3"))
    minio_proc = start_minio(stack, minio)
    stores = []
    for name, url, on_minio in (
        ("local", local_url, None),
        ("MinIO", postgres.dsn("bench_s3"), minio),
    ):
        port = free_port()
        server = ServerProcess(
            work / f"server-{name}", url, minio=on_minio, args=[f"--http-listen=127.0.0.1:{port}"]
        )
        stack.callback(server.stop)
        server.start()
        stores.append(Store(name, server, port))
    return stores, minio_proc


def push(store: Store, folder: Path, cache: Path) -> None:
    """Push ``folder`` as a new version with alias ``production``; note its blob and name."""
    started = time.perf_counter()
    with Client(store.server.target, token=TOKEN, cache_dir=cache) as client:
        version = client.push(folder, model=MODEL, alias="production", lineage=False)
    store.sha256, store.version = version.files[0].sha256, version.name
    log(f"{store.name}: pushed {version.name} in {time.perf_counter() - started:.1f} s")


class PeakRss:
    """The largest resident set of ``proc`` while the ``with`` block runs (polled every 20 ms)."""

    def __init__(self, proc: psutil.Process) -> None:
        self._proc = proc
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="rss", daemon=True)
        self.peak = 0

    def _poll(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(
    stores: list[Store], size: int, rounds: int, header_file: Path, minio: psutil.Process | None
) -> tuple[dict[str, dict[str, list[Sample]]], dict[str, dict[str, int]]]:
    """Every method on every store, ``rounds`` times (after one untimed warm-up of each).

    Returns the samples, and each server's RSS before the downloads and its peak during the
    HTTP ones (a file URL must never hold a file in memory).
    """
    samples: dict[str, dict[str, list[Sample]]] = {s.name: {m: [] for m in METHODS} for s in stores}
    rss: dict[str, dict[str, int]] = {}
    for store in stores:
        meter = Meter(store.server.process, minio if store.name == "MinIO" else None)
        run: dict[str, Callable[[], Sample]] = {
            "curl": lambda: curl_download(store, size, header_file, meter),  # noqa: B023
            "urllib": lambda: urllib_download(store, size, meter),  # noqa: B023
            "grpc": lambda: grpc_download(store, size, meter),  # noqa: B023
        }
        rss[store.name] = {"before": store.server.process.memory_info().rss, "http_peak": 0}
        for method in METHODS:  # warm-up: page cache, connections, the server's caches
            run[method]()
        for round_no in range(rounds):
            for method in rotated(METHODS, round_no):
                with PeakRss(store.server.process) as peak:
                    sample = run[method]()
                if method != "grpc":
                    rss[store.name]["http_peak"] = max(rss[store.name]["http_peak"], peak.peak)
                samples[store.name][method].append(sample)
                log(
                    f"{store.name} round {round_no + 1}: {method}: {sample.mb_s:.0f} MB/s "
                    f"(foreign load {sample.foreign_load:.0%})"
                )
    return samples, rss


def build_report(
    samples: dict[str, dict[str, list[Sample]]],
    rss: dict[str, dict[str, int]],
    size: int,
    rounds: int,
) -> dict[str, Any]:
    """Medians, ratios and CPU per GiB, as plain data (the JSON report)."""
    stores: dict[str, Any] = {}
    for store, by_method in samples.items():
        medians = {m: statistics.median(s.mb_s for s in by_method[m]) for m in METHODS}
        cpu = {
            m: {
                "client_s_per_gib": statistics.median(s.per_gib(s.client_cpu) for s in runs),
                "server_s_per_gib": statistics.median(s.per_gib(s.server_cpu) for s in runs),
                "minio_s_per_gib": statistics.median(s.per_gib(s.minio_cpu) for s in runs),
            }
            for m, runs in by_method.items()
        }
        stores[store] = {
            "mb_s": medians,
            "ratio": {m: medians[m] / medians["grpc"] for m in ("curl", "urllib")},
            "cpu": cpu,
            "server_rss_before": rss[store]["before"],
            "server_rss_http_peak": rss[store]["http_peak"],
            "max_foreign_load": max(s.foreign_load for runs in by_method.values() for s in runs),
            "samples": {m: [asdict(s) for s in runs] for m, runs in by_method.items()},
        }
    return {
        "date": time.strftime("%Y-%m-%d"),
        "cpus": CPUS,
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "size_bytes": size,
        "rounds": rounds,
        "target": TARGET,
        "stores": stores,
    }


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    lines = [
        f"File URL benchmark, {report['date']}: {report['cpus']} CPUs ({report['cpu_model']}), "
        f"Python {report['python']}; a {report['size_bytes'] // MIB} MiB file by alias, median "
        f"of {report['rounds']} rounds (rotated order), nothing written or hashed.",
        "",
        "| Store | Download | MB/s | ÷ gRPC `Read` | Target | Result |",
        "|---|---|---:|---:|---:|:---:|",
    ]
    for store, figures in report["stores"].items():
        for method in METHODS:
            mb_s = figures["mb_s"][method]
            if method == "grpc":
                lines.append(f"| {store} | {LABELS[method]} | {mb_s:.0f} | 1.00 | — | — |")
                continue
            ratio = figures["ratio"][method]
            lines.append(
                f"| {store} | {LABELS[method]} | {mb_s:.0f} | **{ratio:.2f}** | "
                f"≥ {TARGET:.1f} | {verdict(ratio >= TARGET)} |"
            )
    lines += [
        "",
        "CPU seconds per GiB (client: this script, or curl; server: the registry process):",
        "",
        "| Store | Download | Client | Server | MinIO |",
        "|---|---|---:|---:|---:|",
    ]
    for store, figures in report["stores"].items():
        for method in METHODS:
            cpu = figures["cpu"][method]
            lines.append(
                f"| {store} | {LABELS[method]} | {cpu['client_s_per_gib']:.2f} | "
                f"{cpu['server_s_per_gib']:.2f} | {cpu['minio_s_per_gib']:.2f} |"
            )
    lines += ["", "Server resident set (a file is streamed, never held in memory):", ""]
    for store, figures in report["stores"].items():
        before, peak = figures["server_rss_before"], figures["server_rss_http_peak"]
        lines.append(
            f"- {store}: {before / MIB:.0f} MiB before the downloads, at most {peak / MIB:.0f} "
            f"MiB during the HTTP ones ({report['size_bytes'] // MIB} MiB file)"
        )
    worst = max(f["max_foreign_load"] for f in report["stores"].values())
    if worst > FOREIGN_LOAD_WARNING:
        lines += [
            "",
            f"Warning: processes this run did not start used up to {worst:.0%} of the CPUs "
            "during a timed download; the figures are not trustworthy.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring. Exit code 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (1024)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per method (3)")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"the JSON report ({DEFAULT_JSON})"
    )
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.rounds < 1:
        parser.error("--size-mib and --rounds must be positive")
    unwind_on_sigterm()
    size = args.size_mib * MIB
    try:
        with contextlib.ExitStack() as stack:
            work = scratch_dir(stack, "mr-bench-http-")
            source, where = bulk_dir(stack, "auto", size + GIB // 4, work, "mr-bench-http-src-")
            log(f"writing the {args.size_mib} MiB file to {where}")
            write_incompressible(source / FILE_NAME, size)
            log("starting PostgreSQL, MinIO and the two servers")
            stores, minio_proc = start_stores(stack, work, MinioServer())
            for store in stores:
                push(store, source, work / f"cache-{store.name}")
            (source / FILE_NAME).unlink()  # the servers hold it now: free /dev/shm
            header_file = work / "curl-headers"
            header_file.touch(mode=0o600)
            header_file.write_text(f"Authorization: Bearer {TOKEN}\n")
            samples, rss = measure(stores, size, args.rounds, header_file, minio_proc)
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    report = build_report(samples, rss, size, args.rounds)
    print(render_markdown(report))
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {args.json}")
    ok = all(r >= TARGET for s in report["stores"].values() for r in s["ratio"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

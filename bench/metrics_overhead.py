"""Metrics benchmark: what ``--metrics prometheus`` costs a resolve and an upload.

Run it with ``.venv/bin/python bench/metrics_overhead.py`` (or ``make bench-metrics
BENCH_ARGS=...``). It starts a throwaway PostgreSQL (fsync off) and three registry server
subprocesses on it, each with its own database and local blob directory: one with
``--metrics prometheus`` (the endpoint on a free loopback port), one without metrics (the
baseline, measured in the same run), and a second one without metrics, the *control*: control
÷ baseline is what two identical servers differ by on this machine at this time, the noise
floor against which on ÷ off must be read. Each gets a model ``bench`` with one READY version
and the alias ``production``. Then, for ``--rounds`` rounds, in an order rotated each round:

1. ``ResolveModelVersion("bench@production")`` from ``--callers`` concurrent callers (32),
   ``--calls`` calls each (300), with grpc.aio and the admin token as call metadata (as the SDK
   sends it): p50 and p99 latency, and the server's CPU time per call (psutil);
2. a ``Write`` stream of ``--write-mib`` fresh bytes (256; new bytes every time, nothing
   dedupes) with the sync stub in 1 MiB messages: the server's CPU seconds per GiB.

With metrics on, the endpoint is scraped once after each round (outside the timed parts) and
the scrape must show the calls just made. Reported: on ÷ off and control ÷ off for resolve p50
and p99, resolve CPU per call and Write CPU-s/GiB.

First, in this process and with no gRPC around it, the CPU time the metrics interceptor adds
to one unary call (its handler wrapped and called, the duration recorded under the call's
status) beside the same handler called bare: what the end-to-end figures cannot resolve below
their noise. Markdown to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import platform
import statistics
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import psutil

from modelregistry import Client
from modelregistry.artifact.v1 import artifact_service_pb2 as apb
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as mpb
from modelregistry.metadata.v1 import metadata_service_pb2_grpc
from modelregistry_server.common.adapters.db import ensure_database
from modelregistry_server.common.metrics import DURATION_BUCKETS_MS, CumulativeHistogram
from modelregistry_server.common.rpc.metrics import RpcMetricsInterceptor

# `bench` and `tests` are not installed packages: when run as a script, sys.path[0] is bench/,
# so make the repository root importable (as the other benchmarks do).
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from bench._support import (  # noqa: E402
    ServerProcess,
    cpu_model,
    log,
    proc_cpu,
    rotated,
    scratch_dir,
    start_postgres,
    unwind_on_sigterm,
)

from tests.support.auth import ADMIN_TOKEN, bearer  # noqa: E402
from tests.support.minio import free_port  # noqa: E402

MIB = 1024 * 1024
GIB = 1024 * MIB
REF = "bench@production"


def scrape(port: int) -> str:
    """The text of one scrape of ``/metrics``."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def prepare(target: str, work: Path) -> None:
    """Model ``bench`` with one READY version (a 1 KiB file) and the alias ``production``."""
    folder = work / "seed"
    folder.mkdir(exist_ok=True)
    (folder / "model.bin").write_bytes(os.urandom(1024))
    with Client(target, token=ADMIN_TOKEN, cache_dir=work / "seed-cache") as client:
        client.push(folder, model="bench", alias="production")


async def _resolve_load(target: str, callers: int, calls: int) -> list[float]:
    """Latencies (s) of ``callers`` x ``calls`` resolves, callers concurrent."""
    metadata = bearer(ADMIN_TOKEN)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        request = mpb.ResolveModelVersionRequest(ref=REF)
        for _ in range(50):  # warm-up: connection, caches
            await stub.ResolveModelVersion(request, metadata=metadata)
        latencies: list[float] = []

        async def caller() -> None:
            for _ in range(calls):
                started = time.perf_counter()
                await stub.ResolveModelVersion(request, metadata=metadata)
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(caller() for _ in range(callers)))
    return latencies


def resolve_round(server: ServerProcess, callers: int, calls: int) -> tuple[list[float], float]:
    """One round of resolves: the latencies and the server's CPU seconds per call."""
    proc = server.process
    cpu = proc_cpu(proc)
    latencies = asyncio.run(_resolve_load(server.target, callers, calls))
    return latencies, (proc_cpu(proc) - cpu) / len(latencies)


def write_round(server: ServerProcess, size: int, tag: int) -> float:
    """Upload ``size`` fresh bytes in one Write stream; the server's CPU-s per GiB."""
    block = bytearray(os.urandom(MIB))
    digest = hashlib.sha256()
    for number in range(size // MIB):
        block[:16] = tag.to_bytes(8, "little") + number.to_bytes(8, "little")
        digest.update(block)
    metadata = bearer(ADMIN_TOKEN)
    with grpc.insecure_channel(server.target) as channel:
        stub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        session = stub.CreateUploadSession(
            apb.CreateUploadSessionRequest(
                blob=blob_pb2.BlobRef(sha256=digest.hexdigest(), size_bytes=size)
            ),
            metadata=metadata,
        )

        def messages() -> Iterator[apb.WriteRequest]:
            for number in range(size // MIB):
                block[:16] = tag.to_bytes(8, "little") + number.to_bytes(8, "little")
                yield apb.WriteRequest(
                    upload_session=session.name,
                    write_offset=number * MIB,
                    data=bytes(block),
                    finish_write=number == size // MIB - 1,
                )

        # The previous round's blob may still be going to disk; its writeback, charged to
        # whichever process dirties pages next when the kernel throttles, is not this Write's.
        os.sync()
        proc = server.process
        cpu = proc_cpu(proc)
        reply = stub.Write(messages(), metadata=metadata)
        used = proc_cpu(proc) - cpu
    assert reply.committed_size == size, reply
    return used / (size / GIB)


class _Context:
    def code(self) -> None:
        return None


class _Details:
    method = "/modelregistry.metadata.v1.MetadataService/ResolveModelVersion"
    invocation_metadata = ()


async def _interceptor_cost(calls: int = 200_000, repeats: int = 5) -> tuple[float, float]:
    """Median CPU µs per call of a bare unary handler, and of it behind the interceptor."""

    async def behavior(request: object, _context: object) -> object:
        return request

    handler = grpc.unary_unary_rpc_method_handler(behavior)

    async def continuation(_details: object) -> object:
        return handler

    interceptor = RpcMetricsInterceptor(CumulativeHistogram("d", "ms", "", DURATION_BUCKETS_MS))
    context, details = _Context(), _Details()
    bare: list[float] = []
    measured: list[float] = []
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(calls):
            plain: Any = await continuation(details)
            await plain.unary_unary(1, context)
        bare.append((time.process_time() - started) / calls * 1e6)
        started = time.process_time()
        for _ in range(calls):
            wrapped: Any = await interceptor.intercept_service(continuation, details)  # type: ignore[arg-type]
            await wrapped.unary_unary(1, context)
        measured.append((time.process_time() - started) / calls * 1e6)
    return statistics.median(bare), statistics.median(measured)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per server (5)")
    parser.add_argument("--callers", type=int, default=32, help="concurrent resolvers (32)")
    parser.add_argument("--calls", type=int, default=300, help="resolves per caller (300)")
    parser.add_argument("--write-mib", type=int, default=256, help="bytes per Write (256 MiB)")
    args = parser.parse_args(argv)
    unwind_on_sigterm()
    bare_us, measured_us = asyncio.run(_interceptor_cost())
    log(f"interceptor alone: {measured_us - bare_us:.2f} µs of CPU per call")
    metrics_port = free_port()
    modes = ("on", "off", "control")
    resolves: dict[str, list[float]] = {mode: [] for mode in modes}
    resolve_cpu: dict[str, list[float]] = {mode: [] for mode in modes}
    write_cpu: dict[str, list[float]] = {mode: [] for mode in modes}
    with contextlib.ExitStack() as stack:
        work = scratch_dir(stack, "mr-bench-metrics-")
        log("starting PostgreSQL")
        postgres, on_url = start_postgres(stack, work / "pg")
        urls = {"on": on_url}
        for mode in ("off", "control"):
            asyncio.run(ensure_database(postgres.dsn(), f"bench_{mode}"))
            urls[mode] = postgres.dsn(f"bench_{mode}")
        flags = {
            "on": ["--metrics=prometheus", f"--metrics-listen=127.0.0.1:{metrics_port}"],
            "off": [],
            "control": [],
        }
        servers: dict[str, ServerProcess] = {}
        for mode in modes:
            server = ServerProcess(
                work / f"server-{mode}", urls[mode],
                args=["--http-listen=off", "--scan-models=off", *flags[mode]],
            )  # fmt: skip
            stack.callback(server.stop)
            server.start()
            prepare(server.target, work / f"server-{mode}")
            servers[mode] = server
        tag = 0
        for round_no in range(args.rounds):
            for mode in rotated(modes, round_no):
                latencies, cpu = resolve_round(servers[mode], args.callers, args.calls)
                resolves[mode] += latencies
                resolve_cpu[mode].append(cpu)
                tag += 1
                write_cpu[mode].append(write_round(servers[mode], args.write_mib * MIB, tag))
                log(
                    f"round {round_no + 1}, metrics {mode}: resolve p50 "
                    f"{percentile(latencies, 0.5) * 1000:.2f} ms, {cpu * 1e3:.3f} ms CPU/call; "
                    f"Write {write_cpu[mode][-1]:.2f} CPU-s/GiB"
                )
            text = scrape(metrics_port)
            assert 'rpc_method="ResolveModelVersion"' in text, "the scrape lacks the resolves"
    report(args, resolves, resolve_cpu, write_cpu)
    print(
        f"\nThe interceptor alone (no gRPC around it): {measured_us - bare_us:.2f} µs of CPU per "
        f"unary call ({bare_us:.2f} µs bare, {measured_us:.2f} µs measured; median of 5 x "
        "200,000 calls)."
    )
    return 0


def report(
    args: argparse.Namespace,
    resolves: dict[str, list[float]],
    resolve_cpu: dict[str, list[float]],
    write_cpu: dict[str, list[float]],
) -> None:
    """Print the Markdown table."""
    p50 = {mode: percentile(values, 0.5) * 1000 for mode, values in resolves.items()}
    p99 = {mode: percentile(values, 0.99) * 1000 for mode, values in resolves.items()}
    cpu = {mode: statistics.median(values) * 1000 for mode, values in resolve_cpu.items()}
    write = {mode: statistics.median(values) for mode, values in write_cpu.items()}
    print(
        f"Metrics benchmark, {time.strftime('%Y-%m-%d')}: {psutil.cpu_count()} CPUs "
        f"({cpu_model()}), Python {platform.python_version()}; {args.rounds} rounds, "
        f"{args.callers} callers x {args.calls} resolves and one {args.write_mib} MiB Write per "
        "server per round; local blob store.\n"
    )
    print(
        "| Measurement | `--metrics prometheus` | no metrics (baseline) | no metrics (control) "
        "| On ÷ off | Control ÷ off |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    rows = [
        ("`ResolveModelVersion` p50", p50, "ms", 2),
        ("`ResolveModelVersion` p99", p99, "ms", 2),
        ("server CPU per resolve (median of rounds)", cpu, "ms", 3),
        ("server CPU per GiB of `Write` (median of rounds)", write, "CPU-s", 2),
    ]
    for name, values, unit, digits in rows:
        shown = " | ".join(f"{values[mode]:.{digits}f} {unit}" for mode in ("on", "off", "control"))
        print(
            f"| {name} | {shown} | **{values['on'] / values['off']:.2f}** "
            f"| {values['control'] / values['off']:.2f} |"
        )


if __name__ == "__main__":
    sys.exit(main())

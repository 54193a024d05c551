"""Web UI benchmark: the model page's server time with 10,000 versions in the model.

Run it with ``.venv/bin/python bench/ui_pages.py`` (or ``make bench-ui BENCH_ARGS=...``). It
starts what it needs and stops it again, also on Ctrl-C / SIGTERM: a throwaway PostgreSQL
(fsync off) and the registry as a subprocess (both services, ``--http-listen`` on loopback,
the local blob directory, file scanning off). It then fills model ``bench`` through the real
API (gRPC ``CreateModelVersion`` + ``CommitModelVersion``, 32 at a time; every version's
manifest names one tiny blob uploaded once): ``--versions`` READY versions (10,000) with four
metrics and three params each, 20 alias moves, and checks reported on the latest 100 versions.

Measured, over HTTP with the admin token as a bearer header, on one keep-alive connection, one
request at a time (so each figure is the server's time to produce and send the whole page,
as a browser that opened the page would wait for it):

1. ``GET /models/bench``: the default view (version desc, the first metrics as columns);
2. ``GET /models/bench?sort=metrics.accuracy&dir=desc`` with three metric columns;
3. ``GET /models/bench?sort=params.lr&dir=asc`` with two param columns (sorted on a JSON
   param with the server's three-column keyset order);
4. the baseline, ``GET /v1/whoami``: an empty authenticated JSON call on the same server.

Rounds rotate the order of the four; p50 and p99 are over all requests of a kind. Target:
the model page's p50 ≤ 100 ms (issue 14), absolute; the ratio to the empty call is printed
beside it. Markdown to stdout, progress to stderr, the report as JSON (``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil

from modelregistry.artifact.v1 import artifact_service_pb2, artifact_service_pb2_grpc, blob_pb2
from modelregistry.metadata.v1 import (
    governance_pb2,
    metadata_service_pb2,
    metadata_service_pb2_grpc,
    model_pb2,
    model_version_pb2,
)

# `bench` and `tests` are not installed packages: when run as a script, sys.path[0] is bench/,
# so make the repository root importable (as the other benchmarks do).
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from bench._support import (  # noqa: E402
    CALL_METADATA,
    CPUS,
    TOKEN,
    ServerProcess,
    cpu_model,
    log,
    machine_cpu,
    proc_cpu,
    rotated,
    scratch_dir,
    start_postgres,
    unwind_on_sigterm,
    verdict,
)

from tests.support.artifacts import sha256_hex, write_requests  # noqa: E402
from tests.support.minio import free_port  # noqa: E402

MODEL = "bench"
TARGET_P50_MS = 100.0
BLOB = b"one tiny shared weights file\n"
DEFAULT_JSON = Path(tempfile.gettempdir()) / "modelregistry-bench-ui-pages.json"


@dataclass(frozen=True)
class Kind:
    """One kind of request measured."""

    key: str
    label: str
    path: str
    page: bool  # a model page (has the target), or the baseline


KINDS = (
    Kind("default", "Model page, default view", f"/models/{MODEL}", True),
    Kind(
        "sorted_metric",
        "Model page, sorted by `metrics.accuracy` desc, 3 metric columns",
        f"/models/{MODEL}?sort=metrics.accuracy&dir=desc&col=metrics.accuracy"
        "&col=metrics.auc&col=metrics.f1",
        True,
    ),
    Kind(
        "sorted_param",
        "Model page, sorted by `params.lr` asc, 2 param columns",
        f"/models/{MODEL}?sort=params.lr&dir=asc&col=params.lr&col=params.optimizer",
        True,
    ),
    Kind("whoami", "`GET /v1/whoami` (empty authenticated call, baseline)", "/v1/whoami", False),
)
BASELINE = KINDS[-1]


@dataclass(frozen=True)
class Settings:
    """What one run does."""

    versions: int
    rounds: int
    requests: int  # per kind per round
    warmup: int  # per kind
    concurrency: int  # of the version pushes


# ----------------------------------------------------------------------------- filling


async def fill(target: str, settings: Settings) -> dict[str, float]:
    """Model ``bench`` with ``settings.versions`` READY versions through the gRPC API."""
    started = time.perf_counter()
    async with grpc.aio.insecure_channel(target) as channel:
        metadata = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        artifacts = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        await metadata.CreateModel(
            metadata_service_pb2.CreateModelRequest(
                model_id=MODEL,
                model=model_pb2.Model(description="Benchmark model", labels={"team": "bench"}),
            ),
            metadata=CALL_METADATA,
        )
        await _upload_once(artifacts)
        numbers = iter(range(settings.versions))
        workers = [_pusher(metadata, numbers) for _ in range(settings.concurrency)]
        await asyncio.gather(*workers)
        pushed = time.perf_counter()
        await _history_and_checks(metadata, settings.versions)
    return {"push_s": pushed - started, "total_s": time.perf_counter() - started}


async def _upload_once(artifacts: Any) -> None:
    """The one blob every manifest names, uploaded as an operator (the admin may)."""
    session = await artifacts.CreateUploadSession(
        artifact_service_pb2.CreateUploadSessionRequest(
            blob=blob_pb2.BlobRef(sha256=sha256_hex(BLOB), size_bytes=len(BLOB))
        ),
        metadata=CALL_METADATA,
    )
    if not session.complete:

        async def requests() -> Any:
            for request in write_requests(session.name, BLOB):
                yield request

        await artifacts.Write(requests(), metadata=CALL_METADATA)


def _version_fields(i: int) -> model_version_pb2.ModelVersion:
    param = model_version_pb2.ParamValue
    return model_version_pb2.ModelVersion(
        description=f"Nightly build {i}",
        labels={"team": "bench"},
        metrics={
            "accuracy": 0.80 + (i * 7919 % 2000) / 10000,
            "auc": 0.85 + (i * 104729 % 1500) / 10000,
            "f1": 0.70 + (i * 1299709 % 2500) / 10000,
            "loss": 0.1 + (i * 15485863 % 900) / 10000,
        },
        params={
            "lr": param(double_value=[0.1, 0.05, 0.01, 0.005][i % 4]),
            "epochs": param(int_value=5 + i % 20),
            "optimizer": param(string_value=["adam", "sgd", "adamw"][i % 3]),
        },
    )


async def _pusher(metadata: Any, numbers: Any) -> None:
    manifest = [
        model_version_pb2.ManifestFile(
            path="model.bin", sha256=sha256_hex(BLOB), size_bytes=len(BLOB)
        )
    ]
    for i in numbers:
        create = metadata_service_pb2.CreateModelVersionRequest(
            parent=f"models/{MODEL}", model_version=_version_fields(i), request_id=str(uuid.uuid4())
        )
        created = await _retried(metadata.CreateModelVersion, create)
        commit = metadata_service_pb2.CommitModelVersionRequest(
            name=created.name, files=manifest, request_id=str(uuid.uuid4())
        )
        await _retried(metadata.CommitModelVersion, commit)
        if (i + 1) % 1000 == 0:
            log(f"{i + 1} versions")


async def _retried(rpc: Any, request: Any) -> Any:
    """``rpc(request)``, again (same request id) when the server was briefly unavailable."""
    for attempt in range(5):
        try:
            return await rpc(request, metadata=CALL_METADATA, timeout=60)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == 4:
                raise
            log(f"{exc.details()}; retrying")
            await asyncio.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


async def _history_and_checks(metadata: Any, versions: int) -> None:
    """20 alias moves (production, staging) and checks on the latest 100 versions."""
    for move in range(20):
        await metadata.SetAlias(
            metadata_service_pb2.SetAliasRequest(
                model=f"models/{MODEL}",
                alias=("production", "staging")[move % 2],
                version=f"models/{MODEL}/versions/{versions - 40 + 2 * move}",
            ),
            metadata=CALL_METADATA,
        )
    statuses = (governance_pb2.Check.STATUS_PASSED, governance_pb2.Check.STATUS_FAILED)
    for number in range(max(1, versions - 99), versions + 1):
        for name in ("eval/accuracy", "eval/bias"):
            check = governance_pb2.Check(check_name=name, status=statuses[number % 7 == 0])
            await metadata.ReportCheck(
                governance_pb2.ReportCheckRequest(
                    parent=f"models/{MODEL}/versions/{number}", check=check
                ),
                metadata=CALL_METADATA,
            )


# ----------------------------------------------------------------------------- measuring


class Http:
    """One keep-alive HTTP/1.1 connection presenting the admin token."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self._headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "text/html"}

    def get(self, path: str) -> tuple[float, int]:
        """Seconds until the whole response has arrived, and its size in bytes."""
        started = time.perf_counter()
        self._connection.request("GET", path, headers=self._headers)
        response = self._connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:500]!r}")
        return elapsed, len(body)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


def measure(http_port: int, server: psutil.Process, settings: Settings) -> dict[str, Any]:
    """Every kind's latencies over the rounds, with the server's CPU per request."""
    client = Http(http_port)
    results: dict[str, Any] = {
        k.key: {"ms": [], "bytes": 0, "server_cpu_s": 0.0, "wall_s": 0.0, "rounds": []}
        for k in KINDS
    }
    other_cpu = 0.0
    wall = 0.0
    try:
        for kind in KINDS:
            for _ in range(settings.warmup):
                client.get(kind.path)
        for round_no in range(settings.rounds):
            for kind in rotated(KINDS, round_no):
                r = results[kind.key]
                cpu0, machine0, t0 = proc_cpu(server), machine_cpu(), time.perf_counter()
                times = []
                for _ in range(settings.requests):
                    elapsed, size = client.get(kind.path)
                    times.append(elapsed * 1000)
                    r["bytes"] = size
                spent, elapsed_wall = proc_cpu(server) - cpu0, time.perf_counter() - t0
                r["server_cpu_s"] += spent
                r["wall_s"] += elapsed_wall
                other_cpu += max(0.0, machine_cpu() - machine0 - spent)
                wall += elapsed_wall
                r["ms"] += times
                r["rounds"].append(statistics.median(times))
            log(f"round {round_no + 1} of {settings.rounds}")
    finally:
        client.close()
    for r in results.values():
        r["p50_ms"] = _percentile(r["ms"], 50)
        r["p99_ms"] = _percentile(r["ms"], 99)
        r["mean_ms"] = statistics.fmean(r["ms"])
        r["requests"] = len(r["ms"])
        r["server_cpu_ms_per_request"] = r["server_cpu_s"] * 1000 / len(r["ms"])
    results["_other_cpus"] = other_cpu / wall if wall else 0.0
    return results


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# ----------------------------------------------------------------------------- report


def build_report(
    settings: Settings, fill_times: dict[str, float], results: dict[str, Any]
) -> dict[str, Any]:
    """The figures, ratios and verdicts as one JSON-able document."""
    base = results[BASELINE.key]
    kinds: dict[str, Any] = {}
    for kind in KINDS:
        r = results[kind.key]
        entry = {k: v for k, v in r.items() if k != "ms"}
        entry["label"] = kind.label
        entry["path"] = kind.path
        entry["p50_ratio"] = r["p50_ms"] / base["p50_ms"]
        entry["p99_ratio"] = r["p99_ms"] / base["p99_ms"]
        if kind.page:
            entry["target_p50_ms"] = TARGET_P50_MS
            entry["pass"] = r["p50_ms"] <= TARGET_P50_MS
        kinds[kind.key] = entry
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": CPUS, "cpu_model": cpu_model(), "python": platform.python_version()},
        "settings": asdict(settings),
        "fill": fill_times,
        "results": kinds,
        "other_cpus": results["_other_cpus"],
    }


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table."""
    s, m, f = report["settings"], report["machine"], report["fill"]
    lines = [
        f"Web UI benchmark, {report['date']}: {m['cpus']} CPUs ({m['cpu_model']}), Python "
        f"{m['python']}. Model `{MODEL}` with {s['versions']} READY versions (4 metrics, 3 "
        f"params each), pushed through gRPC in {f['push_s']:.0f} s ({s['concurrency']} at a "
        f"time). {s['rounds']} rounds x {s['requests']} requests per kind, one at a time on "
        f"one keep-alive connection, after {s['warmup']} warm-up requests per kind.",
        "",
        "| Request | p50 | p99 | mean | Server CPU per request | Page size | p50 ÷ whoami "
        "| Per-round medians | Target (p50) | Result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for kind in KINDS:
        r = report["results"][kind.key]
        rounds = ", ".join(f"{v:.1f}" for v in r["rounds"])
        target = f"≤ {TARGET_P50_MS:.0f} ms" if kind.page else "—"
        result = verdict(r["pass"]) if kind.page else "—"
        lines.append(
            f"| {kind.label} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['mean_ms']:.1f} ms "
            f"| {r['server_cpu_ms_per_request']:.1f} ms | {r['bytes'] / 1024:.0f} KiB "
            f"| {r['p50_ratio']:.1f}x | {rounds} | {target} | {result} |"
        )
    lines += [
        "",
        f"Other processes (PostgreSQL included) kept {report['other_cpus']:.2f} CPUs busy on "
        "average while measuring.",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- entry point


def parse_args(argv: list[str] | None = None) -> tuple[Settings, Path]:
    """Parse flags into the run's settings and the JSON output path."""
    parser = argparse.ArgumentParser(
        prog="bench/ui_pages.py",
        description="The model page's server time with 10,000 versions (p50/p99 over HTTP), "
        "beside an empty authenticated JSON call (GET /v1/whoami) on the same server.",
    )
    parser.add_argument("--versions", type=int, default=10_000, help="READY versions (10000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every kind (5)")
    parser.add_argument("--requests", type=int, default=20, help="requests per kind per round (20)")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up requests per kind (5)")
    parser.add_argument("--concurrency", type=int, default=32, help="pushes at a time (32)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"({DEFAULT_JSON})")
    args = parser.parse_args(argv)
    if min(args.versions, args.rounds, args.requests, args.concurrency) < 1 or args.warmup < 0:
        parser.error("--versions, --rounds, --requests and --concurrency must be > 0")
    if args.versions < 40:
        parser.error("--versions must be at least 40 (the alias moves use the latest 40)")
    settings = Settings(args.versions, args.rounds, args.requests, args.warmup, args.concurrency)
    return settings, args.json


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (0 even when the target is missed)."""
    settings, json_path = parse_args(argv)
    unwind_on_sigterm()
    with contextlib.ExitStack() as stack:
        try:
            work = scratch_dir(stack, "modelregistry-bench-ui-")
            _postgres, url = start_postgres(stack, work / "pg")
            http_port = free_port()
            args = [f"--http-listen=127.0.0.1:{http_port}", "--scan-models=off"]
            server = ServerProcess(work / "server", url, args=args)
            stack.callback(server.stop)
            server.start()
            log(f"pushing {settings.versions} versions")
            fill_times = asyncio.run(fill(server.target, settings))
            log(f"filled in {fill_times['total_s']:.0f} s; measuring")
            results = measure(http_port, server.process, settings)
        except KeyboardInterrupt:
            log("interrupted; stopping everything")
            return 130
    report = build_report(settings, fill_times, results)
    print(render_markdown(report))
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The data path's floors: what moving a GiB costs before a service does anything of its own.

Run it with ``.venv/bin/python bench/floors.py`` (``make bench-floors``). Issue 16 asks the
artifact service for ``Write`` at most 1.5 x the CPU of SHA-256 over the same bytes and ``Read``
at most 0.5 CPU-s/GiB. ``bench/artifacts.py`` shows that a Python gRPC relay cannot get there;
this bench answers the planning question that follows: would another language or protocol?
In the same rounds, on the same file of fresh bytes, it measures the CPU per GiB of

* SHA-256 in this process (the unit of target 1);
* any relay at all: ``bench/_socket_floor.py``, bytes in on one loopback socket and out on
  another, with and without SHA-256 of each byte;
* the bare gRPC transport in Python (``bench/_grpc_floor.py``, as ``bench-artifacts`` runs it);
* the same bare transport in Go (``bench/go_floor``, grpc-go with a pass-through codec), built
  with ``go build`` into ``.tools/bin`` on first use: ``Write`` received, ``Write`` received
  and hashed (Go's SHA-256 also uses the CPU's SHA instructions), and ``Read`` sent;
* the registry's own ``Read`` design with nothing of the service around it
  (``bench/_s3_relay_floor.py``: the S3 store's read path into the same gRPC stack) relaying
  the file from a real MinIO, and ``get_object`` of the same object alone in this process.

The client of the gRPC rows is this process with the sync stub, as in ``bench-artifacts``; a
server's CPU is its whole process. The table goes to stdout, progress to stderr; ``--json``
writes every sample. Figures and what they mean: bench/README.md ("Where the CPU goes").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from bench._support import BUCKET, MIB, Meter, Sample, bulk_dir, log, start_minio  # noqa: E402
from bench.artifacts import (  # noqa: E402
    TARGET_READ_CPU_S_PER_GIB,
    TARGET_WRITE_CPU_VS_SHA256,
    DataFile,
    FloorServer,
    floor_download,
    floor_upload,
    read_to_nowhere,
    sha256_baseline,
    socket_relay,
)

from tests.support.minio import MinioServer  # noqa: E402

GO_SOURCE = Path(__file__).with_name("go_floor")
GO_BINARY = REPO_ROOT / ".tools" / "bin" / "go-grpc-floor"
CHUNK = MIB
KEY = "floors"  # the round's object in MinIO


def build_go_floor() -> Path:
    """``go build`` the Go transport unless the binary is newer than its sources."""
    sources = [*GO_SOURCE.glob("*.go"), GO_SOURCE / "go.mod", GO_SOURCE / "go.sum"]
    newest = max(p.stat().st_mtime for p in sources)
    if GO_BINARY.exists() and GO_BINARY.stat().st_mtime >= newest:
        return GO_BINARY
    go = shutil.which("go")
    if go is None:
        raise SystemExit(
            "bench-floors needs Go (https://go.dev/doc/install) to build bench/go_floor"
        )
    log("building bench/go_floor (go build; the first time fetches grpc-go)")
    GO_BINARY.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([go, "build", "-o", str(GO_BINARY), "."], cwd=GO_SOURCE, check=True)
    return GO_BINARY


def per_gib(samples: list[Sample], field: str) -> float:
    """Median CPU-s per GiB of ``field`` over the rounds."""
    return statistics.median(s.per_gib(getattr(s, field)) for s in samples)


def measure(size_mib: int, rounds: int, work: Path) -> dict[str, list[Sample]]:
    """Every floor, ``rounds`` times, each round on new content."""
    go = build_go_floor()
    data = DataFile(work / "floors.bin", size_mib * MIB)
    out = work / "read.out"
    out.touch()
    samples: dict[str, list[Sample]] = {}

    def add(key: str, sample: Sample) -> None:
        samples.setdefault(key, []).append(sample)

    with contextlib.ExitStack() as stack:
        minio = MinioServer(work / "minio")
        start_minio(stack, minio)
        s3 = minio.client()
        s3_relay = stack.enter_context(
            FloorServer(
                work,
                [
                    sys.executable,
                    str(Path(__file__).with_name("_s3_relay_floor.py")),
                    minio.endpoint,
                    minio.access_key,
                    minio.secret_key,
                    BUCKET,
                    KEY,
                ],
                name="s3-relay-floor",
            )
        )
        python = stack.enter_context(FloorServer(work, name="python-floor"))
        go_plain = stack.enter_context(FloorServer(work, [str(go)], name="go-floor"))
        go_sha = stack.enter_context(FloorServer(work, [str(go), "-sha256"], name="go-floor-sha"))
        for round_no in range(rounds):
            log(f"round {round_no + 1}/{rounds}")
            if round_no:
                data.renew()
            add("sha256", sha256_baseline(data))
            add("socket_relay_sha256", socket_relay(data, sha256=True))
            add("socket_relay", socket_relay(data, sha256=False))
            for key, server in (
                ("python_write", python),
                ("go_write", go_plain),
                ("go_write_sha256", go_sha),
            ):
                assert server.process is not None
                add(key, floor_upload(server.stub, data, CHUNK, Meter(server.process, None)))
            s3.fput_object(BUCKET, KEY, str(data.path), part_size=64 * MIB)
            read_to_nowhere(s3, KEY)  # into MinIO's page cache, as bench-artifacts does
            add("s3_get", Meter(None, None).measure(data.size, lambda: read_to_nowhere(s3, KEY)))
            for key, server in (
                ("python_read", python),
                ("go_read", go_plain),
                ("python_s3_relay", s3_relay),
            ):
                assert server.process is not None
                add(key, floor_download(server.stub, data.size, out, Meter(server.process, None)))
    return samples


def report(samples: dict[str, list[Sample]]) -> dict[str, Any]:
    """Medians per floor and what they leave of targets 1 and 2."""
    sha = per_gib(samples["sha256"], "client_cpu")
    # Every floor ran in a server process but these two, measured in this process.
    here = {"sha256", "s3_get"}
    server = {key: per_gib(v, "server_cpu") for key, v in samples.items() if key not in here}
    server["s3_get"] = per_gib(samples["s3_get"], "client_cpu")
    write_floors = {
        "any relay: sockets in and out, SHA-256": server["socket_relay_sha256"],
        "Python gRPC: receive, + SHA-256": server["python_write"] + sha,
        "Go gRPC: receive and SHA-256": server["go_write_sha256"],
    }
    read_floors = {
        "any relay: sockets in and out": server["socket_relay"],
        "Python gRPC: send": server["python_read"],
        "Go gRPC: send": server["go_read"],
    }
    relay_floors = {
        "Python gRPC: send + `get_object` alone, added": server["python_read"] + server["s3_get"],
        "Go gRPC: send + `get_object` alone, added": server["go_read"] + server["s3_get"],
        "the registry's Read design, relaying from MinIO, no service work": server[
            "python_s3_relay"
        ],
    }
    return {
        "sha256_s_per_gib": sha,
        "server_s_per_gib": server,
        "write_floors_vs_sha256": {k: v / sha for k, v in write_floors.items()},
        "read_floors_s_per_gib": read_floors,
        "read_relay_floors_s_per_gib": relay_floors,
        "samples": {key: [s.__dict__ for s in values] for key, values in samples.items()},
    }


def render(result: dict[str, Any], rounds: int) -> str:
    """The report as Markdown."""
    sha = result["sha256_s_per_gib"]
    server = result["server_s_per_gib"]
    labels = {
        "socket_relay_sha256": "any relay: loopback socket in, SHA-256, socket out",
        "socket_relay": "any relay: loopback socket in, socket out",
        "python_write": "Python gRPC `Write`: receive only",
        "go_write": "Go gRPC `Write`: receive only",
        "go_write_sha256": "Go gRPC `Write`: receive and SHA-256",
        "python_read": "Python gRPC `Read`: send only",
        "go_read": "Go gRPC `Read`: send only",
        "s3_get": "`get_object` alone (this process), 1 MiB reads",
        "python_s3_relay": "Python gRPC `Read` relaying from MinIO (the registry's design)",
    }
    lines = [
        f"Floors of the data path, medians of {rounds} rounds (server process CPU-s per GiB):",
        "",
        "| Floor | CPU-s/GiB | ÷ SHA-256 |",
        "|---|---:|---:|",
        f"| SHA-256 in this process | {sha:.2f} | 1.00x |",
    ]
    lines += [
        f"| {label} | {server[k]:.2f} | {server[k] / sha:.2f}x |" for k, label in labels.items()
    ]
    lines += [
        "",
        f"Target 1 (`Write` ≤ {TARGET_WRITE_CPU_VS_SHA256:.2f}x SHA-256), before storing a byte:",
    ]
    lines += [f"- {k}: {v:.2f}x" for k, v in result["write_floors_vs_sha256"].items()]
    lines += [
        "",
        f"Target 2 (`Read` ≤ {TARGET_READ_CPU_S_PER_GIB:.2f} CPU-s/GiB), before taking a byte from "
        "the store:",
    ]
    lines += [f"- {k}: {v:.2f}" for k, v in result["read_floors_s_per_gib"].items()]
    lines += ["", "Target 2, with the bytes taken from MinIO:"]
    lines += [f"- {k}: {v:.2f}" for k, v in result["read_relay_floors_s_per_gib"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, measure, print."""
    parser = argparse.ArgumentParser(description="CPU floors of the data path, Python and Go")
    parser.add_argument("--size-mib", type=int, default=1024, help="bytes per transfer (1024)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--bulk-dir", default="auto", help="folder for the data file (auto)")
    parser.add_argument("--json", type=Path, help="also write every sample here")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        fallback = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="floors-")))
        work, _ = bulk_dir(stack, args.bulk_dir, 2 * args.size_mib * MIB, fallback, "floors-")
        result = report(measure(args.size_mib, args.rounds, work))
    print(render(result, args.rounds))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()

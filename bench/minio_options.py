"""What MinIO's own options cost it on the PUT path (issue 16: "measure what MinIO's own options
cost on the PUT path, and document the settings you recommend").

Run it with ``.venv/bin/python bench/minio_options.py`` (``make bench-minio-options``). For each
setting, in turn and ``--runs`` times, a fresh single-drive MinIO (the pinned release) takes
``--puts`` PUTs of ``--mib`` MiB of random bytes twice: signed (minio-py ``put_object``, 16 MiB
parts, SigV4 over the payload) and unsigned (a presigned PUT: ``UNSIGNED-PAYLOAD``, as the
registry's parts go). Objects are not deleted while measuring: MinIO purges deleted objects in
the background, and that work would land in the next measurement. Its data directory is on
``--data-dir`` (default ``/dev/shm``, so the disk's cost is left out; a real disk adds the
kernel's copy into the page cache). Prints MinIO's CPU seconds per GiB taken, per setting and
run; deploy/docs/operations.md reads the figures. Exits 0.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import psutil
from minio import Minio

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from bench._support import GIB, MIB, log  # noqa: E402

from tests.support.minio import ensure_minio_binary, free_port  # noqa: E402

SETTINGS: dict[str, tuple[dict[str, str], list[str]]] = {
    "defaults": ({}, []),
    "--no-compat (no MD5 ETags)": ({}, ["--no-compat"]),
    "compression on for every type": (
        {
            "MINIO_COMPRESSION_ENABLE": "on",
            "MINIO_COMPRESSION_EXTENSIONS": "",
            "MINIO_COMPRESSION_MIME_TYPES": "*",
        },
        [],
    ),
}
BUCKET = "bench"


def _measure(
    data: bytes, puts: int, data_dir: Path, env: dict[str, str], args: list[str]
) -> dict[str, float]:
    """MinIO CPU-s per GiB for signed and unsigned PUTs, on a fresh server."""
    user, password = "bench-" + secrets.token_hex(4), secrets.token_hex(16)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_")}
    environ.update(MINIO_ROOT_USER=user, MINIO_ROOT_PASSWORD=password, MINIO_BROWSER="off")
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="mr-minio-options-", dir=data_dir))
    command = [str(ensure_minio_binary()), "server", str(work), "--quiet", *args]
    command += ["--address", f"127.0.0.1:{port}", "--console-address", f"127.0.0.1:{free_port()}"]
    proc = subprocess.Popen(
        command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        client = Minio(f"127.0.0.1:{port}", user, password, secure=False)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.make_bucket(BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"MinIO did not start: {' '.join(command)}") from None
                time.sleep(0.2)
        minio = psutil.Process(proc.pid)
        out: dict[str, float] = {}
        for mode in ("signed", "unsigned"):
            before = sum(minio.cpu_times()[:2])
            for i in range(puts):
                key = f"{mode}-{i}"
                if mode == "signed":
                    client.put_object(BUCKET, key, io.BytesIO(data), len(data), part_size=16 * MIB)
                else:
                    url = client.presigned_put_object(BUCKET, key, expires=timedelta(hours=1))
                    request = urllib.request.Request(url, data=data, method="PUT")  # noqa: S310
                    with urllib.request.urlopen(request) as reply:  # noqa: S310 - our MinIO
                        reply.read()
            out[mode] = (sum(minio.cpu_times()[:2]) - before) / (puts * len(data) / GIB)
        return out
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Measure every setting ``--runs`` times and print the table; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="runs of every setting (2)")
    parser.add_argument("--puts", type=int, default=4, help="PUTs per mode and run (4)")
    parser.add_argument("--mib", type=int, default=256, help="MiB per PUT (256)")
    parser.add_argument("--data-dir", type=Path, default=Path("/dev/shm"), help="(/dev/shm)")
    args = parser.parse_args(argv)
    data = os.urandom(args.mib * MIB)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    for run in range(args.runs):
        for name, (env, flags) in SETTINGS.items():
            log(f"run {run + 1}/{args.runs}: {name}")
            results[name].append(_measure(data, args.puts, args.data_dir, env, flags))
    print(f"\nMinIO CPU-s per GiB taken, {args.puts} PUTs of {args.mib} MiB per mode and run:\n")
    print("| MinIO setting | Signed payload (`put_object`) | Unsigned payload (presigned PUT) |")
    print("|---|---:|---:|")
    for name, runs in results.items():
        signed = ", ".join(f"{r['signed']:.2f}" for r in runs)
        unsigned = ", ".join(f"{r['unsigned']:.2f}" for r in runs)
        print(f"| {name} | {signed} | {unsigned} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

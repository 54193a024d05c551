"""Probe: do concurrent same-key uploads stall on MinIO's distributed lock after a node dies?

Starts the 4-node MinIO of :mod:`tests.scale.cluster`, then per iteration two threads upload
(PutObject or a registry-like multipart upload) through nodes 2 and 3 while node 1, or the
node coordinating one of the uploads, is SIGKILLed at a random moment; each upload's latency
is measured, the node restarted, and the cluster awaited healthy. Variants: same key / distinct
keys. Not part of the test suite; run by hand::

    .venv/bin/python -m tests.scale.lock_stall_probe --seconds 900
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import secrets
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import urllib3
from minio import Minio
from minio.credentials.providers import StaticProvider
from minio.datatypes import Part
from minio.minioadmin import _COMMAND, MinioAdmin

from tests.scale.cluster import BUCKET, MinioCluster

PART = 5 * 1024 * 1024
SLOW_S = 10.0
# Short enough to see a stall, long enough not to cut one short (the registry waits 120 s).
READ_TIMEOUT_S = 150.0


@dataclass
class Variant:
    """One kind of iteration and what its uploads measured."""

    name: str
    multipart: bool
    same_key: bool
    kill_coordinator: bool
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """Counts and latencies, for the report."""
        lat = self.latencies
        return {
            "variant": self.name,
            "uploads": len(lat),
            "max_s": round(max(lat), 2) if lat else None,
            "median_s": round(statistics.median(lat), 3) if lat else None,
            "over_10s": sum(t > SLOW_S for t in lat),
            "errors": len(self.errors),
            "error_samples": sorted(set(self.errors))[:5],
        }


def client(cluster: MinioCluster, index: int) -> Minio:
    """A client of node ``index`` (0-based), configured like the registry but with no retries."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=READ_TIMEOUT_S),
        retries=urllib3.Retry(total=0),
    )
    return Minio(
        cluster.nodes[index].endpoint,
        access_key=cluster.access_key,
        secret_key=cluster.secret_key,
        secure=False,
        http_client=http,
    )


def wait_all_up(cluster: MinioCluster, timeout: float = 180.0) -> None:
    """Wait until every node says the cluster would keep write quorum without it.

    ``/minio/health/cluster?maintenance=true`` answers 200 only if one more node may go down,
    i.e. (here) when that node sees all four drives; plain ``/health/cluster`` is 200 with 3.
    """
    deadline = time.monotonic() + timeout
    for node in cluster.nodes:
        url = f"http://{node.endpoint}/minio/health/cluster?maintenance=true"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node.endpoint} did not see all drives in {timeout:.0f}s")
            time.sleep(0.2)


def top_locks(cluster: MinioCluster, index: int) -> str:
    """The locks held cluster-wide, as node ``index`` (0-based) reports them."""
    try:
        admin = MinioAdmin(
            endpoint=cluster.nodes[index].endpoint,
            credentials=StaticProvider(cluster.access_key, cluster.secret_key),
            secure=False,
        )
        # stale=true: also locks found on fewer lockers than their quorum (a dead owner's).
        response = admin._url_open(
            method="GET", command=_COMMAND.TOP_LOCKS, query_params={"stale": "true"}
        )
        return response.data.decode()[:3000]
    except Exception as exc:  # Diagnostics only.
        return f"top_locks failed: {exc}"


def upload(c: Minio, key: str, data: bytes, multipart: bool, go: threading.Barrier) -> None:
    """PutObject, or create / upload parts / complete as the registry's S3 store does.

    Multipart uploads wait on ``go`` before completing, so that the kill lands on the complete.
    """
    if not multipart:
        c.put_object(BUCKET, key, io.BytesIO(data), len(data))
        return
    headers: dict[str, str | list[str] | tuple[str]] = {"Content-Type": "application/octet-stream"}
    upload_id = c._create_multipart_upload(BUCKET, key, headers)
    etags = [
        c._upload_part(BUCKET, key, data[i : i + PART], None, upload_id, n)
        for n, i in enumerate(range(0, len(data), PART), start=1)
    ]
    go.wait()
    c._complete_multipart_upload(
        BUCKET, key, upload_id, [Part(n, e) for n, e in enumerate(etags, start=1)]
    )


def iteration(cluster: MinioCluster, variant: Variant, clients: list[Minio]) -> None:
    """Two uploads through nodes 2 and 3, a SIGKILL at a random moment, then a restart."""
    size = PART + 1024 if variant.multipart else 4096
    data = secrets.token_bytes(size)
    base = "blobs/sha256/" + secrets.token_hex(8)
    keys = [base, base] if variant.same_key else [base + "-a", base + "-b"]
    # Node 1 is no client's entry point; "coordinator" kills node 2, which runs upload 0.
    victim = cluster.nodes[1] if variant.kill_coordinator else cluster.nodes[0]
    results: list[tuple[float, str | None]] = [(0.0, None), (0.0, None)]
    start = threading.Barrier(3)
    go = threading.Barrier(3)

    def run(i: int) -> None:
        start.wait()
        t0 = time.monotonic()
        error = None
        try:
            upload(clients[i], keys[i], data, variant.multipart, go)
        except Exception as exc:  # Recorded, not raised: the probe wants every outcome.
            go.abort()
            error = f"{type(exc).__name__}: {str(exc)[:160]}"
        results[i] = (time.monotonic() - t0, error)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in (0, 1)]
    for t in threads:
        t.start()
    start.wait()
    if variant.multipart:
        with contextlib.suppress(threading.BrokenBarrierError):
            go.wait(60)
    time.sleep(random.uniform(0.0, 0.03))
    cluster.kill(victim)
    until = time.monotonic() + SLOW_S
    for t in threads:
        t.join(max(0.0, until - time.monotonic()))
    if any(t.is_alive() for t in threads):
        print("  stalled; locks seen by node 3:", top_locks(cluster, 2), flush=True)
    for t in threads:
        t.join()
    for latency, error in results:
        variant.latencies.append(latency)
        if error:
            variant.errors.append(error)
    cluster.start_node(victim)
    wait_all_up(cluster)
    print(
        time.strftime("%H:%M:%S"),
        variant.name,
        [(round(lat, 2), err) for lat, err in results],
        flush=True,
    )


def main() -> None:
    """Run the variants round-robin until the time is up and print a JSON summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=900.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lockprobe-"))
    print("workdir", workdir, flush=True)
    cluster = MinioCluster(workdir)
    variants = [
        Variant("put-same-killcoord", False, True, True),
        Variant("mpu-same-killcoord", True, True, True),
        Variant("put-distinct-killcoord", False, False, True),
        Variant("mpu-distinct-killcoord", True, False, True),
        Variant("put-same-kill1", False, True, False),
        Variant("mpu-same-kill1", True, True, False),
    ]
    try:
        cluster.start()
        wait_all_up(cluster)
        clients = [client(cluster, 1), client(cluster, 2)]
        if not clients[1].bucket_exists(BUCKET):
            clients[1].make_bucket(BUCKET)
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            for variant in variants:
                if time.monotonic() >= deadline:
                    break
                iteration(cluster, variant, clients)
    finally:
        cluster.stop()
        print(json.dumps([v.summary() for v in variants], indent=1), flush=True)


if __name__ == "__main__":
    main()

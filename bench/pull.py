"""SDK push/pull benchmark: ``Client.pull`` and ``Client.push`` as ratios to direct minio-py.

Run it with ``.venv/bin/python bench/pull.py`` (or ``make bench-pull BENCH_ARGS=...``). It starts
everything it needs and stops it again, also on Ctrl-C / SIGTERM:

* a real MinIO (``tests.support.minio.MinioServer``) and a throwaway PostgreSQL
  (``EmbeddedPostgres``, fsync off), as ``bench/artifacts.py`` does;
* the whole registry (``python -m modelregistry_server serve``: MetadataService and
  ArtifactService on one port, S3 blob store, external database) as a *subprocess*.

The model is a realistic 1 GiB mix: ``--files`` safetensors shards plus small config,
tokenizer and README files. Figures, each next to a baseline measured in the same run:

1. cold pull (empty cache) ÷ direct ``get_object`` of the same objects, same parallelism,
   each block hashed with SHA-256 as the SDK must (issue 16): speed, and client CPU;
2. warm pull (same cache, a fresh ``Client`` as after a restart): absolute seconds, and
   ``pull(dest=...)`` into a folder;
3. ``--pullers`` concurrent pull *processes*, each with its own empty cache, aggregate MB/s ÷
   the same number of concurrent direct-get processes (which hash too);
4. push of new content ÷ SHA-256 of each file + ``put_object`` straight to MinIO (same
   parallelism): speed, and all CPU (client + registry server + MinIO). The SDK pushes by
   direct PUT (its default on MinIO); as information, the same through ``Write`` and the
   other direct ways of ``bench/_presigned_push.py``;
5. re-push of the unchanged model: bytes sent (counted by a ``Progress`` in the "pushing"
   phase) and time ÷ the first push;
6. server memory over ``--memory-pushes`` consecutive pushes through ``Write`` of 4 new files
   at once, on a fresh server process: its peak RSS against idle + (parts in flight + 1) x
   part size x 4 streams + 64 MiB, and its idle RSS after each push against the one after the
   first.

Rounds alternate which side runs first. A short profile (one big file, one stream) splits the
cold pull's cost into HTTP client, hashing and the rest. The Markdown report goes to stdout,
progress to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import minio
from minio import Minio

from modelregistry import Client
from modelregistry.artifact.v1 import artifact_service_pb2, artifact_service_pb2_grpc
from modelregistry.metadata.v1 import model_version_pb2
from modelregistry_server.artifacts.domain.blob import blob_key
from modelregistry_server.common.config import ServerConfig

# `tests` is not an installed package: when run as a script, sys.path[0] is bench/, so make the
# repository root importable for the shared MinIO helper (the same one the tests use).
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
from bench._presigned_push import PresignedPush, presigned_push  # noqa: E402
from bench._support import (  # noqa: E402
    BUCKET,
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
    die_with_parent,
    log,
    renew_head,
    rotated,
    scratch_dir,
    self_cpu,
    sha256_file,
    start_minio,
    start_postgres,
    unwind_on_sigterm,
    verdict,
    with_token,
    write_incompressible,
)
from bench.artifacts import RssSampler  # noqa: E402

from tests.support.minio import MINIO_VERSION, MinioServer  # noqa: E402
from tests.support.progress import CountingProgress  # noqa: E402
from tests.support.registry_process import clean_env  # noqa: E402

MODEL = "bench-llm"
# Targets from issues 5 and 16. Issue 16: every baseline does the work the SDK must do too
# (it hashes what it downloads or uploads), so the ratios compare like with like.
TARGET_COLD = 0.9  # cold pull speed ÷ get_object + SHA-256, same parallelism
TARGET_COLD_CPU = 1.2  # cold pull client CPU ÷ that baseline's client CPU (at most)
TARGET_WARM_S = 0.2
TARGET_CONCURRENT = 0.9  # N pull processes ÷ N get_object + SHA-256 processes
TARGET_REPUSH_BYTES = 0.001
TARGET_PUSH_CPU = 1.3  # push CPU (client + server + MinIO) ÷ SHA-256 + put_object (at most)
TARGET_PUSH_SPEED = 0.8  # push speed ÷ that baseline
# The direct paths measured beside the push (bench/_presigned_push.py): label, and how it pushes.
PRESIGNED_WAYS: dict[str, tuple[str, Callable[[Minio, str, Path, int], PresignedPush]]] = {
    "sha256": (
        "direct push by presigned parts, SHA-256 per part, read back, staging key kept",
        partial(presigned_push, checksum="sha256", copy=False),
    ),
    "crc32c": (
        "direct push by presigned parts, CRC32C per part, read back, staging key kept",
        partial(presigned_push, checksum="crc32c", copy=False),
    ),
    "crc32c_copy": (
        "direct push by presigned parts, CRC32C per part, read back, copied to the digest's key",
        partial(presigned_push, checksum="crc32c", copy=True),
    ),
}
WORKER_TIMEOUT_S = 900.0
# The small files of a Hugging-Face-style checkpoint, beside the shards (bytes).
SMALL_FILES = {
    "config.json": 1_400,
    "generation_config.json": 180,
    "model.safetensors.index.json": 24_000,
    "special_tokens_map.json": 550,
    "tokenizer.json": 2_100_000,
    "tokenizer_config.json": 3_600,
    "README.md": 7_800,
}


def _log(message: str) -> None:
    """Progress to stderr, tagged with this script's name."""
    log(message, "bench-pull")


# ----------------------------------------------------------------------------- test data


def make_model(root: Path, size: int, shards: int) -> None:
    """Write a checkpoint of ``size`` bytes: ``shards`` big files and the usual small ones.

    Shards repeat one random block (:func:`write_incompressible`), stamped with the shard number.
    """
    root.mkdir(parents=True, exist_ok=True)
    small_total = sum(SMALL_FILES.values())
    for name, length in SMALL_FILES.items():
        (root / name).write_bytes(os.urandom(length))
    shard_bytes = max(0, size - small_total)
    block = bytearray(os.urandom(min(64 * MIB, max(1, shard_bytes // shards))))
    for index in range(shards):
        length = shard_bytes // shards + (shard_bytes % shards if index == shards - 1 else 0)
        path = root / f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        write_incompressible(path, length, block, tag=index)


def renew_model(root: Path) -> None:
    """Change every file's first bytes: a new push of it uploads new blobs, not a dedupe hit."""
    for path in sorted(root.iterdir()):
        renew_head(path)


@dataclasses.dataclass(frozen=True)
class BlobSpec:
    """One manifest file: where it goes, its S3 key, size and digest."""

    path: str
    key: str
    size: int
    sha256: str


def direct_download(
    client: Minio, blobs: list[BlobSpec], out_dir: Path, parallel: int, *, verify: bool = True
) -> int:
    """The baseline: ``get_object`` of each blob into ``out_dir/<path>``, ``parallel`` at once,
    each block hashed as it arrives and the digest checked (``verify``), as the SDK must.

    The same as ``fget_object`` inside (1 MiB blocks into a new file), without its temp-file
    rename. Biggest first, like the SDK. Returns the bytes written.
    """

    def one(blob: BlobSpec) -> int:
        path = out_dir / blob.path
        path.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        response = client.get_object(BUCKET, blob.key)
        try:
            with path.open("wb") as sink:
                for block in response.stream(MIB):
                    sink.write(block)
                    if verify:
                        hasher.update(block)
                written = sink.tell()
        finally:
            response.close()
            response.release_conn()
        if written != blob.size:
            raise RuntimeError(f"get_object wrote {written} bytes of {blob.path}, not {blob.size}")
        if verify and hasher.hexdigest() != blob.sha256:
            raise RuntimeError(f"get_object of {blob.path} hashed to another digest")
        return written

    order = sorted(blobs, key=lambda b: -b.size)
    with ThreadPoolExecutor(parallel, thread_name_prefix="direct-get") as pool:
        return sum(pool.map(one, order))


def direct_push(client: Minio, model_dir: Path, parallel: int) -> list[str]:
    """The push baseline: SHA-256 of each file (its content address), then ``put_object`` of
    it under that digest, ``parallel`` files at once, 16 MiB parts; returns the keys written."""

    def one(path: Path) -> str:
        with path.open("rb") as source:
            digest = hashlib.file_digest(source, "sha256").hexdigest()
            source.seek(0)
            key = f"direct-push/{digest}"
            client.put_object(BUCKET, key, source, path.stat().st_size, part_size=16 * MIB)
        return key

    files = sorted(model_dir.iterdir(), key=lambda p: -p.stat().st_size)
    with ThreadPoolExecutor(parallel, thread_name_prefix="direct-put") as pool:
        return list(pool.map(one, files))


def check_tree(root: Path, blobs: list[BlobSpec]) -> None:
    """Every manifest path under ``root`` hashes to its digest (run outside any timing)."""
    for blob in blobs:
        digest = sha256_file(root / blob.path)
        if digest != blob.sha256:
            raise RuntimeError(f"{root / blob.path} hashes to {digest}, expected {blob.sha256}")


# ----------------------------------------------------------------------------- worker processes


def worker_main(argv: list[str]) -> int:
    """One concurrent puller or direct getter: ``bench/pull.py _worker ...``.

    Prints ``ready`` once imported and set up, waits for ``go`` on stdin, does its one
    download, then prints a JSON line with its seconds, bytes and CPU seconds (from ``go``).
    MinIO credentials come from the environment.
    """
    parser = argparse.ArgumentParser(prog="bench/pull.py _worker")
    parser.add_argument("--mode", choices=("sdk", "direct"), required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--ref", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--parallel", type=int, required=True)
    parser.add_argument("--blobs", type=Path, required=True)
    args = parser.parse_args(argv)
    blobs = [BlobSpec(**b) for b in json.loads(args.blobs.read_text())]
    total = sum(b.size for b in blobs)
    action: Callable[[], object]
    if args.mode == "sdk":
        # The token comes from $MODELREGISTRY_TOKEN, set by the parent (as a user's shell would).
        client = Client(args.target, cache_dir=args.out)

        def action() -> object:
            return client.pull(args.ref, parallelism=args.parallel)
    else:
        direct = Minio(
            os.environ["BENCH_MINIO_ENDPOINT"],
            access_key=os.environ["BENCH_MINIO_ACCESS_KEY"],
            secret_key=os.environ["BENCH_MINIO_SECRET_KEY"],
            secure=False,
        )

        def action() -> object:
            return direct_download(direct, blobs, args.out, args.parallel)

    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    cpu0, start = self_cpu(), time.perf_counter()
    action()
    seconds, cpu = time.perf_counter() - start, self_cpu() - cpu0
    print(json.dumps({"seconds": seconds, "bytes": total, "cpu": cpu}), flush=True)
    return 0


class Workers:
    """Starts N worker processes, releases them together and collects their results."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self.procs: list[subprocess.Popen[str]] = []
        self.results: list[dict[str, float]] = []

    def spawn(self, count: int, args: list[str], out_dirs: list[Path], env: dict[str, str]) -> None:
        """Start ``count`` workers and wait until each has said ``ready``."""
        for index in range(count):
            log_file = (self._log_dir / f"worker-{index}.log").open("ab")
            try:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "_worker",
                        *args,
                        "--out",
                        str(out_dirs[index]),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log_file,
                    text=True,
                    env=env,
                    cwd=REPO_ROOT,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            finally:
                log_file.close()
            self.procs.append(proc)
        for proc in self.procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a worker failed to start; see {self._log_dir}")

    def run(self) -> None:
        """Say ``go`` to all, then wait for every result line."""
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"a worker died; see {self._log_dir}")
            self.results.append(json.loads(line))
        for proc in self.procs:
            proc.wait(WORKER_TIMEOUT_S)

    def cpu(self) -> float:
        """CPU seconds the workers spent between ``go`` and their result."""
        return sum(r["cpu"] for r in self.results)

    def close(self) -> None:
        """Kill any worker still running (only on errors or Ctrl-C)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


# ----------------------------------------------------------------------------- the run


@dataclasses.dataclass
class Settings:
    """What was measured, and how; recorded in the report."""

    size_mib: int
    files: int
    parallel: int
    pullers: int
    repeat: int
    warm_calls: int
    work_dir: str
    skip_profile: bool
    memory_pushes: int
    memory_file_mib: int
    part_size_mib: int
    parts_in_flight: int


@dataclasses.dataclass
class Results:
    """Raw samples, per measurement, one per round unless said otherwise."""

    cold_sdk: list[Sample] = dataclasses.field(default_factory=list)
    cold_direct: list[Sample] = dataclasses.field(default_factory=list)
    warm_restart: list[float] = dataclasses.field(default_factory=list)
    warm_same_client: list[float] = dataclasses.field(default_factory=list)
    warm_dest_new: list[float] = dataclasses.field(default_factory=list)
    warm_dest_again: list[float] = dataclasses.field(default_factory=list)
    many_sdk: list[Sample] = dataclasses.field(default_factory=list)
    many_direct: list[Sample] = dataclasses.field(default_factory=list)
    many_sdk_per_worker_s: list[list[float]] = dataclasses.field(default_factory=list)
    many_direct_per_worker_s: list[list[float]] = dataclasses.field(default_factory=list)
    push_first: list[Sample] = dataclasses.field(default_factory=list)
    push_direct: list[Sample] = dataclasses.field(default_factory=list)
    # The SDK's push through Write (direct_upload=False): what it costs where the store has no
    # URLs, or is not reachable from the pushing machine.
    push_write: list[Sample] = dataclasses.field(default_factory=list)
    # The direct path by presigned part URLs (bench/_presigned_push.py), keyed by its variant
    # (see PRESIGNED_WAYS): information beside target 6, not a target.
    push_presigned: dict[str, list[Sample]] = dataclasses.field(default_factory=dict)
    push_again: list[Sample] = dataclasses.field(default_factory=list)
    push_again_new_cache: list[Sample] = dataclasses.field(default_factory=list)
    push_first_bytes: list[int] = dataclasses.field(default_factory=list)
    push_again_bytes: list[int] = dataclasses.field(default_factory=list)
    push_again_new_cache_bytes: list[int] = dataclasses.field(default_factory=list)
    profile: dict[str, list[Sample]] = dataclasses.field(default_factory=dict)
    # Server memory across consecutive pushes (issue 16, target 7), on a fresh server process:
    # its RSS before the first push, its peak during each push, its RSS after each.
    memory_idle_start: int = 0
    memory_peaks: list[int] = dataclasses.field(default_factory=list)
    memory_idle_after: list[int] = dataclasses.field(default_factory=list)
    memory_push_bytes: int = 0


class Bench:
    """Owns the temp dirs, MinIO, PostgreSQL and the server; ``close()`` stops them."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._stack = contextlib.ExitStack()
        self.tmp = scratch_dir(self._stack, "mr-bench-pull-")
        need = (self.s.pullers + 3) * self.s.size_mib * MIB
        # Where the model, caches and downloads live: tmpfs by default (see README).
        self.work, self.s.work_dir = bulk_dir(
            self._stack, self.s.work_dir, need, self.tmp, "mr-bench-pull-"
        )
        self.minio = MinioServer()
        self.server: ServerProcess | None = None
        self.meter = Meter(None, None)
        self.results = Results()
        self.blobs: list[BlobSpec] = []
        self.version = 0  # of MODEL: the last one pushed, which the pull rounds pull
        self.database_url = ""
        self._dirs = 0

    @property
    def ref(self) -> str:
        """The reference the pull rounds pull: the last pushed version, by number."""
        return f"{MODEL}:{self.version}"

    def fresh_dir(self, label: str) -> Path:
        """A new, empty folder under the work dir."""
        self._dirs += 1
        return self.work / f"{label}-{self._dirs}"

    @contextlib.contextmanager
    def temp_dir(self, label: str) -> Iterator[Path]:
        """A :meth:`fresh_dir`, removed on exit: tmpfs space is memory, and a run needs plenty."""
        path = self.fresh_dir(label)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def start(self) -> None:
        """Start MinIO, PostgreSQL and the registry; create the bucket and database."""
        _log("starting MinIO, PostgreSQL and the registry")
        minio_proc = start_minio(self._stack, self.minio)
        _, database_url = start_postgres(self._stack, self.tmp / "postgres")
        self.database_url = database_url
        self.server = ServerProcess(self.tmp / "server", database_url, minio=self.minio)
        self._stack.callback(self.server.stop)
        self.server.start()
        self.meter = Meter(self.server.process, minio_proc)

    def close(self) -> None:
        """Stop everything started, in reverse order, and remove the temp dirs."""
        self._stack.close()

    @property
    def target(self) -> str:
        """The registry's ``host:port``."""
        assert self.server is not None
        return self.server.target

    @property
    def size(self) -> int:
        """Bytes in the model."""
        return sum(b.size for b in self.blobs)

    # --- push ------------------------------------------------------------------------------

    def push_rounds(self) -> None:
        """First push of new content, then re-push unchanged (same cache, and a new cache)."""
        model_dir = self.work / "model"
        _log(f"writing a {self.s.size_mib} MiB model ({self.s.files} shards + small files)")
        make_model(model_dir, self.s.size_mib * MIB, self.s.files)
        size = sum(p.stat().st_size for p in model_dir.iterdir())
        for round_no in range(self.s.repeat):
            if round_no:
                renew_model(model_dir)
            _log(f"push round {round_no + 1}/{self.s.repeat}")
            self._push_round(model_dir, size, round_no)
        shutil.rmtree(model_dir, ignore_errors=True)

    def _push_round(self, model_dir: Path, size: int, round_no: int) -> None:
        r = self.results
        with self.temp_dir("push-cache") as cache:
            with Client(self.target, cache_dir=cache, token=TOKEN) as client:

                def sdk() -> None:
                    sample, sent = self._push(client, model_dir, size)
                    r.push_first.append(sample)
                    r.push_first_bytes.append(sent)

                def sdk_write() -> None:
                    # A copy with new heads (untimed): nothing deduplicated against the other
                    # steps, and model_dir stays what the re-push below expects.
                    with self.temp_dir("push-write") as copy:
                        shutil.copytree(model_dir, copy, dirs_exist_ok=True)
                        renew_model(copy)
                        sample, _ = self._push(client, copy, size, direct=False)
                    r.push_write.append(sample)

                def direct() -> None:
                    keys: list[str] = []
                    minio_client = self.minio.client()

                    def put() -> None:
                        keys.extend(direct_push(minio_client, model_dir, self.s.parallel))

                    r.push_direct.append(self.meter.measure(size, put))
                    for key in keys:  # untimed: frees MinIO's disk
                        minio_client.remove_object(BUCKET, key)

                def presigned(way: str) -> None:
                    minio_client = self.minio.client()
                    pushes: list[PresignedPush] = []
                    push = PRESIGNED_WAYS[way][1]

                    def put() -> None:
                        pushes.append(push(minio_client, BUCKET, model_dir, self.s.parallel))

                    sample = self.meter.measure(size, put)
                    server = pushes[0].server_cpu
                    sample = dataclasses.replace(
                        sample, client_cpu=sample.client_cpu - server, server_cpu=server
                    )
                    r.push_presigned.setdefault(way, []).append(sample)
                    for key in pushes[0].keys:  # untimed: frees MinIO's disk
                        minio_client.remove_object(BUCKET, key)

                steps: list[Callable[[], None]] = [sdk, direct, sdk_write]
                steps += [partial(presigned, way) for way in PRESIGNED_WAYS]
                for step in rotated(steps, round_no):
                    step()
                sample, sent = self._push(client, model_dir, size)
                r.push_again.append(sample)
                r.push_again_bytes.append(sent)
            with self.temp_dir("push-cache") as new_cache:
                with Client(self.target, cache_dir=new_cache, token=TOKEN) as client:
                    sample, sent = self._push(client, model_dir, size)
                r.push_again_new_cache.append(sample)
                r.push_again_new_cache_bytes.append(sent)

    def _push(
        self, client: Client, model_dir: Path, size: int, *, direct: bool = True
    ) -> tuple[Sample, int]:
        """One timed push; returns its sample and the bytes of its "pushing" phase."""
        progress = CountingProgress()
        versions: list[model_version_pb2.ModelVersion] = []

        def push() -> None:
            versions.append(
                client.push(
                    model_dir,
                    model=MODEL,
                    parallelism=self.s.parallel,
                    progress=progress,
                    direct_upload=direct,
                )
            )

        sample = self.meter.measure(size, push)
        self._remember(versions[0])
        return sample, progress.bytes_for("pushing")

    def _remember(self, version: model_version_pb2.ModelVersion) -> None:
        """The pull rounds use the last pushed version, by number."""
        self.version = version.version
        self.blobs = [
            BlobSpec(path=f.path, key=blob_key(f.sha256), size=f.size_bytes, sha256=f.sha256)
            for f in version.files
        ]

    def warm_minio(self) -> None:
        """Read every object once, untimed: MinIO writes with O_DIRECT, so a fresh object is
        not in the page cache and the first reader alone would pay for the disk."""
        out = self.fresh_dir("warm-minio")
        direct_download(self.minio.client(), self.blobs, out, self.s.parallel)
        check_tree(out, self.blobs)
        shutil.rmtree(out)

    # --- server memory under real pushes ------------------------------------------------------

    def memory_rounds(self) -> None:
        """``memory_pushes`` pushes of 4 new files of ``memory_file_mib`` each, through the SDK
        (4 files in parallel, so 4 Write streams at once), to a fresh server process alone."""
        s, r = self.s, self.results
        model_dir = self.work / "memory-model"
        model_dir.mkdir()
        block = bytearray(os.urandom(64 * MIB))
        for index in range(4):
            write_incompressible(
                model_dir / f"part-{index}.bin", s.memory_file_mib * MIB, block, tag=index
            )
        r.memory_push_bytes = 4 * s.memory_file_mib * MIB
        server = ServerProcess(self.tmp / "server-memory", self.database_url, minio=self.minio)
        try:
            server.start()
            proc = server.process
            time.sleep(1.0)
            r.memory_idle_start = proc.memory_info().rss
            with (
                self.temp_dir("memory-cache") as cache,
                Client(server.target, cache_dir=cache, token=TOKEN) as client,
            ):
                for number in range(s.memory_pushes):
                    if number:
                        renew_model(model_dir)
                    _log(f"memory: push {number + 1}/{s.memory_pushes}")
                    with RssSampler(proc) as peak:
                        # Through Write: a direct upload moves no bytes through the server,
                        # and this row is about the server's memory while it relays them.
                        client.push(model_dir, model="memory", parallelism=4, direct_upload=False)
                    r.memory_peaks.append(max(peak.peak, proc.memory_info().rss))
                    # Idle: what the process keeps between pushes, once the work that follows a
                    # commit (the scan, events) is done too.
                    time.sleep(3.0)
                    r.memory_idle_after.append(proc.memory_info().rss)
        finally:
            server.stop()
            shutil.rmtree(model_dir, ignore_errors=True)

    # --- pull, one client ------------------------------------------------------------------

    def pull_rounds(self) -> None:
        """Cold SDK pull vs direct gets; warm pulls measured on the SDK's filled cache."""
        for round_no in range(self.s.repeat):
            _log(f"pull round {round_no + 1}/{self.s.repeat}: cold pulls of {self.ref}")
            self._pull_round(round_no)

    def _pull_round(self, round_no: int) -> None:
        r = self.results
        with (
            self.temp_dir("cache") as cache,
            self.temp_dir("direct") as out,
            Client(self.target, cache_dir=cache, token=TOKEN) as sdk,
        ):
            direct = self.minio.client()  # new HTTP pool each round, as the SDK has

            def get() -> None:
                download = partial(direct_download, direct, self.blobs, out, self.s.parallel)
                r.cold_direct.append(self.meter.measure(self.size, download))

            def pull() -> None:
                download = partial(sdk.pull, self.ref, parallelism=self.s.parallel)
                r.cold_sdk.append(self.meter.measure(self.size, download))

            for step in rotated([get, pull], round_no):
                step()
            if round_no == 0:
                check_tree(out, self.blobs)
                check_tree(sdk.cache.snapshot_dir(MODEL, self.version), self.blobs)
            shutil.rmtree(out)
            self._warm(sdk, cache)

    def _warm(self, sdk: Client, cache: Path) -> None:
        """Repeat pulls of the cached version: as after a restart, and into folders."""
        r = self.results

        def timed(action: Callable[[], object]) -> float:
            start = time.perf_counter()
            action()
            return time.perf_counter() - start

        def restart() -> None:
            with Client(self.target, cache_dir=cache, token=TOKEN) as client:
                client.pull(self.ref, parallelism=self.s.parallel)

        restart_s = [timed(restart) for _ in range(self.s.warm_calls)]
        same_s = [timed(lambda: sdk.pull(self.ref)) for _ in range(self.s.warm_calls)]
        new_s, again_s = [], []
        for _ in range(self.s.warm_calls):
            dest = self.fresh_dir("dest")
            new_s.append(timed(partial(sdk.pull, self.ref, dest=dest)))
            again_s.append(timed(partial(sdk.pull, self.ref, dest=dest)))
            shutil.rmtree(dest)
        # The median of the repeats per round; rounds are then summarised like everything else.
        r.warm_restart.append(statistics.median(restart_s))
        r.warm_same_client.append(statistics.median(same_s))
        r.warm_dest_new.append(statistics.median(new_s))
        r.warm_dest_again.append(statistics.median(again_s))

    # --- pull, many processes --------------------------------------------------------------

    def concurrent_rounds(self) -> None:
        """``pullers`` SDK processes vs as many direct-get processes, each with its own dir."""
        blobs_file = self.work / "blobs.json"
        blobs_file.write_text(json.dumps([dataclasses.asdict(b) for b in self.blobs]))
        env = with_token(clean_env())
        env.update(
            BENCH_MINIO_ENDPOINT=self.minio.endpoint,
            BENCH_MINIO_ACCESS_KEY=self.minio.access_key,
            BENCH_MINIO_SECRET_KEY=self.minio.secret_key,
        )
        common = ["--target", self.target, "--ref", self.ref, "--parallel", str(self.s.parallel)]
        common += ["--blobs", str(blobs_file)]
        r = self.results
        n = self.s.pullers

        def run(mode: str, samples: list[Sample], per_worker: list[list[float]]) -> None:
            dirs = [self.fresh_dir(f"many-{mode}") for _ in range(n)]
            log_dir = self.fresh_dir("logs")
            log_dir.mkdir()
            workers = Workers(log_dir)
            try:
                workers.spawn(n, ["--mode", mode, *common], dirs, env)
                samples.append(self.meter.measure(n * self.size, workers.run, workers.cpu))
                per_worker.append([w["seconds"] for w in workers.results])
            finally:
                workers.close()
                for path in dirs:
                    shutil.rmtree(path, ignore_errors=True)

        sides: list[Callable[[], None]] = [
            lambda: run("direct", r.many_direct, r.many_direct_per_worker_s),
            lambda: run("sdk", r.many_sdk, r.many_sdk_per_worker_s),
        ]
        for round_no in range(self.s.repeat):
            _log(f"concurrency round {round_no + 1}/{self.s.repeat}: {n} processes each way")
            for side in rotated(sides, round_no):
                side()

    # --- profile ---------------------------------------------------------------------------

    def profile(self) -> None:
        """One stream of the biggest file, four ways: where does the SDK's time go?

        minio-py ``get_object``; a presigned URL read with urllib like the SDK does (1 MiB
        ``readinto`` + write); the same plus sha256 (the SDK's verification); and the SDK
        itself (``allow_patterns`` = that file, parallelism 1), which adds the resolve, the
        URL call, the fsync and the cache admission.
        """
        big = max(self.blobs, key=lambda b: b.size)
        with authenticated_channel(self.target) as channel:
            stub = artifact_service_pb2_grpc.ArtifactServiceStub(channel)

            def url() -> str:
                reply = stub.GenerateDownloadUrl(
                    artifact_service_pb2.GenerateDownloadUrlRequest(name=f"blobs/{big.sha256}"),
                    timeout=30,
                )
                return str(reply.url)

            def minio_get(out: Path) -> None:
                direct_download(self.minio.client(), [big], out, 1, verify=False)

            def urllib_get(out: Path, *, hash_it: bool) -> None:
                out.mkdir(parents=True, exist_ok=True)
                hasher = hashlib.sha256()
                buffer = bytearray(MIB)
                view = memoryview(buffer)
                with (
                    urllib.request.urlopen(url(), timeout=60) as response,  # noqa: S310 - http
                    (out / "blob").open("wb") as sink,
                ):
                    while count := response.readinto(view):
                        sink.write(view[:count])
                        if hash_it:
                            hasher.update(view[:count])
                if hash_it and hasher.hexdigest() != big.sha256:
                    raise RuntimeError("presigned download hashed wrong")

            def sdk_get(out: Path) -> None:
                with Client(self.target, cache_dir=out, token=TOKEN) as client:
                    client.pull(self.ref, allow_patterns=[big.path], parallelism=1)

            ways: dict[str, Callable[[Path], None]] = {
                "minio_get": minio_get,
                "urllib": lambda out: urllib_get(out, hash_it=False),
                "urllib_sha256": lambda out: urllib_get(out, hash_it=True),
                "sdk": sdk_get,
            }
            for round_no in range(self.s.repeat):
                _log(
                    f"profile round {round_no + 1}/{self.s.repeat}: one {big.size // MIB} MiB file"
                )
                names = list(ways) if round_no % 2 == 0 else list(reversed(ways))
                for name in names:
                    with self.temp_dir(f"profile-{name}") as out:
                        sample = self.meter.measure(big.size, partial(ways[name], out))
                    self.results.profile.setdefault(name, []).append(sample)
            # A hash-only figure: sha256 of as many bytes from memory, 1 MiB updates, no I/O.
            block = memoryview(os.urandom(MIB))

            def hash_only() -> None:
                hasher = hashlib.sha256()
                for _ in range(big.size // MIB):
                    hasher.update(block)

            self.results.profile["sha256_only"] = [self.meter.measure(big.size, hash_only)]


# ----------------------------------------------------------------------------- report


def _summary(values: list[float], *, higher_is_better: bool) -> dict[str, Any]:
    best = max(values) if higher_is_better else min(values)
    return {"best": best, "median": statistics.median(values), "rounds": values}


def _cpu_ratios(samples: list[Sample], baseline: list[Sample]) -> list[float]:
    """All CPU (client + server + MinIO) of each round ÷ the baseline's in the same round."""
    return [
        (s.client_cpu + s.server_cpu + s.minio_cpu) / (d.client_cpu + d.server_cpu + d.minio_cpu)
        for s, d in zip(samples, baseline, strict=True)
    ]


def _speed_ratios(samples: list[Sample], baseline: list[Sample]) -> list[float]:
    """Speed of each round ÷ the baseline's in the same round."""
    return [d.seconds / s.seconds for s, d in zip(samples, baseline, strict=True)]


def build_report(settings: Settings, results: Results, size: int) -> dict[str, Any]:
    """Everything measured, summarised; the verdicts use the median of the rounds."""
    r = results
    cold_ratios = [d.seconds / s.seconds for s, d in zip(r.cold_sdk, r.cold_direct, strict=True)]
    many_ratios = [d.seconds / s.seconds for s, d in zip(r.many_sdk, r.many_direct, strict=True)]
    byte_ratios = [a / f for f, a in zip(r.push_first_bytes, r.push_again_bytes, strict=True)]
    new_cache_byte_ratios = [
        a / f for f, a in zip(r.push_first_bytes, r.push_again_new_cache_bytes, strict=True)
    ]
    time_ratios = [a.seconds / f.seconds for f, a in zip(r.push_first, r.push_again, strict=True)]
    new_cache_time_ratios = [
        a.seconds / f.seconds for f, a in zip(r.push_first, r.push_again_new_cache, strict=True)
    ]

    def side(samples: list[Sample]) -> dict[str, Any]:
        n = len(samples)
        gib = samples[0].nbytes / GIB if samples else 1.0
        return {
            "mb_s": _summary([x.mb_s for x in samples], higher_is_better=True),
            "seconds": _summary([x.seconds for x in samples], higher_is_better=False),
            "cpu_s_per_gib": {
                "client": sum(x.client_cpu for x in samples) / n / gib,
                "server": sum(x.server_cpu for x in samples) / n / gib,
                "minio": sum(x.minio_cpu for x in samples) / n / gib,
            },
            "foreign_load_max": max(x.foreign_load for x in samples),
            "samples": [dataclasses.asdict(x) for x in samples],
        }

    def against_push_baseline(samples: list[Sample]) -> dict[str, Any]:
        """An information row of the push: its ratios to the push baseline, and its side."""
        return {
            "cpu_ratio": _summary(_cpu_ratios(samples, r.push_direct), higher_is_better=False),
            "speed_ratio": _summary(_speed_ratios(samples, r.push_direct), higher_is_better=True),
            **side(samples),
        }

    cold_cpu_ratios = [
        s.client_cpu / d.client_cpu for s, d in zip(r.cold_sdk, r.cold_direct, strict=True)
    ]
    push_speed_ratios = _speed_ratios(r.push_first, r.push_direct)
    push_cpu_ratios = _cpu_ratios(r.push_first, r.push_direct)
    cold_cpu = _summary(cold_cpu_ratios, higher_is_better=False)
    push_speed = _summary(push_speed_ratios, higher_is_better=True)
    push_cpu = _summary(push_cpu_ratios, higher_is_better=False)
    cold = _summary(cold_ratios, higher_is_better=True)
    many = _summary(many_ratios, higher_is_better=True)
    warm = _summary(r.warm_restart, higher_is_better=False)
    all_samples = r.cold_sdk + r.cold_direct + r.many_sdk + r.many_direct
    all_samples += r.push_first + r.push_direct + r.push_again
    return {
        "date": datetime.date.today().isoformat(),
        "machine": {
            "cpus": CPUS,
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
            "minio_py": minio.__version__,
            "minio_server": MINIO_VERSION,
        },
        "settings": dataclasses.asdict(settings),
        "model_bytes": size,
        "cold_pull": {
            "ratio": cold,
            "target": TARGET_COLD,
            "pass": cold["median"] >= TARGET_COLD,
            "cpu_ratio": cold_cpu,
            "cpu_target": TARGET_COLD_CPU,
            "cpu_pass": cold_cpu["median"] <= TARGET_COLD_CPU,
            "sdk": side(r.cold_sdk),
            "direct": side(r.cold_direct),
        },
        "warm_pull": {
            "restart_s": warm,
            "target_s": TARGET_WARM_S,
            "pass": warm["median"] < TARGET_WARM_S,
            "same_client_s": _summary(r.warm_same_client, higher_is_better=False),
            "dest_new_folder_s": _summary(r.warm_dest_new, higher_is_better=False),
            "dest_again_s": _summary(r.warm_dest_again, higher_is_better=False),
        },
        "concurrent_pull": {
            "pullers": settings.pullers,
            "ratio": many,
            "target": TARGET_CONCURRENT,
            "pass": many["median"] >= TARGET_CONCURRENT,
            "sdk": side(r.many_sdk),
            "direct": side(r.many_direct),
            "sdk_worker_seconds": r.many_sdk_per_worker_s,
            "direct_worker_seconds": r.many_direct_per_worker_s,
        },
        "push": {
            "speed_ratio": push_speed,
            "speed_target": TARGET_PUSH_SPEED,
            "speed_pass": push_speed["median"] >= TARGET_PUSH_SPEED,
            "cpu_ratio": push_cpu,
            "cpu_target": TARGET_PUSH_CPU,
            "cpu_pass": push_cpu["median"] <= TARGET_PUSH_CPU,
            "sdk": side(r.push_first),
            "direct": side(r.push_direct),
            "write": against_push_baseline(r.push_write),
            "presigned": {
                way: {"label": PRESIGNED_WAYS[way][0], **against_push_baseline(samples)}
                for way, samples in r.push_presigned.items()
            },
        },
        "repush": {
            "first_bytes": r.push_first_bytes,
            "again_bytes": r.push_again_bytes,
            "byte_ratio": _summary(byte_ratios, higher_is_better=False),
            "time_ratio": _summary(time_ratios, higher_is_better=False),
            "target_bytes": TARGET_REPUSH_BYTES,
            "pass": max(byte_ratios) < TARGET_REPUSH_BYTES,
            "first": side(r.push_first),
            "again": side(r.push_again),
            "new_cache_bytes": r.push_again_new_cache_bytes,
            "new_cache_byte_ratio": _summary(new_cache_byte_ratios, higher_is_better=False),
            "new_cache_time_ratio": _summary(new_cache_time_ratios, higher_is_better=False),
            "new_cache": side(r.push_again_new_cache),
        },
        "profile": {name: side(samples) for name, samples in r.profile.items()},
        "memory": _memory_report(settings, r),
        "foreign_load_max": max(x.foreign_load for x in all_samples),
        "foreign_load_mean": statistics.fmean(x.foreign_load for x in all_samples),
    }


def _memory_report(settings: Settings, r: Results) -> dict[str, Any] | None:
    """Target 7: peak within idle + (parts in flight + 1) x part size x streams + 64 MiB, and
    each idle RSS after a push within 10 % of the idle RSS after the first push."""
    if not r.memory_peaks:
        return None
    streams = 4
    allowance = (settings.parts_in_flight + 1) * settings.part_size_mib * MIB * streams
    bound = r.memory_idle_start + allowance + 64 * MIB
    idle_first = r.memory_idle_after[0]
    idle_growth = [x / idle_first for x in r.memory_idle_after]
    return {
        "pushes": len(r.memory_peaks),
        "push_bytes": r.memory_push_bytes,
        "idle_start": r.memory_idle_start,
        "peaks": r.memory_peaks,
        "idle_after": r.memory_idle_after,
        "peak_bound": bound,
        "peak_pass": max(r.memory_peaks) <= bound,
        "idle_ratios": idle_growth,
        "idle_target": 1.10,
        "idle_pass": max(idle_growth) <= 1.10,
    }


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    s, m = report["settings"], report["machine"]
    cold, warm = report["cold_pull"], report["warm_pull"]
    many, push = report["concurrent_pull"], report["repush"]

    def rounds(values: list[float], fmt: str = "{:.2f}") -> str:
        return ", ".join(fmt.format(v) for v in values)

    def ms(x: float) -> str:
        return f"{x * 1000:.0f} ms"

    lines = [
        f"SDK pull/push benchmark, {report['date']}: {m['cpus']} CPUs, Python {m['python']}, "
        f"grpcio {m['grpcio']}, minio-py {m['minio_py']}, MinIO {m['minio_server']}.",
        f"Model: {report['model_bytes'] / MIB:.0f} MiB = {s['files']} shards + "
        f"{len(SMALL_FILES)} small files; parallelism {s['parallel']} (SDK and baseline); "
        f"{s['repeat']} rounds, order alternating; caches and downloads on {s['work_dir']}. "
        "Verdicts use the median round. MB/s = 10^6 bytes/s.",
        f"Other processes used up to {report['foreign_load_max']:.0%} of the CPUs during a timed "
        f"step (mean {report['foreign_load_mean']:.0%}).",
        "",
        "| Measurement | SDK | Baseline (same run) | Ratio best / median | Per-round | Target "
        "| Result |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    if report["foreign_load_max"] > FOREIGN_LOAD_WARNING:
        lines[3:3] = [
            "",
            "**Warning: other processes competed for the CPUs during this run; rerun on a "
            "quiet machine before trusting small differences.**",
        ]
    lines.append(
        f"| Cold pull, empty cache | {cold['sdk']['mb_s']['median']:.0f} MB/s "
        f"({cold['sdk']['seconds']['median']:.2f} s) | {cold['direct']['mb_s']['median']:.0f} MB/s "
        f"(`get_object` + SHA-256, {s['parallel']} threads) | {cold['ratio']['best']:.2f}x / "
        f"{cold['ratio']['median']:.2f}x | {rounds(cold['ratio']['rounds'])} "
        f"| ≥ {cold['target']:.2f}x | {verdict(cold['pass'])} |"
    )
    cc = cold["cpu_ratio"]
    lines.append(
        f"| Cold pull: client CPU | {cold['sdk']['cpu_s_per_gib']['client']:.2f} CPU-s/GiB | "
        f"{cold['direct']['cpu_s_per_gib']['client']:.2f} CPU-s/GiB (`get_object` + SHA-256) | "
        f"{cc['best']:.2f}x / {cc['median']:.2f}x | {rounds(cc['rounds'])} "
        f"| ≤ {cold['cpu_target']:.2f}x | {verdict(cold['cpu_pass'])} |"
    )
    lines.append(
        f"| Warm pull (new `Client`, same cache) | {ms(warm['restart_s']['best'])} / "
        f"{ms(warm['restart_s']['median'])} | — | — | "
        f"{rounds(warm['restart_s']['rounds'], '{:.3f}')} s | < {warm['target_s']:.1f} s "
        f"| {verdict(warm['pass'])} |"
    )
    lines.append(
        f"| {many['pullers']} concurrent pull processes, aggregate | "
        f"{many['sdk']['mb_s']['median']:.0f} MB/s | {many['direct']['mb_s']['median']:.0f} MB/s "
        f"({many['pullers']} `get_object` + SHA-256 processes) | {many['ratio']['best']:.2f}x / "
        f"{many['ratio']['median']:.2f}x | {rounds(many['ratio']['rounds'])} "
        f"| ≥ {many['target']:.2f}x | {verdict(many['pass'])} |"
    )
    new = report["push"]

    def total_cpu(x: dict[str, Any]) -> float:
        return float(sum(x["cpu_s_per_gib"].values()))

    lines.append(
        f"| Push of new content: speed | {new['sdk']['mb_s']['median']:.0f} MB/s | "
        f"{new['direct']['mb_s']['median']:.0f} MB/s (SHA-256 + `put_object`, {s['parallel']} "
        f"files at once) | {new['speed_ratio']['best']:.2f}x / "
        f"{new['speed_ratio']['median']:.2f}x | {rounds(new['speed_ratio']['rounds'])} "
        f"| ≥ {new['speed_target']:.2f}x | {verdict(new['speed_pass'])} |"
    )
    lines.append(
        f"| Push of new content: CPU, client + server + MinIO | {total_cpu(new['sdk']):.2f} "
        f"CPU-s/GiB | {total_cpu(new['direct']):.2f} CPU-s/GiB | {new['cpu_ratio']['best']:.2f}x"
        f" / {new['cpu_ratio']['median']:.2f}x | {rounds(new['cpu_ratio']['rounds'])} "
        f"| ≤ {new['cpu_target']:.2f}x | {verdict(new['cpu_pass'])} |"
    )
    for way in [
        {"label": "SDK push through `Write` (`direct_upload=False`)", **new["write"]},
        *new["presigned"].values(),
    ]:
        speed, cpu = way["speed_ratio"], way["cpu_ratio"]
        lines.append(
            f"| (info) {way['label']}: speed / all CPU | "
            f"{way['mb_s']['median']:.0f} MB/s / {total_cpu(way):.2f} CPU-s/GiB | "
            f"the same baseline | {speed['median']:.2f}x / {cpu['median']:.2f}x | "
            f"{rounds(speed['rounds'])} / {rounds(cpu['rounds'])} | — | — |"
        )
    first_mib = statistics.median(push["first_bytes"]) / MIB
    again = statistics.median(push["again_bytes"])
    lines.append(
        f"| Re-push unchanged: bytes sent | {again:.0f} B | {first_mib:.0f} MiB (first push) "
        f"| {push['byte_ratio']['best']:.4%} / {push['byte_ratio']['median']:.4%} | "
        f"{rounds(push['byte_ratio']['rounds'], '{:.4%}')} | < {push['target_bytes']:.1%} "
        f"| {verdict(push['pass'])} |"
    )
    lines.append(
        f"| Re-push unchanged: time | {push['again']['seconds']['median']:.3f} s | "
        f"{push['first']['seconds']['median']:.2f} s (first push) | "
        f"{push['time_ratio']['best']:.3f}x / {push['time_ratio']['median']:.3f}x | "
        f"{rounds(push['time_ratio']['rounds'], '{:.3f}')} | — | — |"
    )
    mem = report.get("memory")
    if mem:
        peaks = ", ".join(f"{x / MIB:.0f}" for x in mem["peaks"])
        lines.append(
            f"| Server peak RSS over {mem['pushes']} pushes of {mem['push_bytes'] / MIB:.0f} MiB "
            f"(4 files at once) | {max(mem['peaks']) / MIB:.0f} MiB | "
            f"{mem['peak_bound'] / MIB:.0f} MiB (idle {mem['idle_start'] / MIB:.0f} MiB + "
            f"{s['parts_in_flight'] + 1} x {s['part_size_mib']} MiB x 4 streams + 64 MiB) | "
            f"— | {peaks} MiB | ≤ bound | {verdict(mem['peak_pass'])} |"
        )
        idles = ", ".join(f"{x / MIB:.0f}" for x in mem["idle_after"])
        lines.append(
            f"| Server idle RSS after each push ÷ after the first | "
            f"{max(mem['idle_ratios']):.2f}x (worst) | {mem['idle_after'][0] / MIB:.0f} MiB | "
            f"— | {idles} MiB | ≤ {mem['idle_target']:.2f}x | {verdict(mem['idle_pass'])} |"
        )
    lines += [
        "",
        "Warm pulls of the cached version (median of "
        f"{s['warm_calls']} calls per round; best / median over rounds):",
        "",
        "| Warm pull | Best | Median |",
        "|---|---:|---:|",
    ]
    for key, label in (
        ("restart_s", "new `Client` + `pull(ref)` (a restarted server process)"),
        ("same_client_s", "same `Client`, `pull(ref)` again"),
        ("dest_new_folder_s", "`pull(ref, dest=<new folder>)` (hard links)"),
        ("dest_again_s", "`pull(ref, dest=<same folder>)` again"),
    ):
        lines.append(f"| {label} | {ms(warm[key]['best'])} | {ms(warm[key]['median'])} |")
    lines += [
        "",
        "Re-push with an empty cache on the pushing machine (digests recomputed): "
        f"{statistics.median(push['new_cache_bytes']):.0f} B sent, time "
        f"{push['new_cache_time_ratio']['median']:.3f}x the first push "
        f"({push['new_cache']['seconds']['median']:.2f} s).",
        "",
        "CPU seconds per GiB (mean over rounds; client = all client processes):",
        "",
        "| Step | Seconds (median) | MB/s (median) | Client | Registry server | MinIO |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def cpu_row(label: str, x: dict[str, Any]) -> None:
        c = x["cpu_s_per_gib"]
        lines.append(
            f"| {label} | {x['seconds']['median']:.2f} | {x['mb_s']['median']:.0f} | "
            f"{c['client']:.2f} | {c['server']:.2f} | {c['minio']:.2f} |"
        )

    cpu_row("cold pull, SDK", cold["sdk"])
    cpu_row("cold pull, `get_object` + SHA-256", cold["direct"])
    cpu_row(f"{many['pullers']} SDK pull processes", many["sdk"])
    cpu_row(f"{many['pullers']} `get_object` + SHA-256 processes", many["direct"])
    cpu_row("first push", push["first"])
    cpu_row("push baseline: SHA-256 + `put_object`", new["direct"])
    cpu_row("push through `Write` (`direct_upload=False`)", new["write"])
    for way in new["presigned"].values():
        cpu_row(way["label"], way)
    cpu_row("re-push, same cache", push["again"])
    prof = report["profile"]
    if prof:
        lines += [
            "",
            "Profile: the biggest file, one stream (median of rounds):",
            "",
            "| Way | Seconds | MB/s | Client CPU s/GiB | Server CPU s/GiB | MinIO CPU s/GiB |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        labels = {
            "minio_get": "minio-py `get_object` → file",
            "urllib": "presigned URL, urllib `readinto` 1 MiB → file",
            "urllib_sha256": "presigned URL, urllib → file + sha256",
            "sdk": "SDK `pull` of that file, parallelism 1",
            "sha256_only": "sha256 alone (in memory)",
        }
        for key, label in labels.items():
            if key in prof:
                x = prof[key]
                c = x["cpu_s_per_gib"]
                lines.append(
                    f"| {label} | {x['seconds']['median']:.2f} | {x['mb_s']['median']:.0f} | "
                    f"{c['client']:.2f} | {c['server']:.2f} | {c['minio']:.2f} |"
                )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- entry point


def parse_args(argv: list[str] | None = None) -> tuple[Settings, Path | None]:
    """Parse flags into the run's settings and the optional JSON output path."""
    parser = argparse.ArgumentParser(
        prog="bench/pull.py",
        description="SDK pull/push against a real MinIO and registry, as ratios to direct "
        "minio-py gets measured in the same run.",
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="model size (1024)")
    parser.add_argument("--files", type=int, default=4, help="big shards in the model (4)")
    parser.add_argument(
        "--parallel", type=int, default=4, help="downloads at once, SDK and baseline (4)"
    )
    parser.add_argument("--pullers", type=int, default=8, help="concurrent processes (8)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per measurement (3)")
    parser.add_argument("--warm-calls", type=int, default=5, help="warm pulls per round (5)")
    parser.add_argument(
        "--work-dir",
        default="auto",
        help="where the model, caches and downloads go (default: /dev/shm if it has room)",
    )
    parser.add_argument("--skip-profile", action="store_true", help="skip the one-file profile")
    parser.add_argument(
        "--memory-pushes",
        type=int,
        default=10,
        help="pushes of 4 new files in the server-memory run (10; 0 skips it)",
    )
    parser.add_argument(
        "--memory-file-mib", type=int, default=256, help="size of each of the 4 files (256)"
    )
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    if (
        min(args.size_mib, args.files, args.parallel, args.pullers, args.repeat, args.warm_calls)
        < 1
    ):
        parser.error("sizes and counts must be positive")
    if args.size_mib * MIB <= sum(SMALL_FILES.values()) + args.files:
        parser.error("--size-mib is too small for the small files and shards")
    settings = Settings(
        size_mib=args.size_mib,
        files=args.files,
        parallel=args.parallel,
        pullers=args.pullers,
        repeat=args.repeat,
        warm_calls=args.warm_calls,
        work_dir=args.work_dir,
        skip_profile=args.skip_profile,
        memory_pushes=args.memory_pushes,
        memory_file_mib=args.memory_file_mib,
        part_size_mib=ServerConfig.upload_part_size_mib,
        parts_in_flight=ServerConfig.upload_parts_in_flight,
    )
    json_path: Path | None = args.json
    return settings, json_path


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (0 even when a target is missed)."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["_worker"]:
        return worker_main(args[1:])
    settings, json_path = parse_args(args)
    unwind_on_sigterm()
    bench = Bench(settings)
    started = time.monotonic()
    try:
        bench.start()
        bench.push_rounds()
        bench.warm_minio()
        bench.pull_rounds()
        bench.concurrent_rounds()
        if settings.memory_pushes:
            bench.memory_rounds()
        if not settings.skip_profile:
            bench.profile()
    except KeyboardInterrupt:
        _log("interrupted; stopping everything")
        return 130
    finally:
        bench.close()
    report = build_report(settings, bench.results, bench.size)
    report["run_seconds"] = time.monotonic() - started
    print(render_markdown(report))
    _log(f"done in {report['run_seconds']:.0f} s")
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        _log(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

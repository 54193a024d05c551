"""What the benchmark scripts share: the processes they start and stop, CPU accounting, scratch
folders and a few report pieces.

The scripts import it as ``bench._support`` once they have put the repository root on sys.path
(as they must for ``tests.support`` anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Self, TypeVar

import psutil

from modelregistry_server.common.adapters.db import ensure_database
from modelregistry_server.common.adapters.embedded_postgres import EmbeddedPostgres
from tests.support.auth import (
    ADMIN_TOKEN,
    TOKEN_ENV,
    authenticated_sync_channel,
    bearer,
    install_admin_token,
)
from tests.support.minio import MinioServer, free_port
from tests.support.registry_process import clean_env, wait_serving

REPO_ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
GIB = 1024 * MIB
MB = 1_000_000  # throughput is reported in MB/s (10^6 bytes); ratios do not depend on it
BUCKET = "bench"
DATABASE = "bench"
SERVER_STOP_TIMEOUT_S = 45.0
CPUS = len(os.sched_getaffinity(0))
# Above this share of the CPUs used by other processes during timed transfers, the report
# warns that the figures are not trustworthy.
FOREIGN_LOAD_WARNING = 0.10
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Loaded in the parent: the forked child must not search for libc between fork and exec.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
T = TypeVar("T")
# Every server a benchmark starts adopts this admin token (written into its data dir before
# it starts, as the tests do), and every client presents it: raw channels through an
# interceptor (:func:`authenticated_channel`) or per call (``CALL_METADATA``, as the SDK does),
# SDK clients as ``token=``, child processes through ``$MODELREGISTRY_TOKEN``
# (:func:`with_token`). Made once per run, before anything is timed.
TOKEN = ADMIN_TOKEN
CALL_METADATA: tuple[tuple[str, str], ...] = bearer(TOKEN)


def log(message: str, tag: str = "bench") -> None:
    """Progress goes to stderr so stdout holds only the report."""
    print(f"[{tag} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def die_with_parent() -> None:
    """Runs in a child before exec: SIGTERM it if this script dies (even by SIGKILL).

    Without it an interrupted or killed benchmark would leave a registry server running.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _raise_interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt


def unwind_on_sigterm() -> None:
    """SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so every finally block stops its process."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def verdict(ok: bool) -> str:
    """A target's result as the report prints it."""
    return "PASS" if ok else "MISS"


def rotated(items: Sequence[T], round_no: int) -> list[T]:
    """``items`` in the order round ``round_no`` runs them: rotated by one each round (for two,
    alternating), so that no method always runs first, on the warmer or quieter machine."""
    shift = round_no % len(items)
    return [*items[shift:], *items[:shift]]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (hashlib.file_digest reads it in large blocks)."""
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()


def write_incompressible(
    path: Path, size: int, block: bytearray | None = None, tag: int = 0
) -> None:
    """Write ``size`` bytes to ``path`` by repeating ``block`` (default: 64 MiB of random bytes).

    Nothing on the data path compresses or deduplicates below whole blobs, so a repeated random
    block costs no realism, while os.urandom runs at only ~200 MB/s here. Each copy is stamped
    with ``tag`` (e.g. a file number) and its own number in its first 16 bytes.
    """
    if block is None:
        block = bytearray(os.urandom(min(64 * MIB, size)))
    with path.open("wb") as out:
        written, number = 0, 0
        while written < size:
            block[:16] = tag.to_bytes(8, "little") + number.to_bytes(8, "little")
            piece = memoryview(block)[: min(len(block), size - written)]
            out.write(piece)
            written += len(piece)
            number += 1


def renew_head(path: Path) -> None:
    """Overwrite the file's first bytes with random ones: its sha256 changes, so uploading it
    again is a new blob, not a free dedupe hit."""
    with path.open("r+b") as out:
        out.write(os.urandom(min(16, path.stat().st_size)))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, for the report."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


# ----------------------------------------------------------------------------- CPU accounting


def self_cpu() -> float:
    """CPU seconds of this process: RUSAGE_SELF covers every thread (gRPC's C-core threads and
    minio-py's upload pool included), which is what a client actually pays."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def reaped_children_cpu() -> float:
    """CPU seconds of the finished child processes this process has waited for (and theirs).

    A process started and ended inside one ``Meter.measure`` is in neither of its snapshots of
    the descendants: pass this (as a delta) for it, or its CPU counts as other processes' load.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_cpu() -> float:
    """CPU seconds of the whole machine: user + nice + system over all CPUs.

    Not irq/softirq: much of that is loopback network work done for our own transfers but
    charged to no process, so it would look foreign.
    """
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system)


def proc_cpu(proc: psutil.Process | None) -> float:
    """User + system CPU seconds of ``proc``; 0 for None or a process that is gone."""
    if proc is None:
        return 0.0
    with contextlib.suppress(psutil.Error):
        times = proc.cpu_times()
        return float(times.user + times.system)
    return 0.0


def cpu_by_pid(procs: Iterable[psutil.Process]) -> dict[int, float]:
    """User + system CPU seconds of each process, by pid; processes that are gone are left out."""
    found: dict[int, float] = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            found[proc.pid] = times.user + times.system
    return found


@dataclasses.dataclass(frozen=True)
class Sample:
    """One timed operation: wall seconds, bytes moved and CPU seconds of each party."""

    seconds: float
    nbytes: int
    client_cpu: float
    server_cpu: float
    minio_cpu: float
    # CPU time the whole machine spent in processes this run did not start during the
    # operation: another job on a 2-core machine makes the figures meaningless, so it is shown.
    foreign_cpu: float

    @property
    def mb_s(self) -> float:
        """Throughput in MB/s (10^6 bytes per second)."""
        return self.nbytes / MB / self.seconds if self.seconds else 0.0

    @property
    def foreign_load(self) -> float:
        """Share of all CPUs that processes not started by this run used meanwhile."""
        return self.foreign_cpu / (self.seconds * CPUS) if self.seconds else 0.0

    def per_gib(self, cpu: float) -> float:
        """CPU seconds per GiB moved."""
        return cpu / (self.nbytes / GIB)


class Meter:
    """Measures wall time and CPU of this process, the server, MinIO and everything else.

    Args:
        server: The registry server process, or None when it takes no part.
        minio_proc: The MinIO process, or None when it takes no part.
    """

    def __init__(self, server: psutil.Process | None, minio_proc: psutil.Process | None) -> None:
        self.server = server
        self.minio = minio_proc

    def measure(
        self,
        nbytes: int,
        action: Callable[[], object],
        extra_client_cpu: Callable[[], float] | None = None,
    ) -> Sample:
        """Run ``action``; ``extra_client_cpu`` adds CPU of worker processes it ran."""
        # Every descendant (MinIO, PostgreSQL, servers, workers) is ours, not foreign.
        tree0, self0, machine0 = _descendants_cpu(), self_cpu(), machine_cpu()
        server0, minio0 = proc_cpu(self.server), proc_cpu(self.minio)
        start = time.perf_counter()
        action()
        seconds = time.perf_counter() - start
        machine = machine_cpu() - machine0
        tree1 = _descendants_cpu()
        ours = sum(tree1[pid] - tree0[pid] for pid in tree1.keys() & tree0.keys())
        client = self_cpu() - self0 + (extra_client_cpu() if extra_client_cpu else 0.0)
        return Sample(
            seconds=seconds,
            nbytes=nbytes,
            client_cpu=client,
            server_cpu=proc_cpu(self.server) - server0,
            minio_cpu=proc_cpu(self.minio) - minio0,
            foreign_cpu=max(0.0, machine - ours - client),
        )


def _descendants_cpu() -> dict[int, float]:
    return cpu_by_pid(psutil.Process().children(recursive=True))


# ----------------------------------------------------------------------------- folders


def scratch_dir(stack: contextlib.ExitStack, prefix: str) -> Path:
    """A new temp dir, removed when ``stack`` closes.

    It is made searchable by everyone: the embedded PostgreSQL runs as an unprivileged user
    when we are root, and every parent of its data dir must be searchable (mkdtemp makes 0700).
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    stack.callback(shutil.rmtree, path, ignore_errors=True)
    path.chmod(0o755)
    return path


def bulk_dir(
    stack: contextlib.ExitStack, choice: str, need: int, fallback: Path, prefix: str
) -> tuple[Path, str]:
    """A new temp dir for bulk data, removed when ``stack`` closes.

    ``choice`` is a folder, or ``auto``: /dev/shm if it has more than ``need`` bytes free, else
    ``fallback``. On this VM disk writes cost the writer seconds of kernel CPU per GiB and swing
    widely between runs; that cost is the same for every method, so it only buries the
    differences being measured under noise (see README). Returns the folder and
    ``"<base> (<file system>)"`` for the report.
    """
    base = choice
    if base == "auto":
        shm = Path("/dev/shm")
        base = str(shm) if shm.is_dir() and shutil.disk_usage(shm).free > need else str(fallback)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    stack.callback(shutil.rmtree, path, ignore_errors=True)
    return path, f"{base} ({fs_type(Path(base))})"


def fs_type(path: Path) -> str:
    """The file system type holding ``path`` (tmpfs, ext4, ...), for the report."""
    best = ("", "unknown")
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint
        inside = path == Path(mount) or Path(mount) in path.resolve().parents
        if inside and len(mount) > len(best[0]):
            best = (mount, part.fstype)
    return best[1]


# ----------------------------------------------------------------------------- credentials

# Every call presents the admin token (its default secret).
authenticated_channel = authenticated_sync_channel


def with_token(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus ``MODELREGISTRY_TOKEN=TOKEN``, for child processes that use the SDK."""
    return {**env, TOKEN_ENV: TOKEN}


# ----------------------------------------------------------------------------- processes


def start_postgres(stack: contextlib.ExitStack, data_dir: Path) -> tuple[EmbeddedPostgres, str]:
    """A throwaway PostgreSQL (fsync off) with a database ``bench``, stopped when ``stack``
    closes. Returns the server and the database's URL."""
    postgres = EmbeddedPostgres(data_dir, durable=False)
    stack.callback(postgres.stop)
    postgres.start()
    asyncio.run(ensure_database(postgres.dsn(), DATABASE))
    return postgres, postgres.dsn(DATABASE)


def start_minio(stack: contextlib.ExitStack, minio: MinioServer) -> psutil.Process | None:
    """Start ``minio`` (stopped when ``stack`` closes) with the bucket; returns its process."""
    stack.enter_context(minio)
    minio.client().make_bucket(BUCKET)
    # MinIO is our child; its CPU per GiB shows how the 2 cores are shared.
    return next((p for p in psutil.Process().children() if p.name() == "minio"), None)


class ServerProcess:
    """``python -m modelregistry_server serve`` as a subprocess on a loopback port.

    Its data dir holds ``TOKEN`` as the bootstrap admin token before it starts, so clients
    that present it are principal ``admin``. A subprocess, so that the client and the server
    do not share a GIL and the server's CPU time and memory can be read with psutil without
    the client's own work mixed in.

    Args:
        work_dir: Where its data dir and log go.
        database_url: PostgreSQL URL (passed through the environment, not argv, so the
            password is not visible in ``ps``).
        minio: The MinIO it stores blobs in; None for the local blob dir in ``work_dir``.
        args: More ``serve`` arguments, e.g. ``artifacts`` to serve only that service.
        entry: What the interpreter runs, in place of ``-m modelregistry_server``.
        log_name: The log file's name in ``work_dir``.
    """

    def __init__(
        self,
        work_dir: Path,
        database_url: str,
        *,
        minio: MinioServer | None = None,
        args: Sequence[str] = (),
        entry: Sequence[str] = ("-m", "modelregistry_server"),
        log_name: str = "server.log",
    ) -> None:
        self.port = free_port()
        self._work_dir = work_dir
        self._log_path = work_dir / log_name
        self._database_url = database_url
        self._minio = minio
        self._args = list(args)
        self._entry = list(entry)
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        """``host:port`` to dial."""
        return f"127.0.0.1:{self.port}"

    @property
    def process(self) -> psutil.Process:
        """The server process, for CPU and memory readings."""
        assert self._popen is not None
        return psutil.Process(self._popen.pid)

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until its health check says SERVING."""
        self._work_dir.mkdir(parents=True, exist_ok=True)
        install_admin_token(self._work_dir / "data")  # adopted as principal `admin` at start
        argv = [
            sys.executable,
            *self._entry,
            "serve",
            *self._args,
            f"--listen={self.target}",
            f"--data-dir={self._work_dir / 'data'}",
            "--sweep-interval=0",
            "--log-level=WARNING",
        ]
        env = clean_env()
        env["MODELREGISTRY_DATABASE_URL"] = self._database_url
        if self._minio is not None:
            argv += [f"--s3-endpoint={self._minio.endpoint}", f"--s3-bucket={BUCKET}"]
            env.update(
                MODELREGISTRY_S3_ACCESS_KEY=self._minio.access_key,
                MODELREGISTRY_S3_SECRET_KEY=self._minio.secret_key,
            )
        with self._log_path.open("ab") as log_file:
            self._popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO_ROOT,
                # Own session: a Ctrl-C in the terminal reaches only this script, which then
                # stops the server itself, in order.
                start_new_session=True,
                preexec_fn=die_with_parent,  # only prctl: safe between fork and exec
            )
        try:
            wait_serving(self.target, self._popen, timeout, self.log_tail)
        except BaseException:
            self.stop()
            raise

    def log_tail(self, max_bytes: int = 4000) -> str:
        """The end of the server's log, for error messages."""
        try:
            return self._log_path.read_bytes()[-max_bytes:].decode(errors="replace")
        except OSError:
            return "<no log>"

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Graceful stop (SIGTERM, or SIGINT: the server treats both alike), then SIGKILL.

        Returns the exit code, or None if the process was not running.
        """
        popen, self._popen = self._popen, None
        if popen is None:
            return None
        if popen.poll() is not None:
            return popen.returncode
        popen.send_signal(sig)
        try:
            return popen.wait(SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"server did not stop within {SERVER_STOP_TIMEOUT_S:.0f} s of {sig.name}; killing")
            popen.kill()
            return popen.wait()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""A real MinIO server for integration tests and benchmarks.

DESIGN.md ("Tests and real dependencies") requires integration tests to run against a real MinIO,
built once with ``go install`` into the git-ignored ``.tools/bin`` folder and reused, and started
by the test command itself on loopback ports with a throwaway data dir. This module does both:

* :func:`ensure_minio_binary` finds or builds the pinned MinIO binary (``minio_build.py``).
* :class:`MinioServer` runs one MinIO process and stops it (also when Python dies).

It is plain library code (no pytest import) so that bench scripts can use it too. Running it as a
script (``python -m tests.support.minio``) builds the binary ahead of time and prints its path.
"""

from __future__ import annotations

import ctypes
import functools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from minio import Minio

# Re-exported: callers start MinIO from here and check its version with it.
from tests.support.minio_build import MINIO_VERSION as MINIO_VERSION
from tests.support.minio_build import ensure_minio_binary as ensure_minio_binary
from tests.support.minio_build import minio_binary_is_current as minio_binary_is_current

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

# From <linux/prctl.h>; not exposed by the stdlib.
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    The kernel picks an unused port for a socket bound to port 0; the socket is closed so the
    caller can bind it. Another process could grab it in between, which is unlikely enough for
    tests on loopback.

    Returns:
        The port number.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# libc, loaded in the parent: the forked child must not search for it (find_library runs
# subprocesses, which is unsafe between fork and exec). CDLL(None) is the already-loaded C library.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this (child) process when its parent dies.

    Runs in the forked child before exec (``preexec_fn``). Without it, a pytest run killed by
    SIGKILL, a CI timeout or a crash would leave MinIO servers running and holding their ports
    and data dirs; ``stop()`` and ``atexit`` do not run in those cases. Linux only; elsewhere it
    does nothing and a clean ``stop()`` is the only protection.

    Args:
        parent_pid: pid of the process that forked us, captured before the fork. If it is gone
            already (it died before prctl took effect), exit now instead of running orphaned.
    """
    if _LIBC is None:
        return
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


class MinioServer:
    """One MinIO server process on loopback ports, with throwaway credentials and data.

    Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with MinioServer() as server:
            client = server.client()

    Call :meth:`start` from a long-lived thread (normally the main thread): the kernel's
    parent-death signal fires when the *thread* that started MinIO exits, so starting it from a
    short-lived worker thread (e.g. ``asyncio.to_thread``) would kill MinIO when that thread ends.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        binary: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
    ) -> None:
        """Prepare a server; nothing runs until :meth:`start`.

        Args:
            data_dir: Directory MinIO stores objects in. Kept on :meth:`stop`. If None, a fresh
                temporary directory is used and removed on :meth:`stop`.
            binary: MinIO binary to run. If None, :func:`ensure_minio_binary` provides it (and
                may build it) when the server starts.
            startup_timeout: Seconds to wait for the server to answer its liveness check.
        """
        self._given_data_dir = data_dir
        self._binary = binary
        self._startup_timeout = startup_timeout
        # Fresh credentials per server: nothing can depend on well-known defaults.
        self.access_key = "mrtest-" + secrets.token_hex(6)
        self.secret_key = secrets.token_hex(20)
        self.port = 0
        self.console_port = 0
        self._work_dir: Path | None = None
        self._data_dir: Path | None = data_dir
        self._log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` of the S3 API, as minio-py's ``Minio()`` wants it."""
        self._require_started()
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the S3 API, e.g. ``http://127.0.0.1:9000``."""
        return f"http://{self.endpoint}"

    @property
    def data_dir(self) -> Path:
        """Directory MinIO stores its objects in."""
        self._require_started()
        assert self._data_dir is not None
        return self._data_dir

    @property
    def log_path(self) -> Path:
        """File that MinIO's stdout and stderr go to (removed by :meth:`stop`)."""
        self._require_started()
        assert self._log_path is not None
        return self._log_path

    def client(self) -> Minio:
        """Return a new minio-py client for this server (plain HTTP).

        Returns:
            A ``minio.Minio`` authenticated with this server's root credentials.
        """
        return Minio(self.endpoint, self.access_key, self.secret_key, secure=False)

    def start(self) -> MinioServer:
        """Start MinIO and wait until its liveness check answers 200.

        Returns:
            self, for chaining.

        Raises:
            RuntimeError: the binary is unavailable (see :func:`ensure_minio_binary`), or MinIO
                exited or did not become live within the start-up timeout; the message ends
                with the tail of MinIO's log.
        """
        if self._proc is not None:
            raise RuntimeError("MinioServer already started")
        binary = self._binary if self._binary is not None else ensure_minio_binary()

        self._work_dir = Path(tempfile.mkdtemp(prefix="modelregistry-minio-"))
        if self._given_data_dir is None:
            self._data_dir = self._work_dir / "data"
            self._data_dir.mkdir()
        else:
            self._data_dir = self._given_data_dir
            self._data_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = self._work_dir / "minio.log"
        # A restarted server keeps its address, as a real one would after a restart.
        self.port = self.port or free_port()
        self.console_port = self.console_port or free_port()

        # Start from the caller's environment minus any MINIO_* settings (a developer's own
        # MinIO config must not change the test server), then pin what the tests rely on.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_")}
        env.update(
            MINIO_ROOT_USER=self.access_key,
            MINIO_ROOT_PASSWORD=self.secret_key,
            MINIO_BROWSER="off",
            MINIO_UPDATE="off",
        )
        args = [
            str(binary),
            "server",
            str(self._data_dir),
            "--address",
            f"127.0.0.1:{self.port}",
            "--console-address",
            f"127.0.0.1:{self.console_port}",
            # Keep MinIO from creating ~/.minio/certs in the developer's home.
            "--certs-dir",
            str(self._work_dir / "certs"),
            "--quiet",
        ]
        # Log to a file, not a PIPE: nobody reads a pipe while tests run, and a full pipe buffer
        # would block MinIO mid-request.
        # The parent-death signal is set by util-linux's setpriv where there is one: Python code
        # in a preexec_fn runs in a child forked from a process that may hold gRPC's threads,
        # where it can crash before exec (seen as "Fatal Python error: Segmentation fault").
        setpriv = shutil.which("setpriv") if sys.platform == "linux" else None
        if setpriv is not None:
            args = [setpriv, "--pdeathsig", "KILL", *args]
        with self._log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self._work_dir,
                preexec_fn=(
                    None
                    if setpriv is not None
                    else functools.partial(_die_with_parent, os.getpid())
                ),
            )
        try:
            self._wait_until_live()
        except BaseException:
            # Includes KeyboardInterrupt and pytest-timeout's exception: never leak the process.
            self.stop()
            raise
        return self

    def _wait_until_live(self) -> None:
        assert self._proc is not None
        health = f"{self.url}/minio/health/live"
        deadline = time.monotonic() + self._startup_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"MinIO exited with code {code} during start-up.\n{self._log_tail_text()}"
                )
            try:
                with urllib.request.urlopen(health, timeout=1.0) as resp:  # noqa: S310 - http URL we built
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # not listening yet, or 503 while the object layer initialises
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"MinIO did not become live at {health} within "
                    f"{self._startup_timeout:.0f} s.\n{self._log_tail_text()}"
                )
            time.sleep(0.1)

    def log_tail(self, max_bytes: int = 4000) -> str:
        """Return the last ``max_bytes`` of MinIO's log, for error messages.

        Args:
            max_bytes: How much of the end of the log to return.

        Returns:
            The log tail, or an empty string if there is no log (yet).
        """
        if self._log_path is None:
            return ""
        try:
            with self._log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - max_bytes))
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _log_tail_text(self) -> str:
        tail = self.log_tail().strip()
        # No path: stop() removes the log, and start() calls stop() before this is shown.
        return f"MinIO log tail:\n{tail or '<empty>'}"

    def stop(self) -> None:
        """Stop MinIO (SIGTERM, then SIGKILL after 10 s) and remove what this object created.

        A data dir given to the constructor is kept. Safe to call more than once.
        """
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._work_dir is not None:
            # The data dir lives inside the work dir unless the caller gave one.
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def _require_started(self) -> None:
        if self._proc is None:
            raise RuntimeError("MinioServer is not running; call start() first")

    def __enter__(self) -> MinioServer:
        """Start the server; see :meth:`start`."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server; see :meth:`stop`."""
        self.stop()


def main() -> int:
    """Build (if needed) the pinned MinIO binary and print its path.

    Lets CI or a Makefile target pay the one-off build outside pytest, whose per-test timeout
    is shorter than a cold build.

    Returns:
        Process exit code.
    """
    try:
        print(ensure_minio_binary())
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

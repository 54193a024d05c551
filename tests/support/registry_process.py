"""The registry as a real ``python -m modelregistry_server serve`` subprocess.

For tests that need what an in-process server cannot give: SIGKILL and restart, SIGTERM, a
second server on the same database, or the embedded PostgreSQL default.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelregistry_server.common.embedded_postgres import free_loopback_port
from tests.support.minio import MinioServer


def clean_env() -> dict[str, str]:
    """This process's environment without ``MODELREGISTRY_*`` settings.

    A developer's own registry settings must not change what a test's subprocess does.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith("MODELREGISTRY_")}


def s3_flags(minio: MinioServer, bucket: str) -> list[str]:
    """``serve`` flags that keep blobs in ``bucket`` of ``minio``."""
    return [
        f"--s3-endpoint={minio.endpoint}",
        f"--s3-access-key={minio.access_key}",
        f"--s3-secret-key={minio.secret_key}",
        f"--s3-bucket={bucket}",
    ]


class RegistryProcess:
    """``serve`` on a free loopback port, with ``workdir/data`` and its log in ``workdir``.

    Without ``database_url`` it runs its embedded PostgreSQL; ``flags`` are further ``serve``
    flags (e.g. :func:`s3_flags`). :meth:`start` may be called again after a stop or kill.
    """

    def __init__(self, workdir: Path, *flags: str, database_url: str | None = None) -> None:
        self.target = f"127.0.0.1:{free_loopback_port()}"
        self.data_dir = workdir / "data"
        self.log = workdir / "server.log"
        database = [] if database_url is None else [f"--database-url={database_url}"]
        self.args = [
            sys.executable, "-m", "modelregistry_server", "serve", f"--listen={self.target}",
            f"--data-dir={self.data_dir}", *database, *flags,
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until its health check says SERVING."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=log, env=clean_env())
        try:
            self._wait_serving(self.process, timeout)
        except BaseException:
            self.kill()  # never leak a server that did not come up
            raise

    def _wait_serving(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise AssertionError(f"server exited early:\n{self.log.read_text()}")
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise AssertionError(f"server not SERVING within {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL, like a crash or a pulled plug: no clean-up runs."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def terminate(self) -> float:
        """SIGTERM, as an orchestrator would; return seconds until the server exited."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        return time.monotonic() - started

    def stop(self) -> None:
        """Terminate the server if it is running."""
        if self.process is not None and self.process.poll() is None:
            self.terminate()

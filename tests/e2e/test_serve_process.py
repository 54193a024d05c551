"""The server as a real subprocess on the embedded default: health, reflection, SIGTERM, restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import metadata_service_pb2_grpc, model_pb2
from modelregistry_server.common.embedded_postgres import free_loopback_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

METADATA = "modelregistry.metadata.v1.MetadataService"
ARTIFACT = "modelregistry.artifact.v1.ArtifactService"


class ServerProcess:
    """``python -m modelregistry_server serve`` with a data dir of its own."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_loopback_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log = data_dir.parent / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREGISTRY_")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelregistry_server", "serve",
                 f"--listen={self.target}", f"--data-dir={self.data_dir}"],
                stdout=log, stderr=log, env=env,
            )  # fmt: skip
        self.wait_serving()

    def wait_serving(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"server exited early:\n{self.log.read_text()}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise AssertionError(f"server not SERVING within {timeout}s:\n{self.log.read_text()}")

    def postgres_processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if proc.info["name"] == "postgres" and str(self.data_dir) in " ".join(cmdline):
                found.append(proc)
        return found

    def terminate(self) -> float:
        """SIGTERM the server; return seconds until it exited."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        return time.monotonic() - started


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    # Not pytest's tmp_path: its parent is 0700, which the unprivileged PostgreSQL user
    # (used when tests run as root) cannot traverse.
    with tempfile.TemporaryDirectory(prefix="mr-serve-") as tmp:
        Path(tmp).chmod(0o755)
        proc = ServerProcess(Path(tmp) / "data")
        yield proc
        if proc.process is not None and proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait()


def test_serve_reports_serving_lists_services_and_stops_cleanly_on_sigterm(
    server: ServerProcess,
) -> None:
    server.start()
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in (METADATA, ARTIFACT):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = list(reflection.ServerReflectionInfo(iter([request]), timeout=5))
        listed = {s.name for s in replies[0].list_services_response.service}
        assert {METADATA, ARTIFACT} <= listed

    assert server.postgres_processes(), "the embedded PostgreSQL should be running"
    elapsed = server.terminate()
    assert server.process is not None
    assert server.process.returncode == 0, server.log.read_text()
    assert elapsed < 5, f"SIGTERM took {elapsed:.1f}s"
    assert server.postgres_processes() == []


def test_data_survives_a_restart(server: ServerProcess) -> None:
    server.start()
    with grpc.insecure_channel(server.target) as channel:
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        stub.CreateModel(
            ms.CreateModelRequest(model_id="kept", model=model_pb2.Model(owner="team")), timeout=10
        )
    server.terminate()
    server.start()
    with grpc.insecure_channel(server.target) as channel:
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        model = stub.GetModel(ms.GetModelRequest(name="models/kept"), timeout=10)
    assert model.owner == "team"
    server.terminate()


def test_sigkill_of_the_server_leaves_no_postgres_behind(server: ServerProcess) -> None:
    server.start()
    assert server.process is not None
    server.process.kill()
    server.process.wait()
    deadline = time.monotonic() + 10
    while server.postgres_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.postgres_processes() == []


def test_bad_flag_value_exits_2_with_a_plain_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelregistry_server", "serve", "--listen=nowhere"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--listen must be host:port" in result.stderr
    assert "Traceback" not in result.stderr

"""The server as a real subprocess on the embedded default: health, reflection, thread stacks on
SIGUSR1, SIGTERM, restart."""

from __future__ import annotations

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
from tests.support.auth import authenticated_sync_channel
from tests.support.registry_process import RegistryProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

METADATA = "modelregistry.metadata.v1.MetadataService"
ARTIFACT = "modelregistry.artifact.v1.ArtifactService"


class EmbeddedServer(RegistryProcess):
    """``serve`` with a data dir of its own, so on the embedded PostgreSQL."""

    def postgres_processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if proc.info["name"] == "postgres" and str(self.data_dir) in " ".join(cmdline):
                found.append(proc)
        return found


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    # Not pytest's tmp_path: its parent is 0700, which the unprivileged PostgreSQL user
    # (used when tests run as root) cannot traverse.
    with tempfile.TemporaryDirectory(prefix="mr-serve-") as tmp:
        Path(tmp).chmod(0o755)
        proc = EmbeddedServer(Path(tmp))
        yield proc
        if proc.process is not None:
            proc.kill()


def test_serve_reports_serving_lists_services_and_stops_cleanly_on_sigterm(
    server: EmbeddedServer,
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

        # SIGUSR1: every thread's stack into the log (for a server that hangs), and it serves on.
        assert server.process is not None
        server.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        # The dump is written a frame at a time: wait for the main thread's outermost frames.
        while (
            "modelregistry_server/__main__.py"
            not in (log := server.log.read_text(errors="replace")).partition(
                "most recent call first"
            )[2]
        ):
            assert time.monotonic() < deadline, f"no thread stacks after SIGUSR1; log:\n{log}"
            time.sleep(0.1)
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    assert server.postgres_processes(), "the embedded PostgreSQL should be running"
    elapsed = server.terminate()
    assert server.process is not None
    assert server.process.returncode == 0, server.log.read_text()
    assert elapsed < 5, f"SIGTERM took {elapsed:.1f}s"
    assert server.postgres_processes() == []


def test_data_survives_a_restart(server: EmbeddedServer) -> None:
    server.start()
    with authenticated_sync_channel(server.target) as channel:
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        stub.CreateModel(
            ms.CreateModelRequest(model_id="kept", model=model_pb2.Model(owner="team")), timeout=10
        )
    server.terminate()
    server.start()
    with authenticated_sync_channel(server.target) as channel:
        stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        model = stub.GetModel(ms.GetModelRequest(name="models/kept"), timeout=10)
    assert model.owner == "team"
    server.terminate()


def test_sigkill_of_the_server_leaves_no_postgres_behind(server: EmbeddedServer) -> None:
    server.start()
    assert server.process is not None
    server.kill()
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

"""The chart's rendered pods run for real: ``podman kube play`` of the migration Job (as a
Pod), then of the metadata and the artifact Deployments, as ``helm template`` rendered them for
the tests' real PostgreSQL and MinIO on loopback and the host network. Each answers a gRPC
health check for its service and an authenticated call, which its Prometheus endpoint counts.

Workarounds for podman 4.3 (Debian bookworm's), confined to this file: ``kube play`` stores a
``Secret`` document as YAML but reads it back as JSON, so the Secret is created with ``podman
secret create`` from its data instead; it writes secret *volume* files still base64-encoded, so
the admin-token volume becomes a hostPath holding the same file; and it maps every
containerPort, which the host network cannot, so the ports are dropped. podman plays no Job, so
the Job's pod template is played as a Pod. Everything else (image, command, args, environment,
secret references, security context, read-only root, emptyDir) is the rendering.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelregistry.artifact.v1 import artifact_service_pb2 as as_
from modelregistry.artifact.v1 import artifact_service_pb2_grpc, blob_pb2
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import metadata_service_pb2_grpc
from tests.support import helm
from tests.support.auth import ADMIN_TOKEN, authenticated_sync_channel
from tests.support.minio import MinioServer
from tests.support.podman import ensure_image, ensure_kube_play, podman

# A cold start copies the image's layers (vfs) for each container: allow for a slow machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

METADATA_HEALTH = "modelregistry.metadata.v1.MetadataService"
ARTIFACT_HEALTH = "modelregistry.artifact.v1.ArtifactService"
SERVING_WITHIN_S = 120.0
MIGRATED_WITHIN_S = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class KubePlay:
    """Plays documents with ``podman kube play`` and takes every one down afterwards."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.played: list[Path] = []
        self.secrets: list[str] = []

    def secret(self, secret: dict[str, Any]) -> None:
        # What podman 4.3 reads back for secretKeyRef: a JSON map of key to base64 value.
        data = {key: base64.b64encode(value.encode()).decode() for key, value in
                secret["stringData"].items()}  # fmt: skip
        path = self.folder / "secret.json"
        path.write_text(json.dumps(data))
        name = secret["metadata"]["name"]
        podman("secret", "create", name, str(path))
        self.secrets.append(name)

    def play(self, name: str, document: dict[str, Any]) -> None:
        path = self.folder / f"{name}.json"
        path.write_text(json.dumps(document))  # JSON is YAML: podman reads it as is
        self.played.append(path)
        started = time.monotonic()
        podman("kube", "play", str(path), timeout=300)
        print(f"podman kube play {name}: {time.monotonic() - started:.1f}s")

    def down(self) -> None:
        for path in reversed(self.played):
            podman("kube", "play", "--down", str(path), timeout=120, check=False)
        for name in self.secrets:
            podman("secret", "rm", name, check=False)


@pytest.fixture
def kube_play(tmp_path: Path) -> Iterator[KubePlay]:
    ensure_kube_play()
    player = KubePlay(tmp_path)
    try:
        yield player
    finally:
        player.down()


@dataclass(frozen=True)
class Stack:
    """What the rendered pods connect to, and where each service listens."""

    release: str
    image: str
    database_url: str
    minio: MinioServer
    bucket: str


def _render(stack: Stack, grpc_port: int, metrics_port: int) -> list[dict[str, Any]]:
    """The chart rendered (and strictly validated) for this machine's real dependencies.

    Both services take the chart's one gRPC port; on the host network they need two, so each
    is played from its own rendering, which differs only in the ports.
    """
    repository, tag = stack.image.rsplit(":", 1)
    sets = [
        f"image.repository={repository}",
        f"image.tag={tag}",
        "image.pullPolicy=Never",
        f"database.url={stack.database_url}",
        "database.existingSecret=",
        f"s3.endpoint={stack.minio.endpoint}",
        f"s3.accessKey={stack.minio.access_key}",
        f"s3.secretKey={stack.minio.secret_key}",
        "s3.existingSecret=",
        f"s3.bucket={stack.bucket}",
        f"auth.adminToken={ADMIN_TOKEN}",
        # Loopback and the host network: DESIGN.md's podman settings, and nothing listening
        # beyond this machine.
        "hostNetwork=true",
        "server.listenHost=127.0.0.1",
        f"server.grpcPort={grpc_port}",
        f"server.httpPort={_free_port()}",
        "metadata.replicaCount=1",
        "artifacts.replicaCount=1",
        "metrics.enabled=true",
        f"metrics.port={metrics_port}",
        "migrations.waitSeconds=30",
    ]
    rendered = helm.template(sets=sets, release=stack.release)
    assert rendered.returncode == 0, rendered.output
    return helm.decoded(rendered.stdout)  # the strict validator passes it first


def _playable(deployment: dict[str, Any], token_dir: Path) -> dict[str, Any]:
    """The Deployment with podman 4.3's two adjustments (module docstring), checked first."""
    pod_spec = deployment["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    auth = next(volume for volume in pod_spec["volumes"] if volume["name"] == "auth")
    assert auth["secret"]["items"] == [{"key": "admin-token", "path": "admin-token"}]
    auth.pop("secret")
    auth["hostPath"] = {"path": str(token_dir), "type": "Directory"}
    # podman 4.3 turns every containerPort into a port mapping, which the host network cannot
    # have; on the host network the ports are the listen addresses anyway.
    assert "grpc" in [port["name"] for port in container.pop("ports")]
    return deployment


def _wait_for_exit(container: str) -> tuple[int, str]:
    deadline = time.monotonic() + MIGRATED_WITHIN_S
    while time.monotonic() < deadline:
        state = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container)
        status, code = state.stdout.split()
        if status in ("exited", "stopped"):
            logs = podman("logs", container)
            return int(code), logs.stderr + logs.stdout
        time.sleep(1)
    raise AssertionError(f"{container} still running after {MIGRATED_WITHIN_S:.0f}s")


def _wait_until_serving(target: str, service: str, container: str) -> float:
    """Seconds until the health of ``service`` is SERVING."""
    started = time.monotonic()
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() - started < SERVING_WITHIN_S:
            try:
                answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.monotonic() - started
            except grpc.RpcError:
                pass
            time.sleep(1)
    logs = podman("logs", container, check=False)
    raise AssertionError(f"not SERVING after {SERVING_WITHIN_S:.0f}s:\n{logs.stderr[-3000:]}")


def _migrate(kube_play: KubePlay, objects: list[dict[str, Any]], release: str) -> None:
    """The pre-install hook: the Job's pod migrates the empty database and exits 0."""
    job = helm.find(objects, "Job", f"{release}-modelregistry-migrate")
    job_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": job["metadata"]["name"]},
               "spec": job["spec"]["template"]["spec"]}  # fmt: skip
    kube_play.play("migrate", job_pod)
    started = time.monotonic()
    code, logs = _wait_for_exit(f"{release}-modelregistry-migrate-migrate")
    print(f"migration pod exited {code} after {time.monotonic() - started:.1f}s")
    assert code == 0, logs
    assert "schema metadata:" in logs
    assert "migration(s) applied" in logs


def _scraped_count(metrics_port: int, method: str) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as page:
        scraped = page.read().decode()
    return [line for line in scraped.splitlines() if method in line and "_count" in line]


def test_rendered_deployments_run_under_podman_kube_play_and_answer_health(
    empty_database: str,
    minio_server: MinioServer,
    minio_bucket: str,
    kube_play: KubePlay,
    tmp_path: Path,
) -> None:
    stack = Stack("smoke" + uuid.uuid4().hex[:6], ensure_image(), empty_database,
                  minio_server, minio_bucket)  # fmt: skip
    ports = {name: (_free_port(), _free_port()) for name in ("metadata", "artifacts")}
    renders = {name: _render(stack, *ports[name]) for name in ports}
    secret = helm.find(renders["metadata"], "Secret", f"{stack.release}-modelregistry")
    assert helm.find(renders["artifacts"], "Secret", secret["metadata"]["name"]) == secret
    kube_play.secret(secret)
    _migrate(kube_play, renders["metadata"], stack.release)

    token_dir = tmp_path / "auth"
    token_dir.mkdir()
    (token_dir / "admin-token").write_text(ADMIN_TOKEN)
    (token_dir / "admin-token").chmod(0o644)  # the pods' uid 10001 reads it
    for name, health_name in (("metadata", METADATA_HEALTH), ("artifacts", ARTIFACT_HEALTH)):
        deployment = helm.find(renders[name], "Deployment", f"{stack.release}-modelregistry-{name}")
        assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == ["serve", name]
        kube_play.play(name, _playable(deployment, token_dir))
        container = f"{stack.release}-modelregistry-{name}-pod-0-{name}"
        took = _wait_until_serving(f"127.0.0.1:{ports[name][0]}", health_name, container)
        print(f"{name} pod SERVING {took:.1f}s after kube play returned")

    # The database, the bucket and the admin token are real: authenticated calls work.
    with authenticated_sync_channel(f"127.0.0.1:{ports['metadata'][0]}") as channel:
        models = metadata_service_pb2_grpc.MetadataServiceStub(channel)
        answer = models.ListModels(ms.ListModelsRequest(page_size=1), timeout=10)
    assert list(answer.models) == []
    unknown = blob_pb2.BlobRef(sha256="ab" * 32, size_bytes=1)
    with authenticated_sync_channel(f"127.0.0.1:{ports['artifacts'][0]}") as channel:
        blobs = artifact_service_pb2_grpc.ArtifactServiceStub(channel)
        missing = blobs.FindMissingBlobs(as_.FindMissingBlobsRequest(blobs=[unknown]), timeout=10)
    assert list(missing.missing_blobs) == [unknown]
    # The metrics the chart turned on count those calls.
    assert _scraped_count(ports["metadata"][1], "ListModels")
    assert _scraped_count(ports["artifacts"][1], "FindMissingBlobs")

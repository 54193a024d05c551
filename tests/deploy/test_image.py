"""The container image (``make image``) run as an operator would, against real dependencies.

The container gets the tests' real PostgreSQL (a fresh database) and MinIO (a fresh bucket) on
the host network, its configuration only through ``MODELREGISTRY_*`` variables, and its secrets
(admin token, database URL with its password, S3 secret key) as files mounted read-only. The
SDK pushes and pulls a model through it; ``grpc_health_probe`` (the binary the image ships,
built with ``go install``) checks health from the host, podman runs the image's own HEALTHCHECK,
and ``podman stop`` must end it gracefully: the health service says NOT_SERVING to a watcher,
the process exits 0 on SIGTERM as PID 1, and the probe fails afterwards.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelregistry import Client
from modelregistry.metadata.v1 import model_version_pb2
from tests.support.auth import ADMIN_TOKEN
from tests.support.fixtures_minio import _test_deadline_paused
from tests.support.minio import MinioServer, free_port
from tests.support.podman import ensure_health_probe, ensure_image, podman, remove_containers

pytestmark = pytest.mark.e2e

IMAGE_UID = "10001"  # deploy/Containerfile's USER
STARTUP_TIMEOUT_S = 60.0
SERVING, NOT_SERVING = (
    health_pb2.HealthCheckResponse.SERVING,
    health_pb2.HealthCheckResponse.NOT_SERVING,
)


@pytest.fixture(scope="session")
def image() -> str:
    """The image, built by ``make test`` beforehand; built here (off the test's clock) if not."""
    with _test_deadline_paused():
        return ensure_image()


@pytest.fixture(scope="session")
def health_probe() -> Path:
    """``grpc_health_probe`` on the host, the same build the image ships."""
    with _test_deadline_paused():
        return ensure_health_probe()


def _probe(probe: Path, target: str) -> subprocess.CompletedProcess[str]:
    # Exit codes (grpc_health_probe's README): 0 SERVING, 2 connection failure, 4 NOT_SERVING.
    return subprocess.run(
        [str(probe), f"-addr={target}", "-connect-timeout=1s", "-rpc-timeout=1s"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip


def _write_secret(directory: Path, name: str, value: str) -> None:
    """A secret file only the image's user can read, as compose or Kubernetes would mount it."""
    path = directory / name
    path.write_text(value + "\n")
    os.chown(path, int(IMAGE_UID), int(IMAGE_UID))
    path.chmod(0o400)


@pytest.fixture
def secrets_dir(tmp_path: Path, database_url: str, minio_server: MinioServer) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    directory.chmod(0o755)  # the mount point itself must be searchable by uid 10001
    _write_secret(directory, "admin-token", ADMIN_TOKEN)
    _write_secret(directory, "database-url", database_url)
    _write_secret(directory, "s3-secret-key", minio_server.secret_key)
    return directory


@pytest.fixture
def container(
    image: str,
    health_probe: Path,
    secrets_dir: Path,
    minio_server: MinioServer,
    minio_bucket: str,
) -> Iterator[tuple[str, str]]:
    """The image serving both services on a free loopback port; yields (name, target)."""
    name = f"mr-test-image-{secrets.token_hex(4)}"
    target = f"127.0.0.1:{free_port()}"
    env = {
        "MODELREGISTRY_LISTEN": target,
        "MODELREGISTRY_ADMIN_TOKEN_FILE": "/run/secrets/modelregistry/admin-token",
        "MODELREGISTRY_DATABASE_URL_FILE": "/run/secrets/modelregistry/database-url",
        "MODELREGISTRY_S3_ENDPOINT": minio_server.endpoint,
        "MODELREGISTRY_S3_ACCESS_KEY": minio_server.access_key,
        "MODELREGISTRY_S3_SECRET_KEY_FILE": "/run/secrets/modelregistry/s3-secret-key",
        "MODELREGISTRY_S3_BUCKET": minio_bucket,
        "MODELREGISTRY_SWEEP_INTERVAL": "0",
    }
    env_flags = [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]
    podman(
        "run", "--detach", "--name", name, "--network", "host",
        "--volume", f"{secrets_dir}:/run/secrets/modelregistry:ro",
        *env_flags, image, "serve",
    )  # fmt: skip
    try:
        _wait_serving(name, health_probe, target)
        yield name, target
    finally:
        remove_containers([name])


def _logs(name: str) -> str:
    result = podman("logs", "--tail", "40", name, check=False)
    return (result.stdout + result.stderr)[-4000:]


def _wait_serving(name: str, probe: Path, target: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        result = _probe(probe, target)
        if result.returncode == 0:
            return
        state = podman("inspect", "--format", "{{.State.Status}}", name, check=False).stdout
        if state.strip() not in ("running", "created", "configured"):
            pytest.fail(f"the container stopped ({state.strip()}) during start-up:\n{_logs(name)}")
        if time.monotonic() > deadline:
            pytest.fail(f"not SERVING after {STARTUP_TIMEOUT_S:.0f} s: {result}\n{_logs(name)}")
        time.sleep(0.5)


def _watch_health(target: str, seen: list[int], ready: threading.Event) -> None:
    """Record every status the server's health Watch stream sends until it ends."""
    with grpc.insecure_channel(target) as channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=60
        )
        try:
            for reply in stream:
                seen.append(reply.status)
                ready.set()
        except grpc.RpcError:
            pass  # the server went away: the stream ends, what it said is in `seen`
        finally:
            ready.set()


def test_the_image_serves_push_and_pull_on_postgres_and_minio_and_stops_gracefully(
    container: tuple[str, str], health_probe: Path, tmp_path: Path
) -> None:
    name, target = container
    started = time.monotonic()
    served = _probe(health_probe, target)
    assert served.returncode == 0, served
    assert "status: SERVING" in served.stderr  # the probe reports on stderr
    healthcheck = podman("healthcheck", "run", name, check=False)
    assert healthcheck.returncode == 0, healthcheck  # the image's own HEALTHCHECK passes

    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (model / "sub" / "config.json").write_text('{"layers": 2}')
    with Client(target, cache_dir=tmp_path / "cache", token=ADMIN_TOKEN) as client:
        version = client.push(model, model="image-smoke", lineage=False)
        assert version.state == model_version_pb2.MODEL_VERSION_STATE_READY
        pulled = client.pull("image-smoke", tmp_path / "pulled")
    for relative in ("weights.bin", "sub/config.json"):
        assert (pulled / relative).read_bytes() == (model / relative).read_bytes()

    seen: list[int] = []
    watching = threading.Event()
    watcher = threading.Thread(target=_watch_health, args=(target, seen, watching), daemon=True)
    watcher.start()
    assert watching.wait(10)
    assert seen[:1] == [SERVING], seen
    stop = podman("stop", "--time", "20", name, timeout=60)
    assert stop.returncode == 0
    watcher.join(10)
    exit_code = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
    # 0: the server itself handled SIGTERM as PID 1 (a SIGKILL after --time would give 137).
    assert exit_code == "0", _logs(name)
    assert NOT_SERVING in seen, seen  # watchers were told before the port closed
    after = _probe(health_probe, target)
    assert after.returncode != 0, after
    print(f"image e2e: push+pull+stop in {time.monotonic() - started:.1f} s")


def test_the_image_runs_as_a_non_root_user_without_a_compiler(image: str) -> None:
    config_user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout
    assert config_user.strip() == f"{IMAGE_UID}:{IMAGE_UID}"
    # One container for all three checks: each `podman run` copies the whole image under vfs.
    script = (
        "id -u; for c in gcc cc c++ g++ clang; do command -v $c || true; done; "
        "modelregistry --help >/dev/null && echo cli-ok"
    )
    result = podman("run", "--rm", "--entrypoint", "sh", image, "-c", script)
    # The uid, no compiler found on PATH, and the CLI beside the server.
    assert result.stdout.split() == [IMAGE_UID, "cli-ok"], result.stdout + result.stderr

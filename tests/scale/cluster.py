"""The scaled-out registry on one machine: distributed MinIO, a PostgreSQL pair, service replicas.

- :class:`MinioCluster`: 4 ``minio`` processes on loopback ports forming one erasure set
  (4 drives, EC:2: reads need 2 drives, writes 3, so any one node may die).
- :class:`PostgresPair`: a primary and a hot standby fed by streaming replication
  (``pg_basebackup -R``), with **synchronous** commit to the standby, so that every commit the
  registry acknowledged is on the standby when it is promoted (with asynchronous replication a
  promotion may lose the last commits: "0 acknowledged writes lost" needs the synchronous kind).
- :func:`start_replicas`: 2 ``serve metadata`` and 2 ``serve artifacts`` processes on the pair's
  multi-host URL, each service reaching the other's replicas by a list of addresses.

Every process is started from the calling thread with a parent-death signal (MinIO, PostgreSQL),
or stopped by :meth:`Topology.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelregistry_server.common.adapters.db import ensure_database
from modelregistry_server.common.adapters.embedded_postgres import (
    EmbeddedPostgres,
    free_loopback_port,
    postgres_bin_dir,
)
from tests.support.auth import ADMIN_TOKEN
from tests.support.minio import ensure_minio_binary
from tests.support.registry_process import RegistryProcess

NODES = 4
BUCKET = "scale"
DATABASE = "registry"


@dataclass
class MinioNode:
    """One ``minio server`` process of the cluster; it keeps its port and drive across restarts."""

    index: int
    port: int
    drive: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` of its S3 API."""
        return f"127.0.0.1:{self.port}"


class MinioCluster:
    """Four MinIO nodes, one drive each, one erasure set; see the module docstring."""

    def __init__(self, workdir: Path) -> None:
        self.access_key = "scale-" + secrets.token_hex(6)
        self.secret_key = secrets.token_hex(20)
        self.workdir = workdir
        self.nodes = [
            MinioNode(i, free_loopback_port(), workdir / f"node{i}", workdir / f"node{i}.log")
            for i in range(1, NODES + 1)
        ]

    def _args(self, node: MinioNode) -> list[str]:
        # Every node gets the same server list (its own drive included) and its own address.
        drives = [f"http://{n.endpoint}{n.drive}" for n in self.nodes]
        return [
            shutil.which("setpriv") or "setpriv", "--pdeathsig", "KILL",
            str(ensure_minio_binary()), "server", *drives,
            "--address", node.endpoint,
            "--console-address", f"127.0.0.1:{free_loopback_port()}",
            "--certs-dir", str(self.workdir / f"certs{node.index}"), "--quiet",
        ]  # fmt: skip

    def _env(self, node: MinioNode) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_")}
        env.update(
            MINIO_ROOT_USER=self.access_key,
            MINIO_ROOT_PASSWORD=self.secret_key,
            MINIO_BROWSER="off",
            MINIO_UPDATE="off",
            # The drives are folders on the root disk, which MinIO refuses outside CI/CD mode.
            MINIO_CI_CD="on",
            # In a container (this machine has /.dockerenv) MinIO will not take a loopback
            # address as "this node" and waits forever for the name to resolve elsewhere; this
            # (MinIO's own override for orchestrated nodes) names the node's address outright.
            _MINIO_SERVER_LOCAL=node.endpoint,
        )
        return env

    def start_node(self, node: MinioNode) -> None:
        """Start ``node`` (again) on its port and drive."""
        node.drive.mkdir(parents=True, exist_ok=True)
        with node.log.open("ab") as log:
            node.process = subprocess.Popen(
                self._args(node), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self._env(node), cwd=self.workdir,
            )  # fmt: skip

    def start(self, timeout: float = 60.0) -> None:
        """Start all four and wait until the cluster has write quorum."""
        for node in self.nodes:
            self.start_node(node)
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 60.0, via: int = 0) -> None:
        """Wait until ``/minio/health/cluster`` on node ``via`` answers 200 (write quorum)."""
        url = f"http://{self.nodes[via].endpoint}/minio/health/cluster"
        deadline = time.monotonic() + timeout
        while True:
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(url, timeout=2) as answer,
            ):
                if answer.status == 200:
                    return
            if time.monotonic() > deadline:
                tail = self.nodes[via].log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"MinIO cluster not healthy within {timeout:.0f}s:\n{tail}")
            time.sleep(0.2)

    def kill(self, node: MinioNode) -> None:
        """SIGKILL one node, like a machine that lost power."""
        assert node.process is not None
        node.process.kill()
        node.process.wait()
        node.process = None

    def stop(self) -> None:
        """Stop every node still running."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(10)
                node.process.kill()
                node.process.wait()


class PostgresPair:
    """A primary and a synchronous hot standby; see the module docstring."""

    def __init__(self, workdir: Path) -> None:
        self.primary = EmbeddedPostgres(workdir / "primary", durable=True)
        self.standby = EmbeddedPostgres(workdir / "standby", durable=True)
        self.promoted_at: float | None = None

    def url(self) -> str:
        """The multi-host URL the registry uses: whichever of the two is writable."""
        primary = self.primary.dsn(DATABASE)
        head, _, rest = primary.partition("@127.0.0.1:")
        database = rest.partition("/")[2]
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return f"{head}@{hosts}/{database}?target_session_attrs=read-write"

    def start(self) -> None:
        """Start the primary, clone the standby from it and make replication synchronous."""
        self.primary.start()
        asyncio.run(ensure_database(self.primary.dsn(), DATABASE))
        self._base_backup()
        self.standby.start()
        asyncio.run(_make_synchronous(self.primary.dsn()))

    def _base_backup(self) -> None:
        """``pg_basebackup -R`` into the standby's folder, as the user PostgreSQL runs as."""
        pgdata = self.standby.pgdata
        pgdata.mkdir(parents=True)
        pgdata.chmod(0o700)
        owner = self.primary.pgdata.stat()
        os.chown(pgdata, owner.st_uid, owner.st_gid)
        self.standby.data_dir.chmod(0o755)
        password_file = self.primary.data_dir / "postgres-password"
        password = password_file.read_text().strip()
        shutil.copy(password_file, self.standby.data_dir / "postgres-password")
        _run_as_owner(
            pgdata,
            [
                str(postgres_bin_dir() / "pg_basebackup"), "-h", "127.0.0.1",
                "-p", str(self.primary.port), "-U", "postgres", "-D", str(pgdata),
                # -R writes standby.signal and primary_conninfo; -X stream copies the WAL the
                # backup needs over a second connection.
                "-R", "-X", "stream", "--checkpoint=fast",
            ],
            env={**os.environ, "PGPASSWORD": password},
        )  # fmt: skip

    def kill_primary(self) -> None:
        """SIGKILL the primary's postmaster; its backends end when they notice."""
        assert self.primary.pid is not None
        os.kill(self.primary.pid, signal.SIGKILL)

    def promote(self) -> float:
        """``pg_ctl promote`` the standby and wait until it takes writes; return the time."""
        pgdata = self.standby.pgdata
        _run_as_owner(
            pgdata, [str(postgres_bin_dir() / "pg_ctl"), "promote", "-w", "-D", str(pgdata)]
        )
        self.promoted_at = time.monotonic()
        return self.promoted_at

    def stop(self) -> None:
        """Stop both (a killed primary is already gone)."""
        self.standby.stop()
        self.primary.stop()


def _run_as_owner(pgdata: Path, args: list[str], env: dict[str, str] | None = None) -> None:
    """Run a PostgreSQL tool as the user owning ``pgdata`` (PostgreSQL refuses root).

    Through util-linux's ``setpriv``, not ``subprocess``'s ``user=``: that forks this process,
    which holds gRPC's threads, and the child can crash before exec (seen: ``pg_ctl`` "died
    with SIGSEGV"); ``setpriv`` lets subprocess use vfork and runs no Python in the child.
    """
    owner = pgdata.stat()
    if owner.st_uid != os.geteuid():
        switch = [f"--reuid={owner.st_uid}", f"--regid={owner.st_gid}", "--clear-groups"]
        args = [shutil.which("setpriv") or "setpriv", *switch, *args]
    done = subprocess.run(args, check=False, capture_output=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{args[-5:]} failed ({done.returncode}): {done.stderr.decode()}")


async def _make_synchronous(admin_dsn: str) -> None:
    """Commits wait for the standby's flush; set after the backup, so the standby (promoted
    later, with nobody to wait for) does not inherit it."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        await conn.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 30
        while (
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
            )
            != 1
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the standby did not become a synchronous standby in 30 s")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


@dataclass
class Topology:
    """Everything :func:`start_topology` started, and the addresses a client needs."""

    minio: MinioCluster
    postgres: PostgresPair
    metadata: list[RegistryProcess] = field(default_factory=list)
    artifacts: list[RegistryProcess] = field(default_factory=list)

    @property
    def metadata_target(self) -> str:
        """The metadata replicas as the SDK takes them: ``ip:port,ip:port``."""
        return ",".join(r.target for r in self.metadata)

    @property
    def artifact_target(self) -> str:
        """The artifact replicas, likewise."""
        return ",".join(r.target for r in self.artifacts)

    def server_errors(self, max_lines: int = 60) -> str:
        """The replicas' logged internal errors (the details of an INTERNAL stay there)."""
        found = []
        for replica in (*self.metadata, *self.artifacts):
            lines = replica.log.read_text(errors="replace").splitlines()
            for i, line in enumerate(lines):
                # What an INTERNAL answer logged (status.py), not asyncpg's pool warnings.
                if "internal error:" in line:
                    found += [f"{replica.log}:", *lines[max(0, i - 2) : i + 40]]
        return "\n".join(found[:max_lines])

    def stop(self) -> None:
        """Stop the replicas, then PostgreSQL and MinIO."""
        for replica in (*self.metadata, *self.artifacts):
            with contextlib.suppress(Exception):
                replica.stop()
        self.postgres.stop()
        self.minio.stop()


def wait_service_serving(target: str, service: str, timeout: float = 30.0) -> None:
    """Wait until the replica at ``target`` reports ``service`` SERVING (e.g. an artifact
    replica once its MinIO node is back): clients send it nothing before that."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            with contextlib.suppress(grpc.RpcError):
                answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service} at {target} not SERVING within {timeout:.0f}s")
            time.sleep(0.2)


def start_replicas(topology: Topology, workdir: Path) -> None:
    """Create and start 2 metadata and 2 artifact replicas; each service reaches the other's
    replicas by a list of addresses (round-robin, health-checked)."""
    url = topology.postgres.url()
    common = ["--health-check-interval=1", "--upload-part-size=8", "--shutdown-grace=1"]
    metadata = [RegistryProcess(workdir / f"metadata{i}", database_url=url) for i in (1, 2)]
    artifacts = [RegistryProcess(workdir / f"artifacts{i}", database_url=url) for i in (1, 2)]
    artifact_list = ",".join(r.target for r in artifacts)
    metadata_list = ",".join(r.target for r in metadata)
    for replica in metadata:
        replica.args += [
            "metadata", *common, f"--artifact-service-url={artifact_list}",
            f"--artifact-service-token={ADMIN_TOKEN}",
        ]  # fmt: skip
    # Each artifact replica talks to its own MinIO node, as a replica placed next to it would.
    for replica, node in zip(artifacts, topology.minio.nodes, strict=False):
        replica.args += [
            "artifacts", *common, f"--metadata-service-url={metadata_list}",
            f"--metadata-service-token={ADMIN_TOKEN}", f"--s3-endpoint={node.endpoint}",
            f"--s3-access-key={topology.minio.access_key}",
            f"--s3-secret-key={topology.minio.secret_key}", f"--s3-bucket={BUCKET}",
        ]  # fmt: skip
    for replica in (*metadata, *artifacts):
        # Die with the test process (a crashed run must not leave replicas serving): the
        # parent-death signal of util-linux's setpriv, as for MinIO and PostgreSQL.
        replica.args = [shutil.which("setpriv") or "setpriv", "--pdeathsig", "TERM", *replica.args]
    topology.metadata, topology.artifacts = metadata, artifacts
    # One at a time: the first runs the migrations (the others would wait on its lock anyway).
    for replica in (*metadata, *artifacts):
        replica.start(timeout=90)


def start_topology(workdir: Path) -> Topology:
    """Start MinIO, PostgreSQL and the replicas; on failure stop what was started."""
    topology = Topology(MinioCluster(workdir / "minio"), PostgresPair(workdir / "postgres"))
    try:
        topology.minio.start()
        topology.postgres.start()
        start_replicas(topology, workdir)
    except BaseException:
        topology.stop()
        raise
    return topology

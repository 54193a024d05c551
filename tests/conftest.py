"""Shared fixtures: a real PostgreSQL (one per session, a fresh database per test), a real
MinIO, an in-process registry on a real gRPC port, and a second registry process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from modelregistry.artifact.v1 import artifact_service_pb2_grpc
from modelregistry.metadata.v1 import metadata_service_pb2_grpc
from modelregistry_server.common.config import load_config
from modelregistry_server.server import RegistryServer
from tests.support.auth import ADMIN_TOKEN, TOKEN_ENV, authenticated_channel, install_admin_token
from tests.support.fixtures_minio import minio_bucket, minio_server  # noqa: F401 - fixtures
from tests.support.minio import MinioServer
from tests.support.postgres import (
    create_empty_database,
    create_template,
    create_test_database,
    drop_test_database,
    postgres_server,
)
from tests.support.registry_process import RegistryProcess, s3_flags

if TYPE_CHECKING:
    from modelregistry.artifact.v1.artifact_service_pb2_grpc import ArtifactServiceAsyncStub
    from modelregistry.metadata.v1.metadata_service_pb2_grpc import MetadataServiceAsyncStub


# The SDK and CLI (in this process and in the subprocesses tests start) find the admin token
# every test registry accepts where a user's would be: in MODELREGISTRY_TOKEN.
os.environ[TOKEN_ENV] = ADMIN_TOKEN


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """Superuser URL of the session's PostgreSQL."""
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
async def postgres_template(postgres_admin_url: str) -> str:
    """The migrated template database exists; returns the admin URL."""
    await create_template(postgres_admin_url)
    return postgres_admin_url


@pytest.fixture
async def database_url(postgres_template: str) -> AsyncIterator[str]:
    """URL of a fresh, migrated database for one test, dropped afterwards."""
    url = await create_test_database(postgres_template)
    yield url
    await drop_test_database(postgres_template, url)


@pytest.fixture
async def empty_database(postgres_admin_url: str) -> AsyncIterator[str]:
    """URL of a database with no schema of ours in it (migrations have everything to do),
    dropped afterwards."""
    url = await create_empty_database(postgres_admin_url)
    yield url
    await drop_test_database(postgres_admin_url, url)


@dataclass
class RunningRegistry:
    """An in-process registry reachable over a real gRPC channel."""

    server: RegistryServer
    target: str
    channel: grpc.aio.Channel

    @property
    def metadata(self) -> MetadataServiceAsyncStub:
        """A MetadataService stub on the channel."""
        return metadata_service_pb2_grpc.MetadataServiceStub(self.channel)

    @property
    def artifacts(self) -> ArtifactServiceAsyncStub:
        """An ArtifactService stub on the channel."""
        return artifact_service_pb2_grpc.ArtifactServiceStub(self.channel)


async def _start_registry(
    database_url: str, data_dir: Path, extra: list[str]
) -> AsyncIterator[RunningRegistry]:
    config = load_config(
        [
            "serve",
            "--listen=127.0.0.1:0",
            "--http-listen=127.0.0.1:0",
            f"--database-url={database_url}",
            f"--data-dir={data_dir}",
            "--shutdown-grace=0",
            "--sweep-interval=0",
            *extra,
        ],
        environ={},
    )
    install_admin_token(data_dir)
    server = RegistryServer(config)
    await server.start()
    target = f"127.0.0.1:{server.port}"
    channel = authenticated_channel(target)
    try:
        yield RunningRegistry(server, target, channel)
    finally:
        await channel.close(None)
        await server.stop(grace=0)


@pytest.fixture
async def registry(database_url: str, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """Both services on a free loopback port, this test's database, a local blob directory."""
    async for running in _start_registry(database_url, tmp_path / "data", []):
        yield running


@pytest.fixture
async def s3_registry(
    database_url: str,
    tmp_path: Path,
    minio_server: MinioServer,  # noqa: F811 - the fixture imported above
    minio_bucket: str,  # noqa: F811
) -> AsyncIterator[RunningRegistry]:
    """Both services with blobs in a fresh bucket of the session's real MinIO."""
    extra = s3_flags(minio_server, minio_bucket)
    async for running in _start_registry(database_url, tmp_path / "data", extra):
        yield running


@pytest.fixture
def second_server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """Another server process on the same database (and blob directory as ``registry``)."""
    server = RegistryProcess(tmp_path, "--sweep-interval=0", database_url=database_url)
    server.start()
    try:
        yield server.target
    finally:
        server.stop()

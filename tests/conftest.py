"""Shared fixtures: a real PostgreSQL (one per session, a fresh database per test), a real
MinIO, and an in-process registry on a real gRPC port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from modelregistry.metadata.v1 import metadata_service_pb2_grpc
from modelregistry_server.common.config import load_config
from modelregistry_server.server import RegistryServer
from tests.support.fixtures_minio import minio_bucket, minio_server  # noqa: F401 - fixtures
from tests.support.postgres import (
    create_template,
    create_test_database,
    drop_test_database,
    postgres_server,
)

if TYPE_CHECKING:
    from modelregistry.metadata.v1.metadata_service_pb2_grpc import MetadataServiceAsyncStub


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


@pytest.fixture
async def registry(database_url: str, tmp_path: Path) -> AsyncIterator[RunningRegistry]:
    """Both services on a free loopback port, backed by this test's database."""
    config = load_config(
        [
            "serve",
            "--listen=127.0.0.1:0",
            f"--database-url={database_url}",
            f"--data-dir={tmp_path / 'data'}",
            "--shutdown-grace=0",
        ],
        environ={},
    )
    server = RegistryServer(config)
    await server.start()
    target = f"127.0.0.1:{server.port}"
    channel = grpc.aio.insecure_channel(target)
    try:
        yield RunningRegistry(server, target, channel)
    finally:
        await channel.close(None)
        await server.stop(grace=0)

"""Fixtures of the end-to-end tests: SDK clients authenticated as ``sdk-tester``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelregistry import AsyncClient, Client
from tests.conftest import RunningRegistry
from tests.support.sdk import off_loop, sdk_tester


@pytest.fixture
async def client(registry: RunningRegistry) -> AsyncIterator[Client]:
    client = Client(registry.target, token=await sdk_tester(registry), offline=False)
    yield client
    await off_loop(client.close)


@pytest.fixture
async def aclient(registry: RunningRegistry) -> AsyncIterator[AsyncClient]:
    token = await sdk_tester(registry)
    async with AsyncClient(registry.target, token=token, offline=False) as client:
        yield client

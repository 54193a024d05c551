"""A registry process with its web UI for the browser tests, seeded with models to look at.

The server runs as its own process (Selenium's calls block the test's thread, so a server in
the test's event loop could not answer), on its embedded PostgreSQL and local blob directory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from modelregistry import Client
from modelregistry.access.v1 import access_service_pb2 as acc
from modelregistry.access.v1 import access_service_pb2_grpc, role_binding_pb2
from modelregistry_server.common.adapters.embedded_postgres import free_loopback_port
from tests.support.auth import ADMIN_TOKEN, bearer
from tests.support.registry_process import RegistryProcess
from tests.support.ui_seed import seed

WAIT_S = 15


@dataclass(frozen=True)
class UiServer:
    """The running registry: its gRPC target, its UI's base URL, and seeded facts."""

    target: str
    base_url: str
    versions: list[int]
    viewer_token: str

    def client(self) -> Client:
        """An SDK client as the admin."""
        return Client(self.target, token=ADMIN_TOKEN)


def _viewer_token(target: str) -> str:
    with grpc.insecure_channel(target) as channel:
        stub = access_service_pb2_grpc.AccessServiceStub(channel)
        made = stub.CreateAccessToken(
            acc.CreateAccessTokenRequest(principal="vera-viewer"),
            metadata=bearer(ADMIN_TOKEN),
            timeout=WAIT_S,
        )
        binding = role_binding_pb2.RoleBinding(subject="vera-viewer", role="viewer", scope="*")
        stub.CreateRoleBinding(
            acc.CreateRoleBindingRequest(role_binding=binding),
            metadata=bearer(ADMIN_TOKEN),
            timeout=WAIT_S,
        )
    return str(made.secret)


@pytest.fixture(scope="module")
def ui_server() -> Iterator[UiServer]:
    """A seeded registry with its UI on a free loopback port, for the tests of one module."""
    # A folder of its own under /tmp that the embedded PostgreSQL's user can reach (pytest's
    # temporary folders are private to root).
    folder = tempfile.TemporaryDirectory(prefix="modelregistry-ui-")
    workdir = Path(folder.name)
    workdir.chmod(0o755)
    http_port = free_loopback_port()
    process = RegistryProcess(workdir, f"--http-listen=127.0.0.1:{http_port}")
    process.start()
    try:
        with Client(process.target, token=ADMIN_TOKEN) as client:
            versions = seed(client)
        yield UiServer(
            process.target, f"http://127.0.0.1:{http_port}", versions, _viewer_token(process.target)
        )
    finally:
        process.stop()
        folder.cleanup()


def sign_in(driver: webdriver.Chrome, server: UiServer, token: str = ADMIN_TOKEN) -> None:
    """Sign in through the sign-in form, as a person would."""
    driver.get(server.base_url + "/signin")
    field = driver.find_element(By.ID, "token")
    field.clear()
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form[action='/signin'] button[type=submit]").click()
    wait_for(driver, By.CSS_SELECTOR, ".topbar .principal")


def wait_for(driver: webdriver.Chrome, by: str, selector: str) -> None:
    """Wait until an element is present (pages render on the server, but clicks navigate)."""
    WebDriverWait(driver, WAIT_S).until(
        expected_conditions.presence_of_element_located((by, selector))
    )

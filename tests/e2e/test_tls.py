"""TLS and mutual TLS on the registry's port, end to end: the real server, SDK and CLI.

Every certificate comes from a CA this test generates (``tests.support.tls``). Servers run in
process on this test's event loop, so the synchronous client and the CLI run in threads.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

import modelregistry_server.server as server_module
from modelregistry import AsyncClient, Client
from modelregistry._transport import NO_RETRY
from modelregistry.artifact.v1 import artifact_service_pb2_grpc
from modelregistry.errors import UnauthenticatedError, UnavailableError
from modelregistry.metadata.v1 import metadata_service_pb2 as ms
from modelregistry.metadata.v1 import metadata_service_pb2_grpc, model_pb2, model_version_pb2
from modelregistry_server.common.config import load_config
from modelregistry_server.common.rpc.tls_peer import peer_principal_name
from modelregistry_server.server import RegistryServer
from tests.support.artifacts import sha256_hex, upload
from tests.support.auth import ADMIN_TOKEN, authenticated_channel, install_admin_token
from tests.support.registry_process import clean_env
from tests.support.rpc import error_info
from tests.support.tls import KeyPair, TestCA

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SPIFFE_ID = "spiffe://modelregistry.test/ci-runner"
TLS_VARIABLES = ("MODELREGISTRY_TLS_CA", "MODELREGISTRY_TLS_CERT", "MODELREGISTRY_TLS_KEY")


@dataclass(frozen=True)
class Pki:
    """A trusted CA with server and client certificates, and an untrusted CA's client."""

    ca: TestCA
    server: KeyPair
    client: KeyPair  # SAN: a SPIFFE URI
    plain_client: KeyPair  # no SAN: the common name names it
    stranger: KeyPair  # signed by a CA the server does not trust


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = TestCA(tmp_path / "pki")
    other = TestCA(tmp_path / "other-pki", name="untrusted CA")
    return Pki(
        ca=ca,
        server=ca.server_cert(),
        client=ca.issue("client", common_name="ci-runner", uris=(SPIFFE_ID,)),
        plain_client=ca.issue("plain-client", common_name="notebook-7"),
        stranger=other.issue("stranger", common_name="mallory"),
    )


@pytest.fixture(autouse=True)
def no_registry_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (*TLS_VARIABLES, "MODELREGISTRY_URL"):
        monkeypatch.delenv(variable, raising=False)


if TYPE_CHECKING:  # grpc-stubs makes it generic; at run time it is a plain class
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor


class PrincipalProbe(_Interceptor):
    """Records, for each unary call, the method and what ``peer_principal_name`` makes of it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner, method = handler.unary_unary, details.method.rsplit("/", 1)[1]

        async def probed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            self.seen.append((method, peer_principal_name(context)))
            return await inner(request, context)

        return handler._replace(unary_unary=probed)


@asynccontextmanager
async def serving(database_url: str, data_dir: Path, *flags: str) -> AsyncIterator[str]:
    """An in-process registry on a free loopback port; yields its ``host:port``."""
    config = load_config(
        ["serve", "--listen=127.0.0.1:0", f"--database-url={database_url}",
         f"--data-dir={data_dir}", "--shutdown-grace=0", "--sweep-interval=0", *flags],
        environ={},
    )  # fmt: skip
    install_admin_token(data_dir)
    server = RegistryServer(config)
    await server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        await server.stop(grace=0)


def tls_flags(pki: Pki, *, mutual: bool = False) -> list[str]:
    flags = [f"--tls-cert={pki.server.cert}", f"--tls-key={pki.server.key}"]
    return [*flags, f"--tls-client-ca={pki.ca.cert}"] if mutual else flags


async def test_a_client_without_the_ca_cannot_connect_and_hears_why(
    database_url: str, tmp_path: Path, pki: Pki
) -> None:
    async with serving(database_url, tmp_path / "data", *tls_flags(pki)) as target:
        async with AsyncClient(target, retry=NO_RETRY, timeout=10) as plaintext:
            with pytest.raises(UnavailableError) as refused:
                await plaintext.create_model("never")
        message = str(refused.value)
        assert message.startswith(f"cannot reach the registry at {target}")
        assert "the connection is plaintext: if the server uses TLS, give its CA" in message
        assert "--tls-ca" in message

        # TLS, but trusting only the system's CAs (an https:// address) or another CA.
        strangers = [
            AsyncClient(f"https://{target}", retry=NO_RETRY, timeout=10),
            AsyncClient(target, retry=NO_RETRY, timeout=10, tls_ca=pki.stranger.cert),
        ]
        for client in strangers:
            async with client:
                with pytest.raises(UnavailableError) as untrusted:
                    await client.create_model("never")
            assert (
                "TLS: check that the CA (tls_ca, --tls-ca) signed the server's certificate"
                in str(untrusted.value)
            )

        async with AsyncClient(target, tls_ca=pki.ca.cert) as trusting:
            with pytest.raises(Exception, match="not found"):
                await trusting.get_model("never")  # the failed calls created nothing


async def test_with_the_ca_the_sdk_pushes_and_pulls_over_tls(
    database_url: str, tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "out"
    weights.mkdir()
    (weights / "model.bin").write_bytes(b"\x00\x01" * 5000)
    async with serving(database_url, tmp_path / "data", *tls_flags(pki)) as target:
        async with AsyncClient(target, tls_ca=pki.ca.cert, cache_dir=tmp_path / "c1") as client:
            # The commit makes the metadata service check the blobs with the artifact service.
            version = await client.push(weights, model="tls-demo", lineage=False)
            assert version.state == model_version_pb2.MODEL_VERSION_STATE_READY
            pulled = await client.pull("tls-demo", tmp_path / "pulled")
        assert (pulled / "model.bin").read_bytes() == (weights / "model.bin").read_bytes()

        # The synchronous client takes the CA from the environment.
        monkeypatch.setenv("MODELREGISTRY_TLS_CA", str(pki.ca.cert))

        def sync_get() -> model_pb2.Model:
            with Client(target, cache_dir=tmp_path / "c2") as sync_client:
                return sync_client.get_model("tls-demo")

        assert (await asyncio.to_thread(sync_get)).name == "models/tls-demo"


async def test_the_cli_talks_tls_with_the_ca_flag_or_variable(
    database_url: str, tmp_path: Path, pki: Pki
) -> None:
    async def cli(
        *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "modelregistry.cli", *args]
        environment = {
            **clean_env(), "MODELREGISTRY_CACHE": str(tmp_path / "cache"),
            "MODELREGISTRY_TOKEN": ADMIN_TOKEN, **(env or {}),
        }  # fmt: skip
        return await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, env=environment, timeout=90
        )

    weights = tmp_path / "out"
    weights.mkdir()
    (weights / "model.bin").write_bytes(b"cli over mutual TLS")
    async with serving(database_url, tmp_path / "data", *tls_flags(pki, mutual=True)) as target:
        by_flags = await cli(
            "--url", target, "--tls-ca", str(pki.ca.cert), "--tls-cert", str(pki.client.cert),
            "--tls-key", str(pki.client.key), "push", str(weights), "--model", "cli-tls-model",
        )  # fmt: skip
        assert by_flags.returncode == 0, by_flags.stderr
        variables = {
            "MODELREGISTRY_URL": target,
            "MODELREGISTRY_TLS_CA": str(pki.ca.cert),
            "MODELREGISTRY_TLS_CERT": str(pki.plain_client.cert),
            "MODELREGISTRY_TLS_KEY": str(pki.plain_client.key),
        }
        by_variables = await cli("ls", env=variables)
        assert by_variables.returncode == 0, by_variables.stderr
        assert "cli-tls-model" in by_variables.stdout

        no_certificate = await cli("--timeout", "5", "ls", "--tls-ca", str(pki.ca.cert),
                                   env={"MODELREGISTRY_URL": target})  # fmt: skip
        assert no_certificate.returncode == 5
        assert "if the server requires client certificates, give one (tls_cert and tls_key" in (
            no_certificate.stderr
        )


async def test_mutual_tls_admits_only_certified_clients_and_names_them(
    database_url: str, tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = PrincipalProbe()
    monkeypatch.setattr(server_module, "rpc_tracing_interceptor", lambda: probe)
    flags = tls_flags(pki, mutual=True)
    async with serving(database_url, tmp_path / "data", *flags) as target:
        refused = [
            AsyncClient(target, retry=NO_RETRY, timeout=10, tls_ca=pki.ca.cert),
            AsyncClient(
                target, retry=NO_RETRY, timeout=10, tls_ca=pki.ca.cert,
                tls_cert=pki.stranger.cert, tls_key=pki.stranger.key,
            ),
        ]  # fmt: skip
        for client in refused:
            async with client:
                with pytest.raises(UnavailableError):
                    await client.create_model("never")
        assert probe.seen == [], "a refused client reached a handler"

        for pair, model in ((pki.client, "by-spiffe"), (pki.plain_client, "by-cn")):
            async with AsyncClient(
                target, tls_ca=pki.ca.cert, tls_cert=pair.cert, tls_key=pair.key
            ) as client:
                await client.create_model(model)
                assert (await client.get_model(model)).name == f"models/{model}"

    assert ("CreateModel", SPIFFE_ID) in probe.seen
    assert ("CreateModel", "notebook-7") in probe.seen
    assert {name for method, name in probe.seen if method == "GetModel"} == {
        SPIFFE_ID,
        "notebook-7",
    }


async def test_split_services_reach_the_artifact_service_over_mutual_tls(
    database_url: str, tmp_path: Path, pki: Pki
) -> None:
    data = b"weights over mTLS"
    digest = sha256_hex(data)
    metadata_client = pki.ca.issue("metadata-service", common_name="metadata-service")
    async with serving(
        database_url, tmp_path / "artifacts", "artifacts", *tls_flags(pki, mutual=True)
    ) as artifacts:
        credentials = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(
                pki.ca.cert.read_bytes(), pki.client.key.read_bytes(), pki.client.cert.read_bytes()
            ),
            grpc.access_token_call_credentials(ADMIN_TOKEN),
        )
        async with grpc.aio.secure_channel(artifacts, credentials) as channel:
            await upload(artifact_service_pb2_grpc.ArtifactServiceStub(channel), data)

        with_certificate = [
            f"--artifact-service-url={artifacts}",
            f"--artifact-service-token={ADMIN_TOKEN}",
            f"--artifact-service-ca={pki.ca.cert}",
            f"--artifact-service-cert={metadata_client.cert}",
            f"--artifact-service-key={metadata_client.key}",
        ]
        without_certificate = with_certificate[:3]
        for flags, model in ((with_certificate, "split-ok"), (without_certificate, "split-no")):
            async with (
                serving(database_url, tmp_path / model, "metadata", *flags) as metadata,
                authenticated_channel(metadata) as channel,
            ):
                stub = metadata_service_pb2_grpc.MetadataServiceStub(channel)
                outcome = await _commit(stub, model, digest, len(data))
            if flags is with_certificate:
                assert outcome == "MODEL_VERSION_STATE_READY"
            else:
                assert outcome == "UNAVAILABLE ARTIFACT_SERVICE_UNAVAILABLE"


async def _commit(
    stub: metadata_service_pb2_grpc.MetadataServiceAsyncStub, model: str, digest: str, size: int
) -> str:
    """Create ``model`` with one version of one file and commit it; the state or the reason."""
    await stub.CreateModel(ms.CreateModelRequest(model_id=model, model=model_pb2.Model()))
    version = await stub.CreateModelVersion(
        ms.CreateModelVersionRequest(
            parent=f"models/{model}", model_version=model_version_pb2.ModelVersion()
        )
    )
    files = [model_version_pb2.ManifestFile(path="w.bin", sha256=digest, size_bytes=size)]
    try:
        committed = await stub.CommitModelVersion(
            ms.CommitModelVersionRequest(name=version.name, files=files), timeout=60
        )
    except grpc.aio.AioRpcError as exc:
        return f"{exc.code().name} {error_info(exc).reason}"
    return model_version_pb2.ModelVersionState.Name(committed.state)


def test_plaintext_on_a_non_loopback_address_is_refused_before_binding() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelregistry_server", "serve", "--listen=0.0.0.0:50051"],
        capture_output=True, text=True, env=clean_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        "--listen 0.0.0.0 is not a loopback address, so the server will not serve it in "
        "plaintext: give --tls-cert and --tls-key, or pass --insecure to allow plaintext"
    ) in result.stderr


async def test_with_mutual_tls_a_certificate_without_a_token_is_its_principal(
    database_url: str, tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELREGISTRY_TOKEN")
    mutual = tls_flags(pki, mutual=True)
    async with (
        serving(database_url, tmp_path / "data", *mutual) as target,
        AsyncClient(
            target,
            tls_ca=pki.ca.cert,
            tls_cert=pki.client.cert,
            tls_key=pki.client.key,
            token=ADMIN_TOKEN,
        ) as admin,
        AsyncClient(
            target, tls_ca=pki.ca.cert, tls_cert=pki.client.cert, tls_key=pki.client.key
        ) as client,
    ):
        await admin.grant(SPIFFE_ID, "writer", "by-*")
        me = await client.whoami()
        await client.create_model("by-certificate")
        audit = [e async for e in client.list_audit_events(model="by-certificate")]
    assert (me.principal, me.authentication_method) == (SPIFFE_ID, "mtls")
    assert [e.actor for e in audit] == [SPIFFE_ID]


async def test_with_tls_only_a_certificate_is_no_credential(
    database_url: str, tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELREGISTRY_TOKEN")
    async with (
        serving(database_url, tmp_path / "data", *tls_flags(pki)) as target,
        AsyncClient(target, tls_ca=pki.ca.cert, retry=NO_RETRY) as client,
    ):
        with pytest.raises(UnauthenticatedError) as info:
            await client.whoami()
    assert info.value.reason == "TOKEN_MISSING"

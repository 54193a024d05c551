"""Unit tests of the TLS, plaintext-listening and download-URL settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from modelregistry_server.artifacts.app.blobs import DEFAULT_URL_TTL, MAX_DOWNLOAD_URL_TTL
from modelregistry_server.common.config import (
    ConfigError,
    is_loopback,
    load_config,
)
from modelregistry_server.common.limits_config import DOWNLOAD_URL_MAX_TTL_S
from tests.support.tls import KeyPair, TestCA

REFUSAL = (
    "is not a loopback address, so the server will not serve it in plaintext: give --tls-cert "
    "and --tls-key, or pass --insecure to allow plaintext"
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(ca: TestCA) -> KeyPair:
    return ca.server_cert()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("[::1]", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("[::]", False),
        ("10.1.2.3", False),
        ("registry.example.com", False),
    ],
)
def test_loopback_addresses_are_recognised(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("listen", ["0.0.0.0:50051", "[::]:50051", "10.0.0.5:1", "myhost:50051"])
def test_plaintext_on_a_non_loopback_address_is_refused_in_one_sentence(listen: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(["serve", f"--listen={listen}"], environ={})
    host = listen.rpartition(":")[0]
    assert f"--listen {host} {REFUSAL}" in str(info.value)


def test_insecure_allows_plaintext_on_any_address_by_flag_or_environment() -> None:
    by_flag = load_config(["serve", "--listen=0.0.0.0:50051", "--insecure"], environ={})
    by_env = load_config(
        ["serve", "--listen=0.0.0.0:50051"], environ={"MODELREGISTRY_INSECURE": "true"}
    )
    for config in (by_flag, by_env):
        assert (config.insecure, config.tls) == (True, None)


def test_the_embedded_default_stays_plaintext_on_loopback() -> None:
    config = load_config(["serve"], environ={})
    assert (config.listen, config.tls, config.insecure) == ("127.0.0.1:50051", None, False)


def test_tls_files_are_read_by_flag_or_environment(ca: TestCA, server: KeyPair) -> None:
    config = load_config(
        ["serve", "--listen=0.0.0.0:50051", f"--tls-cert={server.cert}"],
        environ={"MODELREGISTRY_TLS_KEY": str(server.key)},
    )
    assert config.tls is not None
    assert config.tls.cert_chain == server.cert.read_bytes()
    assert config.tls.private_key == server.key.read_bytes()
    assert not config.tls.mutual
    assert "PRIVATE KEY" not in repr(config.tls)

    mutual = load_config(
        ["serve", f"--tls-cert={server.cert}", f"--tls-key={server.key}"],
        environ={"MODELREGISTRY_TLS_CLIENT_CA": str(ca.cert)},
    )
    assert mutual.tls is not None
    assert mutual.tls.mutual
    assert mutual.tls.client_ca == ca.cert.read_bytes()


def test_a_certificate_without_its_key_is_refused(server: KeyPair) -> None:
    with pytest.raises(ConfigError, match="--tls-cert and --tls-key go together"):
        load_config(["serve", f"--tls-cert={server.cert}"], environ={})
    with pytest.raises(ConfigError, match="--tls-cert and --tls-key go together"):
        load_config(["serve", f"--tls-key={server.key}"], environ={})


def test_a_client_ca_without_a_server_certificate_is_refused(ca: TestCA) -> None:
    with pytest.raises(ConfigError, match=r"--tls-client-ca \(mutual TLS\) needs --tls-cert"):
        load_config(["serve", f"--tls-client-ca={ca.cert}"], environ={})


def test_an_unreadable_file_is_named(tmp_path: Path, server: KeyPair) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError) as info:
        load_config(["serve", f"--tls-cert={missing}", f"--tls-key={server.key}"], environ={})
    assert f"--tls-cert {missing}: cannot read it (No such file or directory)" in str(info.value)


def test_a_key_that_does_not_match_the_certificate_is_refused(ca: TestCA, server: KeyPair) -> None:
    other = ca.server_cert("other")
    with pytest.raises(ConfigError, match="must be a PEM certificate and its unencrypted PEM"):
        load_config(["serve", f"--tls-cert={server.cert}", f"--tls-key={other.key}"], environ={})


def test_a_client_ca_that_is_not_a_certificate_is_refused(server: KeyPair) -> None:
    flags = [f"--tls-cert={server.cert}", f"--tls-key={server.key}"]
    with pytest.raises(ConfigError, match=r"--tls-client-ca .* holds no PEM CA certificate"):
        load_config(["serve", *flags, f"--tls-client-ca={server.key}"], environ={})


def test_artifact_service_tls_needs_the_artifact_service_url(ca: TestCA) -> None:
    with pytest.raises(ConfigError, match="apply only with --artifact-service-url"):
        load_config(["serve", f"--artifact-service-ca={ca.cert}"], environ={})
    config = load_config(
        [
            "serve",
            "metadata",
            "--artifact-service-url=127.0.0.1:1",
            "--artifact-service-token=secret",
            f"--artifact-service-ca={ca.cert}",
        ],
        environ={},
    )
    assert config.artifact_service_tls is not None
    assert config.artifact_service_tls.ca == ca.cert.read_bytes()


def test_download_urls_live_15_minutes_by_default_and_at_most_an_hour() -> None:
    assert load_config(["serve"], environ={}).download_url_ttl_s == 900
    assert timedelta(minutes=15) == DEFAULT_URL_TTL
    assert timedelta(seconds=DOWNLOAD_URL_MAX_TTL_S) == MAX_DOWNLOAD_URL_TTL == timedelta(hours=1)
    configured = load_config(["serve"], environ={"MODELREGISTRY_DOWNLOAD_URL_TTL": "300"})
    assert configured.download_url_ttl_s == 300
    for value in ("3601", "59", "90.5"):
        with pytest.raises(ConfigError, match="--download-url-ttl must be a whole number"):
            load_config(["serve", f"--download-url-ttl={value}"], environ={})


def test_direct_uploads_are_offered_unless_turned_off_by_flag_or_variable() -> None:
    assert load_config(["serve"], environ={}).direct_uploads is True
    assert load_config(["serve", "--no-direct-uploads"], environ={}).direct_uploads is False
    off = load_config(["serve"], environ={"MODELREGISTRY_NO_DIRECT_UPLOADS": "true"})
    assert off.direct_uploads is False

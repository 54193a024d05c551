"""Unit tests of the HTTP face's settings: ``--http-listen`` and ``--http-cors-origins``."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelregistry_server.common.config import ConfigError, load_config
from modelregistry_server.common.web_config import EMBEDDED_HTTP_LISTEN
from tests.support.tls import TestCA

DATABASE = "--database-url=postgresql://registry@db.internal/registry"


def test_the_embedded_default_serves_http_on_loopback_8080() -> None:
    config = load_config(["serve"], environ={})
    assert config.http is not None
    assert config.http.listen == EMBEDDED_HTTP_LISTEN == "127.0.0.1:8080"
    assert config.http.cors_origins == frozenset()


def test_a_production_database_leaves_http_off_unless_asked() -> None:
    assert load_config(["serve", DATABASE], environ={}).http is None
    config = load_config(["serve", DATABASE, "--http-listen=127.0.0.1:9090"], environ={})
    assert config.http is not None
    assert config.http.listen == "127.0.0.1:9090"


@pytest.mark.parametrize("value", ["off", "OFF", "Off", " off "])
def test_off_turns_http_off_even_on_the_embedded_default(value: str) -> None:
    assert load_config(["serve", f"--http-listen={value}"], environ={}).http is None
    assert load_config(["serve", DATABASE, f"--http-listen={value}"], environ={}).http is None


def test_the_environment_fills_an_unset_flag_and_the_flag_wins() -> None:
    env = {"MODELREGISTRY_HTTP_LISTEN": "127.0.0.1:7070"}
    by_env = load_config(["serve"], environ=env)
    assert by_env.http is not None
    assert by_env.http.listen == "127.0.0.1:7070"
    by_flag = load_config(["serve", "--http-listen=127.0.0.1:7171"], environ=env)
    assert by_flag.http is not None
    assert by_flag.http.listen == "127.0.0.1:7171"
    assert load_config(["serve"], environ={"MODELREGISTRY_HTTP_LISTEN": "off"}).http is None


@pytest.mark.parametrize(
    "listen", ["127.0.0.1:0", "localhost:8080", "[::1]:8080", "127.0.0.1:65535"]
)
def test_loopback_addresses_and_any_free_port_are_accepted(listen: str) -> None:
    config = load_config(["serve", f"--http-listen={listen}"], environ={})
    assert config.http is not None
    assert config.http.listen == listen


@pytest.mark.parametrize(
    "listen",
    ["8080", "127.0.0.1", "127.0.0.1:", ":8080", "127.0.0.1:http", "127.0.0.1:65536", "a:-1"],
)
def test_a_bad_address_is_refused_with_the_rule(listen: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(["serve", f"--http-listen={listen}"], environ={})
    assert (
        f"--http-listen must be host:port with a port from 0 to 65535, or off, not {listen!r}"
        in str(info.value)
    )


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "10.1.2.3:80", "ui.example:80"])
def test_plaintext_http_on_a_non_loopback_address_is_refused(listen: str) -> None:
    host = listen.rpartition(":")[0]
    with pytest.raises(ConfigError) as info:
        load_config(["serve", f"--http-listen={listen}"], environ={})
    message = str(info.value)
    assert f"--http-listen {host} is not a loopback address" in message
    assert "--tls-cert and --tls-key, or pass --insecure" in message
    assert "--listen " not in message  # the gRPC port is on loopback: only HTTP is named


def test_insecure_allows_plaintext_http_on_any_address() -> None:
    config = load_config(["serve", "--http-listen=0.0.0.0:8080", "--insecure"], environ={})
    assert config.http is not None
    assert config.http.listen == "0.0.0.0:8080"


def test_tls_of_the_grpc_port_covers_the_http_port(tmp_path: Path) -> None:
    server = TestCA(tmp_path / "pki").server_cert()
    config = load_config(
        [
            "serve",
            "--http-listen=0.0.0.0:8443",
            f"--tls-cert={server.cert}",
            f"--tls-key={server.key}",
        ],
        environ={},
    )
    assert config.http is not None
    assert config.tls is not None
    assert config.http.listen == "0.0.0.0:8443"


def test_cors_is_off_by_default_and_origins_are_normalised() -> None:
    config = load_config(
        ["serve", "--http-cors-origins= https://ui.example:8443/ ,http://localhost:3000,,"],
        environ={},
    )
    assert config.http is not None
    assert config.http.cors_origins == frozenset(
        {"https://ui.example:8443", "http://localhost:3000"}
    )


@pytest.mark.parametrize("origin", ["*", "https://*.example", "ui.example", "ftp://ui.example"])
def test_a_cors_entry_that_is_not_an_origin_is_refused(origin: str) -> None:
    with pytest.raises(ConfigError, match=r"--http-cors-origins: .* is not an origin"):
        load_config(["serve", f"--http-cors-origins={origin}"], environ={})


def test_every_http_problem_is_reported_with_the_others() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            ["serve", "--listen=nope", "--http-listen=nope", "--http-cors-origins=*"], environ={}
        )
    message = str(info.value)
    assert "--listen must be" in message
    assert "--http-listen must be" in message
    assert "--http-cors-origins" in message

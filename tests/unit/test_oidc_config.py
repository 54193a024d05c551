"""The ``--oidc-*`` flags: defaults, the environment, and a clear error for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelregistry_server.common.config import ConfigError, load_config
from modelregistry_server.common.oidc_config import OidcConfig

ISSUER = "https://login.example.com/realms/ml"


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text('{"keys": []}')
    return path


def _problems(*flags: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(["serve", *flags], environ=env or {})
    return str(info.value)


def test_oidc_is_off_by_default() -> None:
    assert load_config(["serve"], environ={}).oidc is None


def test_an_issuer_with_audience_and_jwks_file_gets_the_defaults(jwks_file: Path) -> None:
    config = load_config(
        ["serve", f"--oidc-issuer={ISSUER}", "--oidc-audience=modelregistry",
         f"--oidc-jwks-file={jwks_file}"],
        environ={},
    )  # fmt: skip
    assert config.oidc == OidcConfig(
        issuer=ISSUER, audiences=("modelregistry",), jwks_file=jwks_file.resolve(),
        jwks_url=None, algorithms=("RS256",), principal_claim="sub", groups_claim="groups",
        principal_prefix="", leeway_s=60.0,
    )  # fmt: skip


def test_every_oidc_flag_reads_its_environment_variable() -> None:
    env = {
        "MODELREGISTRY_OIDC_ISSUER": ISSUER,
        "MODELREGISTRY_OIDC_AUDIENCE": "cli, web",
        "MODELREGISTRY_OIDC_JWKS_URL": "https://login.example.com/certs",
        "MODELREGISTRY_OIDC_ALGORITHMS": "RS256,ES256",
        "MODELREGISTRY_OIDC_PRINCIPAL_CLAIM": "email",
        "MODELREGISTRY_OIDC_GROUPS_CLAIM": "roles",
        "MODELREGISTRY_OIDC_PRINCIPAL_PREFIX": "oidc:",
        "MODELREGISTRY_OIDC_LEEWAY": "5",
    }
    oidc = load_config(["serve"], environ=env).oidc
    assert oidc == OidcConfig(
        issuer=ISSUER, audiences=("cli", "web"), jwks_file=None,
        jwks_url="https://login.example.com/certs", algorithms=("RS256", "ES256"),
        principal_claim="email", groups_claim="roles", principal_prefix="oidc:", leeway_s=5.0,
    )  # fmt: skip


def test_an_issuer_needs_an_audience_and_one_key_source() -> None:
    message = _problems(f"--oidc-issuer={ISSUER}")
    assert "--oidc-issuer needs --oidc-audience" in message
    assert "exactly one of --oidc-jwks-file and --oidc-jwks-url" in message


def test_both_key_sources_at_once_are_refused(jwks_file: Path) -> None:
    message = _problems(
        f"--oidc-issuer={ISSUER}", "--oidc-audience=a", f"--oidc-jwks-file={jwks_file}",
        "--oidc-jwks-url=https://login.example.com/certs",
    )  # fmt: skip
    assert "exactly one of --oidc-jwks-file and --oidc-jwks-url" in message


def test_a_missing_jwks_file_is_named(tmp_path: Path) -> None:
    message = _problems(
        f"--oidc-issuer={ISSUER}", "--oidc-audience=a", f"--oidc-jwks-file={tmp_path}/none.json"
    )
    assert "none.json' is not a readable file" in message


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://login.example.com/certs", True),
        ("http://127.0.0.1:8080/certs", True),
        ("http://localhost/certs", True),
        ("http://[::1]:9/certs", True),
        ("http://login.example.com/certs", False),
        ("ftp://login.example.com/certs", False),
        ("https:///certs", False),
    ],
)
def test_a_jwks_url_must_be_https_except_on_loopback(url: str, accepted: bool) -> None:
    flags = [f"--oidc-issuer={ISSUER}", "--oidc-audience=a", f"--oidc-jwks-url={url}"]
    if accepted:
        assert load_config(["serve", *flags], environ={}).oidc is not None
    else:
        assert "--oidc-jwks-url must be an https:// URL" in _problems(*flags)


@pytest.mark.parametrize("algorithms", ["none", "HS256", "RS256,hs512", "RS256,NONE"])
def test_unsigned_and_hmac_algorithms_are_never_accepted(algorithms: str) -> None:
    message = _problems(
        f"--oidc-issuer={ISSUER}", "--oidc-audience=a", "--oidc-jwks-url=https://x/certs",
        f"--oidc-algorithms={algorithms}",
    )  # fmt: skip
    assert "never accepted" in message


def test_unknown_algorithms_and_bad_leeway_are_reported() -> None:
    message = _problems(
        f"--oidc-issuer={ISSUER}", "--oidc-audience=a", "--oidc-jwks-url=https://x/certs",
        "--oidc-algorithms=RS257", "--oidc-leeway=3600", "--oidc-principal-prefix=a b",
    )  # fmt: skip
    assert "--oidc-algorithms must be some of RS256" in message
    assert "--oidc-leeway must be seconds from 0 to 600" in message
    assert "--oidc-principal-prefix must be printable and without spaces" in message


def test_oidc_flags_without_an_issuer_are_refused() -> None:
    message = _problems("--oidc-audience=a", env={"MODELREGISTRY_OIDC_LEEWAY": "5"})
    assert "--oidc-audience, --oidc-leeway set without --oidc-issuer" in message


def test_the_issuer_must_be_a_url() -> None:
    message = _problems("--oidc-issuer=login.example.com", "--oidc-audience=a",
                        "--oidc-jwks-url=https://x/certs")  # fmt: skip
    assert "--oidc-issuer must be the issuer's URL" in message

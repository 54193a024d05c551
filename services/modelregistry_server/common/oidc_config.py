"""The ``--oidc-*`` flags: which OpenID Connect issuer's JWTs the server accepts.

Part of the server configuration (``config.py`` reads them with every other flag, and
``MODELREGISTRY_OIDC_*`` in the environment): without ``--oidc-issuer`` OIDC is off and only
the registry's own tokens authenticate.
"""

from __future__ import annotations

import argparse
import ipaddress
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Algorithms a JWKS of public keys can verify. HS* (a shared secret: with a published key
# set anyone could sign) and "none" are refused, whatever the flag says.
ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
_OIDC_FLAGS = (
    "oidc_audience", "oidc_jwks_file", "oidc_jwks_url", "oidc_algorithms",
    "oidc_principal_claim", "oidc_groups_claim", "oidc_principal_prefix", "oidc_leeway",
)  # fmt: skip

Get = Callable[[str], str | None]
Number = Callable[[str, str, float, float, str], float]


@dataclass(frozen=True)
class OidcConfig:
    """Which JWTs authenticate callers (see the flags' help)."""

    issuer: str
    audiences: tuple[str, ...]
    jwks_file: Path | None
    jwks_url: str | None
    algorithms: tuple[str, ...] = ("RS256",)
    principal_claim: str = "sub"
    groups_claim: str = "groups"
    principal_prefix: str = ""
    leeway_s: float = 60.0


def add_oidc_flags(serve: argparse.ArgumentParser) -> None:
    """The ``--oidc-*`` flags of ``serve``."""
    group = serve.add_argument_group(
        "OpenID Connect",
        "Also accept JWTs of one OIDC issuer as bearer credentials (off unless --oidc-issuer "
        "is given).",
    )
    add = group.add_argument
    add("--oidc-issuer", metavar="URL", help="the issuer: JWTs must carry exactly this iss")
    add(
        "--oidc-audience",
        metavar="AUD",
        help="required with --oidc-issuer: the aud a JWT "
        "must carry (this registry's client id at the issuer); several separated by commas",
    )
    add("--oidc-jwks-file", metavar="PATH", help="the issuer's signing keys, a JWKS file")
    add(
        "--oidc-jwks-url",
        metavar="URL",
        help="or the issuer's jwks_uri (https, or http on "
        "loopback); fetched with a 5 s timeout, again every 5 minutes and for an unknown key id",
    )
    add(
        "--oidc-algorithms",
        metavar="ALGS",
        help="signature algorithms accepted, separated by "
        f"commas (default RS256; any of {', '.join(ASYMMETRIC_ALGORITHMS)})",
    )
    add(
        "--oidc-principal-claim",
        metavar="CLAIM",
        help="the claim whose value is the principal's name (default sub; e.g. email)",
    )
    add(
        "--oidc-groups-claim",
        metavar="CLAIM",
        help="the claim listing the principal's groups (default groups)",
    )
    add(
        "--oidc-principal-prefix",
        metavar="PREFIX",
        help="put before every OIDC principal's "
        "name, to keep them apart from token principals (default none)",
    )
    add("--oidc-leeway", metavar="SECONDS", help="clock skew allowed on exp, nbf and iat, "
        "0 to 600 (default 60)")  # fmt: skip


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _algorithms(text: str, problems: list[str]) -> tuple[str, ...]:
    names = tuple(a.strip() for a in text.split(",") if a.strip())
    refused = [a for a in names if a.lower() == "none" or a.upper().startswith("HS")]
    unknown = [a for a in names if a not in ASYMMETRIC_ALGORITHMS and a not in refused]
    if refused:
        problems.append(
            f"--oidc-algorithms: {', '.join(refused)} never accepted: 'none' is unsigned and "
            "HS* would verify with a published key, so anyone could sign"
        )
    if unknown or not names:
        problems.append(
            f"--oidc-algorithms must be some of {', '.join(ASYMMETRIC_ALGORITHMS)}, not {text!r}"
        )
    return names


def _jwks_url(url: str, problems: list[str]) -> None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "https" and parsed.hostname:
        return
    if parsed.scheme == "http" and _loopback(parsed.hostname):
        return
    problems.append(
        "--oidc-jwks-url must be an https:// URL (plain http only on loopback): keys fetched "
        f"in the clear could be replaced on the way, not {url!r}"
    )


def read_oidc_config(get: Get, number: Number, problems: list[str]) -> OidcConfig | None:
    """The OIDC settings, or None when ``--oidc-issuer`` is not set; problems are appended."""
    issuer = get("oidc_issuer")
    if issuer is None:
        given = [f"--{f.replace('_', '-')}" for f in _OIDC_FLAGS if get(f) is not None]
        if given:
            problems.append(f"{', '.join(given)} set without --oidc-issuer (OIDC is off)")
        return None
    if not issuer.startswith(("https://", "http://")) or any(c.isspace() for c in issuer):
        problems.append(f"--oidc-issuer must be the issuer's URL (its iss claim), not {issuer!r}")
    audiences = tuple(a.strip() for a in (get("oidc_audience") or "").split(",") if a.strip())
    if not audiences:
        problems.append(
            "--oidc-issuer needs --oidc-audience: the aud this registry's JWTs carry (without "
            "it, a JWT the issuer made for any other application would be accepted)"
        )
    jwks_file, jwks_url = get("oidc_jwks_file"), get("oidc_jwks_url")
    if (jwks_file is None) == (jwks_url is None):
        problems.append(
            "--oidc-issuer needs exactly one of --oidc-jwks-file and --oidc-jwks-url "
            "(the issuer's signing keys)"
        )
    if jwks_file is not None and not Path(jwks_file).is_file():
        problems.append(f"--oidc-jwks-file {jwks_file!r} is not a readable file")
    if jwks_url is not None:
        _jwks_url(jwks_url, problems)
    prefix = get("oidc_principal_prefix") or ""
    if not prefix.isprintable() or any(c.isspace() for c in prefix):
        problems.append("--oidc-principal-prefix must be printable and without spaces")
    claims = {flag: get(flag) for flag in ("oidc_principal_claim", "oidc_groups_claim")}
    for flag, value in claims.items():
        if value is not None and not value.strip():
            problems.append(f"--{flag.replace('_', '-')} must name a claim")
    return OidcConfig(
        issuer=issuer,
        audiences=audiences,
        jwks_file=None if jwks_file is None else Path(jwks_file).resolve(),
        jwks_url=jwks_url,
        algorithms=_algorithms(get("oidc_algorithms") or "RS256", problems),
        principal_claim=(claims["oidc_principal_claim"] or "sub").strip(),
        groups_claim=(claims["oidc_groups_claim"] or "groups").strip(),
        principal_prefix=prefix,
        leeway_s=number("oidc_leeway", "60", 0, 600, "seconds from 0 to 600"),
    )

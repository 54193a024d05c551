"""A test OpenID Connect issuer: keys the test generates, their JWKS, and JWTs signed with them.

Nothing here talks to a real identity provider: the registry is pointed at the JWKS this
writes (a file, or a loopback HTTP server), and the tests sign whatever claims they need.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://issuer.test/realms/ml"
AUDIENCE = "modelregistry"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key."""
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: PrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    """The public half of ``key`` as a JWK."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", **extra}


@dataclass
class TestIssuer:
    """Signing keys by kid (an RSA one, ``rsa-1``, and a P-256 one, ``ec-1``) and their JWKS."""

    __test__ = False  # not a test class, despite its name

    issuer: str = ISSUER
    audience: str = AUDIENCE
    keys: dict[str, PrivateKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys = {"rsa-1": rsa_key(), "ec-1": ec_key()}

    def jwks(self) -> dict[str, Any]:
        """The public keys, as the issuer publishes them."""
        return {"keys": [public_jwk(key, kid) for kid, key in self.keys.items()]}

    def write_jwks(self, path: Path) -> Path:
        """Write the JWKS to ``path``."""
        path.write_text(json.dumps(self.jwks()))
        return path

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Valid claims for ``alice`` (5 minutes left), with ``overrides`` (None drops one)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": "alice",
            "email": "alice@example.com", "groups": ["ml-team", "readers"],
            "iat": now, "nbf": now, "exp": now + 300,
        }  # fmt: skip
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        kid: str = "rsa-1",
        *,
        key: PrivateKey | None = None,
        algorithm: str | None = None,
        headers: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        """A JWT of ``claims(**overrides)`` signed with the key ``kid`` (or ``key``, under
        that kid)."""
        signing_key = key if key is not None else self.keys[kid]
        if algorithm is None:
            algorithm = "RS256" if isinstance(signing_key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(
            self.claims(**overrides), signing_key, algorithm=algorithm,
            headers={"kid": kid, **(headers or {})},
        )  # fmt: skip


@contextmanager
def serve_jwks(issuer: TestIssuer) -> Iterator[tuple[str, list[int]]]:
    """Serve ``issuer.jwks()`` (read at every request) on a loopback port.

    Yields:
        The JWKS URL, and a list holding the number of requests served so far.
    """
    served = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served[0] += 1
            body = json.dumps(issuer.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", served
    finally:
        server.shutdown()
        server.server_close()

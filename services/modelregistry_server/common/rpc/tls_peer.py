"""Who a mutual-TLS client is, from the certificate it presented.

The server asks for client certificates only with ``--tls-client-ca``, and then requires one
that the CA signed (gRPC checks it during the handshake), so a certificate in the call's auth
context is always a verified one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol


class HasAuthContext(Protocol):
    """What is read from a call: ``grpc.ServicerContext`` and ``grpc.aio.ServicerContext``."""

    def auth_context(self) -> Mapping[str, Iterable[bytes]]:
        """The transport's properties of the peer (gRPC's ``AuthContext``)."""
        ...


def peer_principal_name(context: HasAuthContext) -> str | None:
    """The principal a client certificate names, or None without one (plaintext, TLS only).

    The first DNS or URI subject alternative name in certificate order (a SPIFFE ID is a URI
    SAN), else the first e-mail SAN, else the subject's common name. IP-address SANs never name a
    principal: they say where a host is, not who it is.
    """
    auth = context.auth_context() or {}
    if not auth.get("x509_pem_cert"):
        return None
    dns_or_uri = _texts(auth, "peer_dns") + _texts(auth, "peer_uri")
    for name in _texts(auth, "x509_subject_alternative_name"):
        if name in dns_or_uri:
            return name
    for candidates in (_texts(auth, "peer_email"), _texts(auth, "x509_common_name")):
        if candidates:
            return candidates[0]
    return None


def _texts(auth: Mapping[str, Iterable[bytes]], key: str) -> list[str]:
    return [value.decode("utf-8", "replace") for value in auth.get(key, ()) if value]

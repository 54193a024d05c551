"""Unit tests of ``peer_principal_name`` on auth contexts as gRPC builds them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pytest

from modelregistry_server.common.rpc.tls_peer import peer_principal_name

PEM = [b"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"]


@dataclass
class FakeContext:
    auth: dict[str, list[bytes]] = field(default_factory=dict)

    def auth_context(self) -> Mapping[str, Iterable[bytes]]:
        return self.auth


def _mtls(**properties: list[bytes]) -> FakeContext:
    return FakeContext({"transport_security_type": [b"ssl"], "x509_pem_cert": PEM, **properties})


def test_plaintext_and_server_only_tls_have_no_principal() -> None:
    assert peer_principal_name(FakeContext({})) is None
    assert peer_principal_name(FakeContext({"transport_security_type": [b"ssl"]})) is None


def test_the_first_dns_or_uri_san_in_certificate_order_wins() -> None:
    uri_first = _mtls(
        x509_common_name=[b"ignored"],
        x509_subject_alternative_name=[b"spiffe://corp/ci", b"ci.corp", b"ci@corp"],
        peer_dns=[b"ci.corp"],
        peer_uri=[b"spiffe://corp/ci"],
        peer_email=[b"ci@corp"],
    )
    assert peer_principal_name(uri_first) == "spiffe://corp/ci"
    dns_first = _mtls(
        x509_subject_alternative_name=[b"10.0.0.1", b"ci.corp", b"spiffe://corp/ci"],
        peer_dns=[b"ci.corp"],
        peer_uri=[b"spiffe://corp/ci"],
        peer_ip=[b"10.0.0.1"],
    )
    assert peer_principal_name(dns_first) == "ci.corp"


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        (
            {
                "x509_common_name": [b"alice"],
                "x509_subject_alternative_name": [b"alice@corp"],
                "peer_email": [b"alice@corp"],
            },
            "alice@corp",
        ),
        ({"x509_common_name": [b"alice"]}, "alice"),
        (
            {
                "x509_common_name": [b"alice"],
                "x509_subject_alternative_name": [b"10.0.0.1"],
                "peer_ip": [b"10.0.0.1"],
            },
            "alice",
        ),
        ({}, None),
    ],
    ids=["email-san", "common-name", "ip-san-is-not-a-name", "no-name-at-all"],
)
def test_without_dns_or_uri_sans_the_email_then_the_common_name(
    properties: dict[str, list[bytes]], expected: str | None
) -> None:
    assert peer_principal_name(_mtls(**properties)) == expected

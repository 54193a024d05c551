"""Where the SDK's channels go: one address, a list of replicas, a DNS name; the artifact target."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from modelregistry._endpoints import ARTIFACT_SERVICE, METADATA_SERVICE, Endpoint
from modelregistry._transport import ENV_ARTIFACT_TARGET, ENV_TARGET, Transport
from modelregistry.cli._parser import build_parser
from modelregistry_server.common.rpc.link import balanced_target

BASE = [("grpc.enable_retries", 0)]


def _service_config(options: Sequence[tuple[str, object]]) -> dict[str, object]:
    (value,) = [v for k, v in options if k == "grpc.service_config"]
    config: dict[str, object] = json.loads(str(value))
    return config


def test_one_address_keeps_grpcs_default_channel() -> None:
    endpoint = Endpoint.parse("127.0.0.1:50051")
    assert endpoint == Endpoint("127.0.0.1:50051", balanced=False)
    assert endpoint.channel_options(BASE, METADATA_SERVICE) == BASE


def test_a_list_of_ipv4_addresses_is_balanced_and_health_checked() -> None:
    endpoint = Endpoint.parse("127.0.0.1:5001, 127.0.0.2:5002")
    assert endpoint.address == "ipv4:127.0.0.1:5001,127.0.0.2:5002"
    config = _service_config(endpoint.channel_options(BASE, ARTIFACT_SERVICE))
    assert config == {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": ARTIFACT_SERVICE},
    }


def test_a_list_of_ipv6_addresses_uses_the_ipv6_scheme() -> None:
    assert Endpoint.parse("[::1]:5001,[::1]:5002").address == "ipv6:[::1]:5001,[::1]:5002"


def test_a_dns_name_is_resolved_to_every_address_and_balanced() -> None:
    endpoint = Endpoint.parse("dns:///registry.internal:50051")
    assert endpoint == Endpoint("dns:///registry.internal:50051", balanced=True)


@pytest.mark.parametrize(
    ("target", "complaint"),
    [
        ("registry-a:5001,registry-b:5002", "IP addresses only"),
        ("127.0.0.1:5001,[::1]:5002", "mixes IPv4 and IPv6"),
        ("127.0.0.1:5001,127.0.0.1", "not host:port"),
        ("127.0.0.1:5001,127.0.0.1:99999", "not host:port"),
    ],
)
def test_a_bad_list_fails_when_the_client_is_made(target: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Transport(target, token="t")


def test_the_artifact_service_shares_the_channel_unless_served_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_ARTIFACT_TARGET, raising=False)
    together = Transport("127.0.0.1:5001,127.0.0.1:5002", token="t")
    try:
        assert together.artifact_channel is together.channel
        assert together.artifact_target == together.target
    finally:
        together.close()
    monkeypatch.setenv(ENV_ARTIFACT_TARGET, "grpc://127.0.0.1:6001,127.0.0.1:6002")
    apart = Transport("127.0.0.1:5001", token="t")
    try:
        assert apart.artifact_target == "127.0.0.1:6001,127.0.0.1:6002"
        assert apart.artifact_channel is not apart.channel
        # The argument wins over the variable.
        assert (
            Transport("127.0.0.1:5001", token="t", artifact_target="127.0.0.1:7001").artifact_target
            == "127.0.0.1:7001"
        )
    finally:
        apart.close()


def test_the_dns_scheme_is_kept_and_other_schemes_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_TARGET, raising=False)
    transport = Transport("dns:///registry.internal:50051", token="t")
    try:
        assert transport.target == "dns:///registry.internal:50051"
        assert (
            Transport("grpc://127.0.0.1:1,127.0.0.1:2", token="t").target
            == "127.0.0.1:1,127.0.0.1:2"
        )
    finally:
        transport.close()


def test_the_cli_takes_an_artifact_url_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--artifact-url", "127.0.0.1:6001", "ls"])
    after = parser.parse_args(["ls", "--artifact-url", "127.0.0.1:6002"])
    assert (before.artifact_url, after.artifact_url) == ("127.0.0.1:6001", "127.0.0.1:6002")
    assert "--artifact-url" in parser.format_help()


def test_server_links_balance_a_list_of_replicas_the_same_way() -> None:
    assert balanced_target("unix:/tmp/x.sock", METADATA_SERVICE) == ("unix:/tmp/x.sock", [])
    target, options = balanced_target("127.0.0.1:1,127.0.0.1:2", METADATA_SERVICE)
    assert target == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert _service_config(options)["healthCheckConfig"] == {"serviceName": METADATA_SERVICE}

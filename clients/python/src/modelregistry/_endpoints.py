"""Where the SDK's channels go: one address, several replicas, or a name that resolves to several.

A registry scaled out runs several replicas of each service. The SDK reaches them without a
load balancer of its own in between: a target that lists several addresses
(``127.0.0.1:5001,127.0.0.1:5002``) becomes a gRPC ``ipv4:`` (or ``ipv6:``) target, and a
``dns:///name:port`` target is resolved to every address the name has. Both are balanced
``round_robin`` with client-side health checking: each connection watches the replica's
``grpc.health.v1`` status for the service the channel calls, so a replica that reports
``NOT_SERVING`` (shutting down, or its database or object store is down) gets no new calls,
and a dead one is dropped when its connection breaks. A single ``host:port`` keeps gRPC's
default (one connection, no health watch), exactly as before.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

METADATA_SERVICE = "modelregistry.metadata.v1.MetadataService"
ARTIFACT_SERVICE = "modelregistry.artifact.v1.ArtifactService"
DNS_SCHEME = "dns:///"


def _ip_literal(address: str) -> tuple[str, int]:
    """``(family, port)`` of ``a.b.c.d:port`` or ``[v6]:port``; ValueError for anything else."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        raise ValueError(
            f"{address!r}: a list of addresses takes IP addresses only; for host names give "
            f"one name that resolves to every replica ({DNS_SCHEME}name:port)"
        ) from None
    return ("ipv4" if version == 4 else "ipv6", int(port))


@dataclass(frozen=True)
class Endpoint:
    """The gRPC target of one service and whether its calls are balanced over several replicas.

    Attributes:
        address: What gRPC dials: ``host:port``, ``ipv4:a:p,b:q`` or ``dns:///name:port``.
        balanced: Round-robin over the addresses, with client-side health checking.
    """

    address: str
    balanced: bool = False

    @classmethod
    def parse(cls, target: str) -> Endpoint:
        """The endpoint of a normalized target (no ``https://`` or ``grpc://`` prefix).

        Raises:
            ValueError: A list of addresses with a host name in it, or mixing IPv4 and IPv6.
        """
        if target.startswith(DNS_SCHEME):
            return cls(target, balanced=True)
        parts = [p.strip() for p in target.split(",") if p.strip()]
        if len(parts) <= 1:
            return cls(parts[0] if parts else target)
        families = {_ip_literal(part)[0] for part in parts}
        if len(families) > 1:
            raise ValueError(f"{target!r} mixes IPv4 and IPv6 addresses; list one family only")
        return cls(f"{families.pop()}:{','.join(parts)}", balanced=True)

    def channel_options(self, base: list[tuple[str, Any]], service: str) -> list[tuple[str, Any]]:
        """``base`` plus, for a balanced endpoint, round-robin and a health watch of ``service``.

        The service is the one the channel calls (not the overall ``""`` status): a replica
        serving both services whose object store is down still serves metadata.
        """
        if not self.balanced:
            return base
        config = {
            "loadBalancingConfig": [{"round_robin": {}}],
            "healthCheckConfig": {"serviceName": service},
        }
        return [*base, ("grpc.service_config", json.dumps(config))]

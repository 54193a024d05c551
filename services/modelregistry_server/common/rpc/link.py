"""The channel one service of the registry uses to call another, with its own credential."""

from __future__ import annotations

import json

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelregistry_server.common.kernel.errors import Unavailable


class ServiceLink:
    """A channel to another service of this registry, and the metadata every call sends.

    Args:
        target: ``host:port`` (or ``unix:`` socket) of the other service: this process's own
            port or socket when both run together. Replicas of it are given as several IP
            addresses (``10.0.0.5:50051,10.0.0.6:50051``) or ``dns:///name:port``: calls go
            round-robin to those whose health status for ``service`` is SERVING.
        credential: The bearer token secret this service presents: the process's internal
            secret when both run together, else the token it was configured with.
        credentials: TLS to reach it with; None for plaintext.
        service: The gRPC service called, whose health the replicas are checked for.
    """

    def __init__(
        self,
        target: str,
        credential: str,
        credentials: grpc.ChannelCredentials | None = None,
        service: str = "",
    ) -> None:
        self.target = target
        self.metadata = (("authorization", f"Bearer {credential}"),)
        address, options = balanced_target(target, service)
        if credentials is None:
            self.channel = grpc.aio.insecure_channel(address, options=options)
        else:
            self.channel = grpc.aio.secure_channel(address, credentials, options=options)

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close(None)


def balanced_target(target: str, service: str) -> tuple[str, list[tuple[str, str]]]:
    """What gRPC dials for ``target``, and the channel options.

    Several comma-separated addresses become an ``ipv4:``/``ipv6:`` target, which like
    ``dns:///`` reaches every replica: round-robin with client-side health checking, so a
    replica that is down or reports NOT_SERVING gets no calls. One address is dialled as is.
    """
    addresses = [a.strip() for a in target.split(",") if a.strip()]
    if len(addresses) > 1:
        family = "ipv6" if addresses[0].startswith("[") else "ipv4"
        target = f"{family}:{','.join(addresses)}"
    elif not target.startswith("dns:///"):
        return target, []
    config = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": service},
    }
    return target, [("grpc.service_config", json.dumps(config))]


# Outages a service passes on as they are: the caller learns what is really down.
_PASSED_ON = frozenset({"DATABASE_UNAVAILABLE", "STORAGE_UNAVAILABLE"})


def upstream_unavailable(exc: grpc.aio.AioRpcError, target: str, reason: str) -> Unavailable:
    """The error for a call to another service that failed.

    An outage the other service reported (its database or blob store is down) keeps its
    reason; anything else (no answer, a timeout) is ``reason`` (``<SERVICE>_UNAVAILABLE``).
    """
    upstream = _reason(exc) if exc.code() == grpc.StatusCode.UNAVAILABLE else None
    if upstream in _PASSED_ON:
        return Unavailable(exc.details() or "a dependency is unavailable", reason=upstream)
    return Unavailable(
        f"the service at {target} did not answer ({exc.code().name}); retry", reason=reason
    )


def _reason(exc: grpc.aio.AioRpcError) -> str | None:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return None

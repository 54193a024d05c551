"""gRPC settings of the server and of its calls to the other service."""

from __future__ import annotations

import grpc

from modelregistry_server.common.config import ClientTlsConfig
from modelregistry_server.common.limits_config import Limits


def server_options(limits: Limits, max_message_bytes: int) -> list[tuple[str, int]]:
    """Message sizes, and how connections are kept alive and recycled (see the flags)."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", int(limits.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(limits.keepalive_timeout_s * 1000)),
        # Clients (the SDK pings every 30 s on open streams) are not punished for pinging.
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    if limits.stream_window_bytes:
        # A fixed window instead of gRPC's adaptive one (BDP probing), which on a fast link
        # grew to tens of MiB per stream: with 4 uploads at once the server held 150-250 MiB
        # of received-but-untaken bytes beyond its part buffers (bench/pull.py memory rows).
        options += [
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", limits.stream_window_bytes),
        ]
    if limits.max_connection_age_s > 0:
        options += [
            ("grpc.max_connection_age_ms", int(limits.max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", int(limits.max_connection_age_grace_s * 1000)),
        ]
    return options


def client_credentials(
    tls: ClientTlsConfig | None, url: str | None
) -> grpc.ChannelCredentials | None:
    """TLS towards the other service when it runs in another process and TLS was given."""
    if tls is None or not url:
        return None
    return grpc.ssl_channel_credentials(tls.ca, tls.private_key, tls.cert_chain)

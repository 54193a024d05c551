"""The channel one service of the registry uses to call another, with its own credential."""

from __future__ import annotations

import grpc


class ServiceLink:
    """A channel to another service of this registry, and the metadata every call sends.

    Args:
        target: ``host:port`` (or ``unix:`` socket) of the other service: this process's own
            port or socket when both run together.
        credential: The bearer token secret this service presents: the process's internal
            secret when both run together, else the token it was configured with.
        credentials: TLS to reach it with; None for plaintext.
    """

    def __init__(
        self, target: str, credential: str, credentials: grpc.ChannelCredentials | None = None
    ) -> None:
        self.target = target
        self.metadata = (("authorization", f"Bearer {credential}"),)
        if credentials is None:
            self.channel = grpc.aio.insecure_channel(target)
        else:
            self.channel = grpc.aio.secure_channel(target, credentials)

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close(None)

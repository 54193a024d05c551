"""What :class:`~modelregistry.client.Client` and :class:`~modelregistry.aio.AsyncClient` share.

The transport each wraps (sync or ``grpc.aio``), offline mode and the lazily opened cache.
Request building is shared through ``_convert`` and push/pull arguments through ``_options``;
the watch streams live in ``_watch``. Neither client module imports the other.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Generic, TypeVar

from modelregistry._transport import AsyncTransport, Transport
from modelregistry.errors import UnavailableError

if TYPE_CHECKING:
    from modelregistry.cache import Cache

ENV_OFFLINE = "MODELREGISTRY_OFFLINE"
TransportT = TypeVar("TransportT", Transport, AsyncTransport)


def offline_from_env() -> bool:
    """True if ``$MODELREGISTRY_OFFLINE`` is ``1``, ``true`` or ``yes`` (any case)."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes")


def offline_error(what: str) -> UnavailableError:
    """The error for a call that needs the registry while offline mode is on."""
    return UnavailableError(
        f"{what} needs the registry, but offline mode is on (${ENV_OFFLINE}); "
        "only resolve, pull and diff of cached references work offline",
        reason="OFFLINE_MODE",
    )


class ClientBase(Generic[TransportT]):
    """What :class:`Client` and :class:`~modelregistry.aio.AsyncClient` share besides their
    calls: the transport, offline mode and the lazily opened cache."""

    def __init__(
        self,
        transport: TransportT,
        cache_dir: str | os.PathLike[str] | None,
        offline: bool | None,
    ) -> None:
        self._transport: TransportT = transport
        self.offline = offline_from_env() if offline is None else offline
        self._cache_dir = cache_dir
        self._cache: Cache | None = None

    @property
    def target(self) -> str:
        """The ``host:port`` this client talks to (or the replicas' addresses, comma-separated)."""
        return self._transport.target

    @property
    def cache(self) -> Cache:
        """The local file cache (created on first use)."""
        if self._cache is None:
            from modelregistry.cache import Cache  # lazy: only push/pull need it

            self._cache = Cache(self._cache_dir)
        return self._cache

    def _online(self, what: str) -> TransportT:
        if self.offline:
            raise offline_error(what)
        return self._transport

    def _close_cache(self) -> None:
        if self._cache is not None:
            self._cache.close()

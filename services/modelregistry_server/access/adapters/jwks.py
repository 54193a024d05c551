"""The OIDC issuer's signing keys: a JWKS (RFC 7517) read from a file or fetched from a URL.

``SigningKeys`` keeps the last key set it loaded and loads it again when it is ``REFRESH``
old, and when a JWT names a key id (``kid``) it does not hold, at most once per
``UNKNOWN_KID_INTERVAL`` (an issuer that rotates its keys publishes the new one before
signing with it; a stream of made-up ``kid``s costs one fetch a minute, not one per call).
A failed load keeps the keys it had; with none at all, it tries again after
``RETRY_EMPTY``. A URL is fetched with a timeout, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from jwt import PyJWK, PyJWKError, PyJWTError

from modelregistry_server.access.app.ports import SigningKeysUnavailable

_log = logging.getLogger(__name__)
REFRESH = 300.0
UNKNOWN_KID_INTERVAL = 60.0
RETRY_EMPTY = 5.0
FETCH_TIMEOUT = 5.0
MAX_JWKS_BYTES = 1 << 20
# Key types a public-key JWKS holds; "oct" (a shared secret) is never used.
_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


class JwksError(Exception):
    """A JWKS could not be read, or holds no usable signing key."""


class JwksSource(Protocol):
    """Where the key set comes from."""

    @property
    def description(self) -> str:
        """Names the source in messages."""
        ...

    async def read(self) -> bytes:
        """The JWKS document.

        Raises:
            JwksError: It cannot be read now.
        """
        ...


@dataclass(frozen=True)
class JwksFile:
    """A JWKS in a local file (e.g. a mounted secret or config map)."""

    path: Path

    @property
    def description(self) -> str:
        """Names the file in messages."""
        return f"JWKS file {self.path}"

    async def read(self) -> bytes:
        """The file's content."""
        try:
            return await asyncio.to_thread(self.path.read_bytes)
        except OSError as exc:
            raise JwksError(f"cannot read {self.description}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class JwksUrl:
    """A JWKS served by the issuer (the ``jwks_uri`` of its discovery document)."""

    url: str
    timeout: float = FETCH_TIMEOUT

    @property
    def description(self) -> str:
        """Names the URL in messages."""
        return f"JWKS URL {self.url}"

    async def read(self) -> bytes:
        """The document the URL serves."""
        return await asyncio.to_thread(self._fetch)

    def _fetch(self) -> bytes:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})  # noqa: S310 - the scheme was checked: https, or http on loopback
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body: bytes = response.read(MAX_JWKS_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise JwksError(f"cannot fetch {self.description}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise JwksError(f"cannot fetch {self.description}: {why}") from None
        if len(body) > MAX_JWKS_BYTES:
            raise JwksError(f"{self.description} serves more than {MAX_JWKS_BYTES} bytes")
        return body


@dataclass
class KeySet:
    """The usable signing keys of one JWKS document, by key id."""

    by_kid: dict[str, Mapping[str, Any]]
    without_kid: list[Mapping[str, Any]]
    _prepared: dict[tuple[int, str], PyJWK] = field(default_factory=dict)

    def find(self, kid: str | None) -> Mapping[str, Any] | None:
        """The key a JWT's ``kid`` names; without one, the set's only key, if it has one."""
        if kid is not None:
            return self.by_kid.get(kid)
        keys = [*self.by_kid.values(), *self.without_kid]
        return keys[0] if len(keys) == 1 else None

    def prepared(self, jwk: Mapping[str, Any], algorithm: str) -> PyJWK:
        """``jwk`` as a key for ``algorithm`` (built once per key set).

        Raises:
            PyJWTError: The key cannot be used with that algorithm.
        """
        index = (id(jwk), algorithm)
        key = self._prepared.get(index)
        if key is None:
            key = self._prepared[index] = PyJWK(dict(jwk), algorithm=algorithm)
        return key


def parse_jwks(document: bytes, description: str) -> KeySet:
    """The signing keys in a JWKS document; keys of other types or uses are skipped.

    Raises:
        JwksError: The document is not a JWKS, or holds no usable signing key.
    """
    try:
        data = json.loads(document)
    except (ValueError, RecursionError):
        raise JwksError(f"{description} is not JSON") from None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list):
        raise JwksError(f'{description} is not a JWKS: it has no "keys" list')
    by_kid: dict[str, Mapping[str, Any]] = {}
    without_kid: list[Mapping[str, Any]] = []
    for jwk in keys:
        if not _usable(jwk):
            continue
        kid = jwk.get("kid")
        if isinstance(kid, str):
            by_kid.setdefault(kid, jwk)
        else:
            without_kid.append(jwk)
    if not by_kid and not without_kid:
        raise JwksError(f"{description} holds no usable public signing key (RSA, EC or OKP)")
    return KeySet(by_kid, without_kid)


def _usable(jwk: object) -> bool:
    if not isinstance(jwk, dict) or jwk.get("kty") not in _KEY_TYPES:
        return False
    if jwk.get("use", "sig") != "sig" or "d" in jwk:  # an encryption key, or a private one
        return False
    try:
        PyJWK(jwk)  # its own "alg", or the usual one of its type
    except (PyJWKError, PyJWTError):
        return False
    return True


class SigningKeys:
    """The issuer's current key set, loaded again when it is old or lacks a key id."""

    def __init__(self, source: JwksSource, clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._clock = clock
        self._keys: KeySet | None = None
        self._loaded_at = 0.0
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def description(self) -> str:
        """Where the keys come from."""
        return self._source.description

    async def load(self) -> None:
        """Load the key set now (at start-up).

        Raises:
            JwksError: It cannot be read or holds no usable key.
        """
        async with self._lock:
            await self._load()

    async def find(self, kid: str | None) -> tuple[KeySet, Mapping[str, Any] | None]:
        """The current key set and the key ``kid`` names in it (None if it has none).

        Raises:
            SigningKeysUnavailable: No key set could be loaded.
        """
        keys = self._keys
        if keys is None or self._stale() or keys.find(kid) is None:
            await self._reload(kid)
            keys = self._keys
        if keys is None:
            raise SigningKeysUnavailable(self.description)
        return keys, keys.find(kid)

    def _stale(self) -> bool:
        return self._clock() - self._loaded_at >= REFRESH

    async def _reload(self, kid: str | None) -> None:
        async with self._lock:  # one load at a time; callers that waited use its result
            keys = self._keys
            if keys is not None and not self._stale() and keys.find(kid) is not None:
                return
            gap = RETRY_EMPTY if keys is None else UNKNOWN_KID_INTERVAL
            if self._tried_at is not None and self._clock() - self._tried_at < gap:
                return
            try:
                await self._load()
            except JwksError as exc:
                kept = "keeping the keys loaded before" if keys is not None else "no keys yet"
                _log.warning("%s (%s)", exc, kept)

    async def _load(self) -> None:
        self._tried_at = self._clock()
        keys = parse_jwks(await self._source.read(), self._source.description)
        self._keys, self._loaded_at = keys, self._clock()
        _log.info("loaded %d signing keys from %s", len(keys.by_kid) + len(keys.without_kid),
                  self._source.description)  # fmt: skip
